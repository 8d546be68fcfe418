#!/usr/bin/env bash
# Engines killed with SIGKILL at random moments during a run of hundreds of cases, restarted:
# every case completes, the history verifies, and no step reached the department under two
# different idempotency keys (the mock agency's ledger says so).
# Usage: crash_test.sh WF MOCK sqlite|postgresql [CASES]
WF=$1 MOCK=$2 BACKEND=$3 CASES=${4:-300}
source "$(dirname "$0")/lib.sh"
use_database
start_mock --latency-ms 20
start_chain_cases "$CASES"
log "$CASES cases started on $BACKEND"

engines=2
[ "$BACKEND" = sqlite ] && engines=1
kills=0
for round in $(seq 1 12); do
  running=()
  for _ in $(seq 1 $engines); do
    "$WF" engine --lease 2 --concurrency 16 >> "$WORK/engine.log" 2>&1 &
    running+=($!)
    PIDS+=($!)
  done
  sleep "0.$(( RANDOM % 9 + 1 ))"
  victim=${running[$(( RANDOM % ${#running[@]} ))]}
  kill -9 "$victim" 2>/dev/null && kills=$((kills + 1))
  sleep "0.$(( RANDOM % 5 + 1 ))"
  for pid in "${running[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  open=$(count_open)
  log "round $round: $kills engines killed so far, $open cases open"
  [ "$open" -eq 0 ] && break
done
log "finishing the run with one engine"
timeout 600 "$WF" engine --lease 2 --until-idle >> "$WORK/engine.log" 2>&1 || fail "final engine failed: $(tail -5 "$WORK/engine.log")"

check_chain_run "$CASES"
log "ok: $CASES cases completed through $kills SIGKILLs; $STEPS steps, one key each"
