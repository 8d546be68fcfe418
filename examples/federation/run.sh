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
# WF_BUILD_DIR: where cli/wf is (default build/); WF_DEMO_OUT: the folder for its files (default
# build/demo/); they go to its federation/ subfolder. Every process it starts is stopped when it
# ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${WF_BUILD_DIR:-build}
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
WF=$BUILD/cli/wf
[ -x "$WF" ] || { echo "no wf at $WF: run bash .ci/setup wf first" >&2; exit 4; }
for tool in curl jq openssl; do
  command -v "$tool" >/dev/null || { echo "the federation demo needs $tool" >&2; exit 4; }
done
OUT=${WF_DEMO_OUT:-$BUILD/demo}/federation
rm -rf "$OUT"
mkdir -p "$OUT"

PIDS=()          # the background processes, stopped on exit
declare -A NAME  # pid -> "hcmc serve", ...
declare -A LOG   # pid -> the file its standard error goes to
stop_all() {
  local pid deadline=$(($(date +%s) + 10))
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "federation demo: ${NAME[$pid]} did not stop within 10 s of SIGTERM: killed" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
say() { printf '\n== %s\n' "$*"; }
fail() { echo "federation demo: $*" >&2; exit 1; }
# Fails, with the end of its log, when a background process has stopped.
check_running() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && continue
    tail -n 20 "${LOG[$pid]}" >&2 || true
    fail "${NAME[$pid]} stopped (above: the end of ${LOG[$pid]})"
  done
}
# Polls the command until it succeeds, for at most $1 seconds.
wait_until() {
  local limit=$1
  shift
  local deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    check_running
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for: $*"
    sleep 0.2
  done
}
# background SIDE OUT ERR ARGS...: `wf ARGS...` against SIDE's database and config, in the
# background, its standard output to OUT and its standard error to ERR (appended: they may be
# the same file).
background() {
  local side=$1 out=$2 err=$3
  shift 3
  "$WF" --db "sqlite:$OUT/$side/wf.db" --config "$OUT/$side/deploy.yaml" "$@" >>"$out" 2>>"$err" &
  PIDS+=($!)
  NAME[$!]="$side $1"
  LOG[$!]=$err
}

say "two deployments in $OUT: hcmc/ and tayninh/, each with its own certificate (one demo CA)"
cp -r examples/federation/hcmc examples/federation/tayninh "$OUT/"
bash examples/federation/make-certs.sh "$OUT/certs" hcmc-dost tayninh-dost tayninh-portal
for side in hcmc:hcmc-dost tayninh:tayninh-dost; do
  # A deployment gets the CA's certificate and its own key pair; the CA's key stays out.
  mkdir -p "$OUT/${side%%:*}/certs"
  cp -p "$OUT/certs/ca.pem" "$OUT/certs/${side#*:}".{pem,key} "$OUT/${side%%:*}/certs/"
done
for f in "$OUT"/*/certs/*.pem "$OUT/certs/tayninh-portal.pem"; do
  echo "   ${f#"$OUT"/}: $(openssl x509 -in "$f" -noout -subject)"
done
hcmc() { "$WF" --db "sqlite:$OUT/hcmc/wf.db" --config "$OUT/hcmc/deploy.yaml" "$@"; }
tayninh() { "$WF" --db "sqlite:$OUT/tayninh/wf.db" --config "$OUT/tayninh/deploy.yaml" "$@"; }

say "each side's wf serve (TLS, client certificates required)"
# `wf serve --listen 127.0.0.1:0` takes a free port and prints "... https://127.0.0.1:PORT" when
# it listens (in the reader's language: only the URL is read).
url_of() { grep -Eom1 'https://127\.0\.0\.1:[0-9]+' "$OUT/$1.serve.out"; }
for side in hcmc tayninh; do
  background "$side" "$OUT/$side.serve.out" "$OUT/$side.access.log" serve --listen 127.0.0.1:0
  wait_until 30 url_of "$side"
  echo "   $side: $(cat "$OUT/$side.serve.out")"
done
HCMC_URL=$(url_of hcmc)
TAYNINH_URL=$(url_of tayninh)
export HCMC_URL TAYNINH_URL   # Tay Ninh's department hcmc-dost: url and callback_url

say "deploying: technology-transfer-records at HCMC, the interprovincial registration at Tay Ninh"
hcmc deploy "$OUT"/hcmc/procedures/*.yaml
tayninh deploy "$OUT"/tayninh/procedures/*.yaml

say "each side's engine"
for side in hcmc tayninh; do
  background "$side" "$OUT/$side.engine.log" "$OUT/$side.engine.log" engine
done
echo "   running; logs in $OUT/*.engine.log"

say "the company files at Tay Ninh through the portal (POST with the portal's certificate)"
portal=(--cacert "$OUT/certs/ca.pem" --cert "$OUT/certs/tayninh-portal.pem"
  --key "$OUT/certs/tayninh-portal.key")
key=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || echo "portal-$(date +%s)-$$")
post_application() {
  curl -sS --fail-with-body "${portal[@]}" -H "Idempotency-Key: $key" \
    -H 'Content-Type: application/json' --data @examples/federation/tayninh/cases/company.json \
    "$TAYNINH_URL/v1/procedures/technology-transfer-registration-interprovincial/cases"
}
answer=$(post_application)
echo "   $answer"
CASE=$(jq -r .id <<<"$answer")
echo "   the same request again (a retry) gets the same case:"
echo "   $(post_application)"

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
tayninh claim "$TASK" --as minh.pham
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
tayninh audit verify
tayninh audit verify --peer hcmc-dost

say "the access logs (no body, no personal value)"
tail -n 2 "$OUT/tayninh.access.log" | sed 's/^/   /'
echo "everything is in $OUT/"
