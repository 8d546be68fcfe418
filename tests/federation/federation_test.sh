#!/usr/bin/env bash
# Federation with both deployments real (DESIGN.md, "Federation"): Tay Ninh's case asks HCMC's
# deployment, through its `wf serve`, for a case of a procedure there; the answer comes back to
# Tay Ninh's `wf serve` when HCMC's clerk ends it. Two SQLite databases, two `wf serve` over TLS
# with certificates from examples/federation/make-certs.sh, two `wf engine`. On the way, each side's
# server and engine is killed (-9) at the worst moment and started again: nothing is lost, HCMC
# holds one case for the one idempotency key, each side records the answer once, and
# `wf audit verify --peer` finds both histories in agreement.
#   federation_test.sh WF
set -euo pipefail
WF=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/wf-federation.XXXXXX)
declare -A PID
cleanup() {
  for name in "${!PID[@]}"; do kill -9 "${PID[$name]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${WF_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
  exit 1
}
log() { echo "[$(date +%T)] $*"; }
command -v curl >/dev/null || fail "curl is needed (bash .ci/setup installs it)"

# Polls `$2...` (a command) every 0.2 s until it succeeds, for at most $1 seconds.
wait_until() {
  local limit=$1
  shift
  local deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for: $*"
    sleep 0.2
  done
}

bash "$ROOT/examples/federation/make-certs.sh" "$WORK/certs" tayninh-dost hcmc-dost tayninh-portal \
  >/dev/null

# --- the procedures -------------------------------------------------------------------------
mkdir -p "$WORK/hcmc" "$WORK/tayninh"
cat >"$WORK/hcmc/records.yaml" <<'YAML'
procedure: contract-records
title: Earlier technology-transfer contracts of a company
agency: hcmc-dost
roles:
  records_officer: {description: keeps the register of technology-transfer contracts}
input:
  required: [tax_code]
  properties:
    tax_code: {type: string, pattern: "^[0-9]{10}$"}
steps:
  confirm:
    task: Confirm the company's registered contracts
    role: records_officer
    form: {contracts: integer}
    save_as: records
    next: done
  done:
    end: completed
YAML
cat >"$WORK/tayninh/registration.yaml" <<'YAML'
procedure: transfer-registration
title: Technology-transfer contract registration
agency: tayninh-dost
roles:
  officer: {description: registers technology-transfer contracts}
input:
  required: [tax_code]
  properties:
    tax_code: {type: string, pattern: "^[0-9]{10}$"}
steps:
  ask-hcmc:
    adapter: hcmc-dost
    call: {operation: start, procedure: contract-records, tax_code: "${ .tax_code }"}
    save_as: hcmc
    timeout: 10s
    retry: {attempts: 100, backoff: 1s, max_backoff: 2s}
    next: review
  review:
    task: Review the contract with HCMC's records
    role: officer
    form: {approved: boolean}
    next: registered
  registered:
    end: registered
YAML

# --- the deployments ------------------------------------------------------------------------
cat >"$WORK/hcmc/deploy.yaml" <<'YAML'
identity: {name: hcmc-dost, cert: ../certs/hcmc-dost.pem, key: ../certs/hcmc-dost.key, ca: ../certs/ca.pem}
clients:
  tayninh-dost: {may: [start, show], procedures: [contract-records]}
agencies:
  hcmc-dost: {members: {thu.tran: [records_officer]}}
YAML
cat >"$WORK/tayninh/deploy.yaml" <<'YAML'
identity: {name: tayninh-dost, cert: ../certs/tayninh-dost.pem, key: ../certs/tayninh-dost.key, ca: ../certs/ca.pem}
clients:
  tayninh-portal: {may: [start, show], procedures: [transfer-registration]}
  hcmc-dost: {may: [events]}
departments:
  hcmc-dost: {adapter: wf, url: "${env.HCMC_URL}", callback_url: "${env.TAYNINH_URL}"}
agencies:
  tayninh-dost: {members: {minh.pham: [officer]}}
YAML
hcmc() { "$WF" --db "sqlite:$WORK/hcmc/wf.db" --config "$WORK/hcmc/deploy.yaml" "$@"; }
tayninh() { "$WF" --db "sqlite:$WORK/tayninh/wf.db" --config "$WORK/tayninh/deploy.yaml" "$@"; }

