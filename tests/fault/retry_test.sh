#!/usr/bin/env bash
# A department that answers 503 to the first tries of every call: the engine retries with
# backoff under the same idempotency key and every case completes. Then a department that
# answers 202 and calls back later with `wf signal`: the parked steps resume with the result.
# Then a department that says 400: the step becomes an incident a clerk sees.
# Usage: retry_test.sh WF MOCK sqlite|postgresql
WF=$1 MOCK=$2 BACKEND=$3
source "$(dirname "$0")/lib.sh"
use_database
start_mock --fault population-db:fail_first=2 --callback-delay-ms 50 \
  --callback "$WF signal {case} {step} --data -"
start_chain_cases 20
timeout 300 "$WF" engine --until-idle > "$WORK/engine.log" 2>&1 || fail "engine: $(tail -3 "$WORK/engine.log")"
[ "$(count_open)" -eq 0 ] || fail "$(count_open) cases still open after retries"
stats=$(http_get /_stats)
[ "$(jq .conflicts <<< "$stats")" -eq 0 ] || fail "conflicting bodies under one key"
keys=$(max_keys_per_step)
[ "$keys" -eq 1 ] || fail "a step was retried under $keys different keys"
log "ok: 100 calls answered 503 twice each, all retried under their own key"

# 202, then the department calls back: `wf signal CASE STEP --data -` from the mock.
exports=$(printf 'WF_DB=%q WF_CONFIG=%q' "$WF_DB" "$WF_CONFIG")
http_post() {
  exec 3<>"/dev/tcp/127.0.0.1/$MOCK_PORT"
  printf 'POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$1" "${#2}" "$2" >&3
  cat <&3 > /dev/null
  exec 3<&-
}
http_post /_faults '{"department": "population-db", "fail_first": 0, "accept": true}'
printf '{"id": "%012d"}\n' 999 > "$WORK/one.json"
id=$("$WF" start fault-chain --data "$WORK/one.json")
for _ in $(seq 1 60); do
  "$WF" engine --until-idle --idle-wait 1 > /dev/null 2>&1
  [ "$("$WF" show "$id" --json | jq -r .status)" = completed ] && break
  sleep 0.5
done
[ "$("$WF" show "$id" --json | jq -r .status)" = completed ] || fail "the 202 case did not complete: $("$WF" show "$id")"
accepted=$("$WF" history "$id" --json | jq '[.[] | select(.action == "signal.received")] | length')
[ "$accepted" -eq 5 ] || fail "expected 5 callbacks (signals), saw $accepted"
log "ok: five 202 answers, each resumed by the department's callback"

# 400: a permanent failure without on_error becomes an incident.
http_post /_faults '{"department": "population-db", "accept": false, "status": 400}'
printf '{"id": "%012d"}\n' 998 > "$WORK/two.json"
id=$("$WF" start fault-chain --data "$WORK/two.json")
"$WF" engine --until-idle --idle-wait 1 > /dev/null 2>&1
incidents=$("$WF" show "$id" --json | jq '.incidents | length')
[ "$incidents" -eq 1 ] || fail "expected an incident, saw $incidents"
"$WF" incidents | grep -q "$id" || fail "wf incidents does not list the case"
log "ok: a 400 became an incident"
