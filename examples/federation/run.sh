#!/usr/bin/env bash
# The federation demo (README: Federation): two deployments on one machine, each with its own
# SQLite database, `wf serve` over TLS and `wf engine`. A Ho Chi Minh City company registers a
# technology transfer contract at Tay Ninh's Department of Science and Technology through Tay
# Ninh's citizens' portal (its certificate); Tay Ninh's case asks HCMC's department, through a
# procedure deployed there, for the company's registered contracts; HCMC's clerk confirms them;
# the answer comes back to Tay Ninh's case; Tay Ninh's clerk decides. Both histories are then
# checked against each other (`wf audit verify --peer`).
#
#   bash examples/federation/run.sh      # after `bash .ci/setup wf` (examples/run-demo.sh runs it)
# WF_BUILD_DIR: where cli/wf is (default build/); WF_DEMO_OUT: the folder for its files.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${WF_BUILD_DIR:-build}
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
WF=$BUILD/cli/wf
[ -x "$WF" ] || { echo "no wf at $WF: run bash .ci/setup wf first" >&2; exit 4; }
OUT=${WF_DEMO_OUT:-$BUILD/demo}/federation
rm -rf "$OUT"
mkdir -p "$OUT"
PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
say() { printf '\n== %s\n' "$*"; }
fail() { echo "federation demo: $*" >&2; exit 1; }
# Polls the command until it succeeds, for at most $1 seconds.
wait_until() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for: $*"
    sleep 0.2
  done
}

say "two deployments in $OUT: hcmc/ and tayninh/, each with its certificate (one demo CA)"
cp -r examples/federation/hcmc examples/federation/tayninh "$OUT/"
bash examples/federation/make-certs.sh "$OUT/certs" hcmc-dost tayninh-dost tayninh-portal
for side in hcmc tayninh; do cp -r "$OUT/certs" "$OUT/$side/certs"; done
ls "$OUT/certs"/*.pem | sed 's/^/   /'
hcmc() { "$WF" --db "sqlite:$OUT/hcmc/wf.db" --config "$OUT/hcmc/deploy.yaml" "$@"; }
tayninh() { "$WF" --db "sqlite:$OUT/tayninh/wf.db" --config "$OUT/tayninh/deploy.yaml" "$@"; }

say "each side's wf serve (TLS, client certificates required)"
for side in hcmc tayninh; do
  "$WF" --db "sqlite:$OUT/$side/wf.db" --config "$OUT/$side/deploy.yaml" \
    serve --listen 127.0.0.1:0 >"$OUT/$side.serve.out" 2>"$OUT/$side.access.log" &
  PIDS+=($!)
  wait_until 30 grep -q 'listening on' "$OUT/$side.serve.out"
  echo "   $side: $(cat "$OUT/$side.serve.out")"
done
url_of() { sed -n 's|.*listening on \(https://[0-9.:]*\).*|\1|p' "$OUT/$1.serve.out"; }
export HCMC_URL=$(url_of hcmc) TAYNINH_URL=$(url_of tayninh)

say "deploying: technology-transfer-records at HCMC, the interprovincial registration at Tay Ninh"
hcmc deploy "$OUT"/hcmc/procedures/*.yaml
tayninh deploy "$OUT"/tayninh/procedures/*.yaml

say "each side's engine"
for side in hcmc tayninh; do
  "$WF" --db "sqlite:$OUT/$side/wf.db" --config "$OUT/$side/deploy.yaml" engine \
    >"$OUT/$side.engine.log" 2>&1 &
  PIDS+=($!)
done
echo "   running; logs in $OUT/*.engine.log"

say "the company files at Tay Ninh through the portal (POST with the portal's certificate)"
portal=(--cacert "$OUT/certs/ca.pem" --cert "$OUT/certs/tayninh-portal.pem"
  --key "$OUT/certs/tayninh-portal.key")
key="portal-$(date +%s)-$$"
answer=$(curl -sS --fail-with-body "${portal[@]}" -H "Idempotency-Key: $key" \
  -H 'Content-Type: application/json' --data @examples/federation/tayninh/cases/company.json \
  "$TAYNINH_URL/v1/procedures/technology-transfer-registration-interprovincial/cases")
echo "   $answer"
CASE=$(jq -r .id <<<"$answer")
echo "   the same request again (a retry) gets the same case:"
echo "   $(curl -sS --fail-with-body "${portal[@]}" -H "Idempotency-Key: $key" \
  -H 'Content-Type: application/json' --data @examples/federation/tayninh/cases/company.json \
  "$TAYNINH_URL/v1/procedures/technology-transfer-registration-interprovincial/cases")"

say "Tay Ninh's engine asks HCMC; HCMC's clerk thu.tran finds the request in the inbox"
has_task() { [ "$("$@" --json | jq length)" -ge 1 ]; }
wait_until 60 has_task hcmc inbox --as thu.tran
hcmc inbox --as thu.tran
HCMC_CASE=$(hcmc inbox --as thu.tran --json | jq -r '.[0].case')
TASK=$(hcmc inbox --as thu.tran --json | jq -r '.[0].id')
hcmc claim "$TASK" --as thu.tran
hcmc complete "$TASK" --as thu.tran --set found=true --set contracts=2 \
  --set note="HĐCGCN-2024-031, HĐCGCN-2025-112"

say "HCMC's engine posts the answer back; Tay Ninh's clerk minh.pham reviews"
wait_until 60 has_task tayninh inbox --as minh.pham
tayninh show "$CASE"
TASK=$(tayninh inbox --as minh.pham --json | jq -r '.[0].id')
tayninh complete "$TASK" --as minh.pham --set approved=true \
  --set note="two earlier contracts registered in HCMC"
registered() { tayninh show "$CASE" --json | jq -e '.status == "registered"'; }
wait_until 60 registered

say "both histories: each records the other side's case id and event hash"
echo "-- Tay Ninh, case $CASE"
tayninh history "$CASE"
echo "-- HCMC, case $HCMC_CASE"
answered() { hcmc history "$HCMC_CASE" --json | jq -e 'any(.action == "federation.answered")'; }
wait_until 30 answered
hcmc history "$HCMC_CASE"

say "the auditors: each chain verifies, and Tay Ninh's exchanges agree with HCMC's history"
hcmc audit verify
tayninh audit verify --peer hcmc-dost

say "the access logs (no body, no personal value)"
tail -n 2 "$OUT/tayninh.access.log" | sed 's/^/   /'
echo "everything is in $OUT/"
