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
start_chain_cases "$CASES"
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

check_chain_run "$CASES"
log "ok: $CASES cases completed across two PostgreSQL restarts"
