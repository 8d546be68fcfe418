#!/usr/bin/env bash
# PostgreSQL restarted (fast, then immediate) in the middle of a run: the engine backs off while
# the database is away, reconnects, and finishes the run with nothing lost.
# Usage: pg_restart_test.sh WF MOCK [CASES]
WF=$1 MOCK=$2 BACKEND=postgresql CASES=${3:-200}
source "$(dirname "$0")/lib.sh"
use_database
# Slow enough that both restarts fall inside the run (about 13 s of department latency at
# concurrency 16); a faster machine only makes the restarts land earlier in it.
start_mock --latency-ms 200
"$WF" deploy "$HERE/chain.yaml" > /dev/null
for i in $(seq 1 "$CASES"); do printf '{"id": "%012d"}\n' "$i"; done > "$WORK/cases.jsonl"
"$WF" start fault-chain --batch "$WORK/cases.jsonl" > /dev/null
log "$CASES cases started"

"$WF" engine --concurrency 16 --until-idle > "$WORK/engine.log" 2>&1 &
engine=$!
PIDS+=($engine)
pg() { su postgres -c "$FAULT_PG_BIN/pg_ctl -D '$FAULT_PG_DIR' -w $*" > /dev/null; }
for mode in fast immediate; do
  sleep 1
  kill -0 "$engine" 2>/dev/null || fail "the run ended before the $mode restart; nothing was tested (raise --latency-ms)"
  log "restarting PostgreSQL ($mode)"
  pg stop -m "$mode"
  sleep 2   # the engine must back off while the database is away, not die
  kill -0 "$engine" 2>/dev/null || fail "the engine exited while the database was away: $(tail -5 "$WORK/engine.log")"
  pg start -l "$FAULT_PG_ROOT/log"
done
wait "$engine" || fail "engine exited with $?: $(tail -5 "$WORK/engine.log")"

open=$(count_open)
completed=$("$WF" cases --status completed --limit 0 --json | jq length)
[ "$open" -eq 0 ] || fail "$open cases still open"
[ "$completed" -eq "$CASES" ] || fail "$completed of $CASES cases completed"
"$WF" audit verify > /dev/null || fail "history does not verify"
keys_per_step=$(http_get /_ledger | jq '[.[] | {k: (.case + "/" + .step), key}] | group_by(.k) | map([.[].key] | unique | length) | max')
[ "$keys_per_step" -eq 1 ] || fail "a step reached the department under $keys_per_step keys"
log "ok: $CASES cases completed across two PostgreSQL restarts"
