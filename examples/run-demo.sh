#!/usr/bin/env bash
# The main job: set everything up on a fresh Debian 12 machine, then run the example procedures
# end to end: validate and draw them, start the mock agency, deploy, start the sample cases (and
# a duplicate application), run the engine, play the clerks' decisions and the applicants'
# supplements, and print a summary; then the federation demo (examples/federation/run.sh).
#
#   bash examples/run-demo.sh                        # embedded SQLite (build/demo/wf.db)
#   bash examples/run-demo.sh --db postgresql://...  # the same on PostgreSQL (an empty database)
set -euo pipefail
cd "$(dirname "$0")/.."
DB_URL=""
while [ $# -gt 0 ]; do
  case "$1" in
    --db) DB_URL=$2; shift 2 ;;
    *) echo "usage: $0 [--db postgresql://...]" >&2; exit 2 ;;
  esac
done

# Only what the demo runs is built: the wf program and the mock agency.
[ -n "${WF_SKIP_SETUP:-}" ] || bash .ci/setup wf wf_mock_agency  # WF_SKIP_SETUP=1: use the build as it is
BUILD=${WF_BUILD_DIR:-build}
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
# WF_DEMO_OUT: another folder for the demo's files (the language tests run the demo there).
WF=$BUILD/cli/wf
MOCK=$BUILD/examples/mock-agency/wf-mock-agency
OUT=${WF_DEMO_OUT:-$BUILD/demo}
rm -rf "$OUT"
mkdir -p "$OUT"
export WF_DB=${DB_URL:-sqlite:$OUT/wf.db}
say() { printf '\n== %s\n' "$*"; }

say "validating the example procedures against examples/config.yaml"
"$WF" validate --config examples/config.yaml examples/procedures/*.yaml
say "drawing them into $OUT/ (mermaid and dot)"
for f in examples/procedures/*.yaml; do
  name=$(basename "$f" .yaml)
  "$WF" graph "$f" --format mermaid > "$OUT/$name.mmd"
  "$WF" graph "$f" --format dot > "$OUT/$name.dot"
done
ls "$OUT"/*.mmd | sed 's/^/   /'

say "starting the mock agency (the departments' systems)"
"$MOCK" --port 0 --port-file "$OUT/mock.port" --quiet > "$OUT/mock.log" 2>&1 &
MOCK_PID=$!
trap 'kill $MOCK_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$OUT/mock.port" ] && break; sleep 0.1; done
PORT=$(cat "$OUT/mock.port")
sed "s/127\.0\.0\.1:8089/127.0.0.1:$PORT/g" examples/config.yaml > "$OUT/config.yaml"
export WF_CONFIG=$OUT/config.yaml
echo "   listening on 127.0.0.1:$PORT; config with that port: $WF_CONFIG"

say "deploying (database: $WF_DB)"
"$WF" deploy examples/procedures/*.yaml

say "applicants file their cases"
refused=0
start_cases() {  # $1: "main" (examples/cases/NAME.json) or "variants" (NAME.VARIANT.json)
  for f in examples/cases/*.json; do
    base=$(basename "$f" .json)
    procedure=${base%%.*}
    [ -f "examples/procedures/$procedure.yaml" ] || continue
    if [ "$1" = main ] && [ "$base" != "$procedure" ]; then continue; fi
    if [ "$1" = variants ] && [ "$base" = "$procedure" ]; then continue; fi
    id=$("$WF" start "$procedure" --data "$f" --as portal)
    echo "   $id  $procedure  ($(basename "$f"))"
  done
}
start_cases main
echo "   the same birth declared a second time:"
if "$WF" start birth-registration-linked --data examples/cases/birth-registration-linked.json \
    --as portal 2> "$OUT/duplicate.err"; then
  echo "   (accepted: unexpected)"
else
  refused=$((refused + 1))
  sed 's/^/   refused: /' "$OUT/duplicate.err"
fi

# Everyone the deployment config names as an agency member.
mapfile -t CLERKS < <(grep -E '^ {6}[a-z]+\.[a-z]+: \[' examples/config.yaml | sed -E 's/^ +([^:]+):.*/\1/')

# A clerk's decision for every field of a task's form: approve, take the first choice, fill in.
FORM_VALUES='(.form.properties // {}) | with_entries(.value = (
  if .value.type == "boolean" then (.key | test("^(needs|requires|incomplete|restricted|missing)") | not)
  elif .value.enum then .value.enum[0]
  elif .value.type == "integer" or .value.type == "number" then (.value.minimum // 1)
  elif .value.format == "date" then "2026-11-25"
  else "checked by the demo clerk" end))'

