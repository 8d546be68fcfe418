#!/usr/bin/env bash
# A department call longer than the lease (lease 2 s, the department answers after 5 s): the
# engine renews the lease while the call runs, so the call reaches the department exactly once
# and the case completes.
# Usage: long_call_test.sh WF MOCK sqlite|postgresql
WF=$1 MOCK=$2 BACKEND=$3
source "$(dirname "$0")/lib.sh"
use_database
start_mock --latency-ms 5000
# The call's own timeout must outlast the department's answer.
sed -i 's/timeout: 5s/timeout: 30s/' "$WORK/config.yaml"
"$WF" deploy "$HERE/long_call.yaml" > /dev/null
printf '{"id": "%012d"}\n' 1 > "$WORK/case.json"
id=$("$WF" start fault-long-call --data "$WORK/case.json")
timeout 300 "$WF" engine --lease 2 --until-idle > "$WORK/engine.log" 2>&1 || fail "engine: $(tail -5 "$WORK/engine.log")"
status=$("$WF" show "$id" --json | jq -r .status)
[ "$status" = completed ] || fail "the case is $status: $(tail -5 "$WORK/engine.log")"
requests=$(http_get /_stats | jq '.requests')
[ "$requests" -eq 1 ] || fail "the department was called $requests times"
if grep -q "was lost" "$WORK/engine.log"; then fail "a lease was lost: $(grep 'was lost' "$WORK/engine.log")"; fi
log "ok: a 5 s call under a 2 s lease reached the department once on $BACKEND"