# Starts side $1's server on port $2 (0: a free one); its port in PORT.
start_serve() {
  local side=$1 port=$2
  : >"$WORK/$side.serve.out"
  "$WF" --db "sqlite:$WORK/$side/wf.db" --config "$WORK/$side/deploy.yaml" \
    serve --listen "127.0.0.1:$port" >"$WORK/$side.serve.out" 2>>"$WORK/$side.serve.log" &
  PID[$side.serve]=$!
  wait_until 30 grep -q 'listening on https://' "$WORK/$side.serve.out"
  PORT=$(sed -n 's|.*listening on https://127.0.0.1:\([0-9]*\).*|\1|p' "$WORK/$side.serve.out")
}
start_engine() {
  "$WF" --db "sqlite:$WORK/$1/wf.db" --config "$WORK/$1/deploy.yaml" engine \
    >>"$WORK/$1.engine.log" 2>&1 &
  PID[$1.engine]=$!
}
kill9() {
  kill -9 "${PID[$1]}"
  wait "${PID[$1]}" 2>/dev/null || true
  unset "PID[$1]"
}

start_serve hcmc 0
HCMC_PORT=$PORT
start_serve tayninh 0
TAYNINH_PORT=$PORT
export HCMC_URL="https://127.0.0.1:$HCMC_PORT" TAYNINH_URL="https://127.0.0.1:$TAYNINH_PORT"
hcmc deploy "$WORK/hcmc/records.yaml" >/dev/null
tayninh deploy "$WORK/tayninh/registration.yaml" >/dev/null
log "HCMC serves $HCMC_URL, Tay Ninh $TAYNINH_URL"

# --- 1. HCMC's server is down when Tay Ninh asks: the call is retried under its key ---------
kill9 hcmc.serve
start_engine tayninh
start_engine hcmc
portal=(--cacert "$WORK/certs/ca.pem" --cert "$WORK/certs/tayninh-portal.pem"
  --key "$WORK/certs/tayninh-portal.key")
answer=$(curl -sS --fail-with-body "${portal[@]}" -H 'Idempotency-Key: application-1' \
  -H 'Content-Type: application/json' --data '{"tax_code": "0312345678"}' \
  "$TAYNINH_URL/v1/procedures/transfer-registration/cases")
CASE=$(jq -r .id <<<"$answer")
[ -n "$CASE" ] && [ "$CASE" != null ] || fail "no case from Tay Ninh's API: $answer"
log "Tay Ninh case $CASE started by the portal; HCMC's server is down"
failed_attempts() { tayninh history "$CASE" --json | jq '[.[] | select(.action == "step.failed" or .action == "step.retry_scheduled")] | length'; }
has_failed() { test "$(failed_attempts)" -ge 1; }
wait_until 60 has_failed
start_serve hcmc "$HCMC_PORT"
log "HCMC's server is back on the same port"
hcmc_cases() { hcmc cases --limit 0 --json | jq length; }
one_hcmc_case() { test "$(hcmc_cases)" -eq 1; }
wait_until 60 one_hcmc_case

# --- 2. Tay Ninh's engine dies after HCMC made the case: the call again finds the same case --
kill9 tayninh.engine
start_engine tayninh
accepted() { tayninh history "$CASE" --json | jq -e '[.[] | select(.action == "step.accepted")] | length >= 1'; }
wait_until 60 accepted
HCMC_CASE=$(tayninh history "$CASE" --json |
  jq -r '[.[] | select(.action == "step.accepted")][0].details.receipt.case')
[ "$(hcmc_cases)" -eq 1 ] || fail "HCMC holds $(hcmc_cases) cases for one idempotency key"
[ "$(hcmc cases --json | jq -r '.[0].id')" = "$HCMC_CASE" ] || fail "the receipt names another case"
hcmc history "$HCMC_CASE" --json | jq -e --arg c "$CASE" \
  '[.[] | select(.action == "federation.requested" and .details.case == $c and .details.step == "ask-hcmc")] | length == 1' \
  >/dev/null || fail "HCMC's history does not record Tay Ninh's request"