say "running the engine; clerks decide, applicants supplement"
for round in $(seq 1 15); do
  "$WF" engine --until-idle --idle-wait 10 > "$OUT/engine-$round.log" 2>> "$OUT/engine.err"
  if [ "$round" -eq 1 ]; then
    # Later applications about the same people: the population register is not asked again.
    echo "   more applications arrive:"
    start_cases variants
    # The twin of the first child: the same mother, whom the population register verified
    # minutes ago, so her record is reused instead of being asked for again.
    jq '.child.birth_order = 2 | .child.full_name = "Trần Minh Khang"
        | .child.medical_birth_notice_no = "GCS-072-2026-004519"' \
      examples/cases/birth-registration-linked.json > "$OUT/twin.json"
    id=$("$WF" start birth-registration-linked --data "$OUT/twin.json" --as portal)
    echo "   $id  birth-registration-linked  (the twin, same mother)"
    "$WF" engine --until-idle --idle-wait 10 >> "$OUT/engine-$round.log" 2>> "$OUT/engine.err"
  fi
  acted=0
  for clerk in "${CLERKS[@]}"; do
    while read -r task; do
      [ -n "$task" ] || continue
      id=$(jq -r .id <<< "$task")
      values=$(jq -c "$FORM_VALUES" <<< "$task")
      if "$WF" complete "$id" --data - --as "$clerk" <<< "$values" > /dev/null 2>> "$OUT/clerks.err"; then
        echo "   $clerk completed task $id ($(jq -r .step <<< "$task") of case $(jq -r .case <<< "$task")): $values"
        acted=1
      fi
    done < <("$WF" inbox --as "$clerk" --json | jq -c '.[]')
  done
  while read -r case_id; do
    [ -n "$case_id" ] || continue
    while read -r signal; do
      [ -n "$signal" ] || continue
      echo '{"documents": ["supplement.pdf"], "received_via": "VNeID"}' |
        "$WF" signal "$case_id" "$signal" --data - --as applicant > /dev/null
      echo "   the applicant sent '$signal' for case $case_id"
      acted=1
    done < <("$WF" show "$case_id" --json | jq -r '.steps[] | select(.waiting == "signal" or .waiting == "accepted") | .signal')
  done < <("$WF" cases --status open --limit 0 --json | jq -r '.[].id')
  open=$("$WF" cases --status open --limit 0 --json | jq length)
  [ "$open" -eq 0 ] && break
  [ "$acted" -eq 0 ] && break
done

say "summary"
"$WF" cases --limit 0
echo
"$WF" cases --limit 0 --json | jq -r '
  "cases: \(length), " + (group_by(.status) | map("\(.[0].status) \(length)") | join(", "))'
"$WF" cases --limit 0 --json > "$OUT/cases.json"
jq -r '.[] | select(.ended_at != null and .deadline != null) |
  "   \(.procedure) \(.id): ended \(.ended_at), statutory deadline \(.deadline) -> " +
  (if .ended_at <= .deadline then "on time" else "LATE" end)' "$OUT/cases.json" 2>/dev/null || true
"$WF" audit export --format jsonl > "$OUT/history.jsonl"
echo "history events: $(wc -l < "$OUT/history.jsonl"); data reused instead of asked again: $(grep -c '"step.reused"' "$OUT/history.jsonl" || true)"
echo "duplicate applications refused: $refused"
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /_stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
sed '1,/^\r$/d' <&3 > "$OUT/mock-stats.json"
exec 3<&-
jq -r '"department calls: \(.requests // .total // 0) (replays of the same idempotency key: \(.replays // 0))"' "$OUT/mock-stats.json" 2>/dev/null || true
jq -r '(.departments // {}) | to_entries[] | "   \(.key): \(.value | if type == "object" then (.requests // .total // .) else . end)"' "$OUT/mock-stats.json" 2>/dev/null || true
"$WF" audit verify
say "the auditor's report (also $OUT/report.html, one self-contained page)"
"$WF" report
"$WF" report --html "$OUT/report.html"
echo "everything is in $OUT/"

say "federation: a case that crosses two provinces' own deployments (examples/federation)"
WF_BUILD_DIR=$BUILD WF_DEMO_OUT=$OUT bash examples/federation/run.sh