log "HCMC case $HCMC_CASE, recorded on both sides"
# While the step waits, no certificate but HCMC's may deliver its answer (the portal is no
# department): 403, and the step still waits.
status=$(curl -s -o /dev/null -w '%{http_code}' "${portal[@]}" -H 'Content-Type: application/json' \
  --data "{\"case\": \"$HCMC_CASE\"}" "$TAYNINH_URL/v1/cases/$CASE/events/ask-hcmc")
[ "$status" = 403 ] || fail "the portal delivering HCMC's answer got $status, not 403"
tayninh show "$CASE" --json | jq -e '.data.hcmc == null' >/dev/null || fail "the portal's answer was taken"

# --- 3. HCMC's engine is down when its clerk ends the case, Tay Ninh's server when it comes
# back: the answer waits, then is retried until Tay Ninh's server is up again --------------
kill9 hcmc.engine
task=$(hcmc inbox --as thu.tran --json | jq -r '.[0].id')
hcmc complete "$task" --as thu.tran --set contracts=3 >/dev/null
kill9 tayninh.serve
start_engine hcmc
failed_answer() { hcmc cases --json >/dev/null; sqlite3 "$WORK/hcmc/wf.db" "SELECT attempts FROM federation_callbacks" | grep -qv '^0$'; }
wait_until 60 failed_answer
start_serve tayninh "$TAYNINH_PORT"
log "Tay Ninh's server is back; waiting for HCMC's answer"
review_open() { tayninh inbox --as minh.pham --json | jq -e 'length == 1'; }
wait_until 90 review_open

# --- 4. the answer is recorded once on each side; the same answer again is idempotent ------
received=$(tayninh history "$CASE" --json | jq '[.[] | select(.action == "signal.received")] | length')
[ "$received" -eq 1 ] || fail "Tay Ninh recorded the answer $received times"
tayninh show "$CASE" --json | jq -e --arg h "$HCMC_CASE" \
  '.data.hcmc.case == $h and .data.hcmc.status == "completed" and .data.hcmc.data.records.contracts == 3' \
  >/dev/null || fail "the step's result is not HCMC's case: $(tayninh show "$CASE" --json | jq -c .data)"
answered() { hcmc history "$HCMC_CASE" --json | jq -e '[.[] | select(.action == "federation.answered")] | length == 1'; }
wait_until 30 answered
body=$(tayninh show "$CASE" --json | jq -c .data.hcmc)
again=$(curl -sS --fail-with-body --cacert "$WORK/certs/ca.pem" --cert "$WORK/certs/hcmc-dost.pem" \
  --key "$WORK/certs/hcmc-dost.key" -H 'Content-Type: application/json' --data "$body" \
  "$TAYNINH_URL/v1/cases/$CASE/events/ask-hcmc")
jq -e '.repeated == true' <<<"$again" >/dev/null || fail "the same answer again: $again"

# --- 5. the case completes; both histories verify and agree ---------------------------------
task=$(tayninh inbox --as minh.pham --json | jq -r '.[0].id')
tayninh complete "$task" --as minh.pham --set approved=true >/dev/null
registered() { tayninh show "$CASE" --json | jq -e '.status == "registered"'; }
wait_until 60 registered
hcmc audit verify >/dev/null || fail "HCMC's history does not verify"
tayninh audit verify --peer hcmc-dost >"$WORK/peer.out" || fail "the histories disagree: $(cat "$WORK/peer.out")"
grep -q '^agree' "$WORK/peer.out" || fail "no exchange checked: $(cat "$WORK/peer.out")"
# Tampering with HCMC's copy is noticed from Tay Ninh's side.
sqlite3 "$WORK/hcmc/wf.db" "DROP TRIGGER history_no_update; UPDATE history SET details = replace(details, '\"contracts\":3', '\"contracts\":4') WHERE case_id = '$HCMC_CASE'"
if tayninh audit verify --peer hcmc-dost >"$WORK/peer.out" 2>&1; then
  fail "a tampered peer history passed: $(cat "$WORK/peer.out")"
fi
grep -q DISAGREE "$WORK/peer.out" || fail "no disagreement reported: $(cat "$WORK/peer.out")"
log "ok: one case at HCMC, one answer each side, histories agree (and tampering is found)"
