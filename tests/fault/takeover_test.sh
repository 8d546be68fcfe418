#!/usr/bin/env bash
# Engines under the DEFAULT lease (120 s) killed with SIGKILL in the middle of a run: the work of
# each dead engine is taken over within seconds, by an engine still running (PostgreSQL) or one
# started after it (SQLite), never after the lease; `wf engine --until-idle` started after the
# last crash finishes every case; no step reached the department under two idempotency keys.
# Prints each take-over time (from the SIGKILL until no row is leased to the dead engine); the
# times are measured, not asserted (a deadline below the lease only ends a failed test).
# Usage: takeover_test.sh WF MOCK sqlite|postgresql [CASES]
WF=$1 MOCK=$2 BACKEND=$3 CASES=${4:-80}
source "$(dirname "$0")/lib.sh"
use_database
# Each call takes 3 s, so every round kills engines with calls in flight and work left.
start_mock --latency-ms 3000
start_chain_cases "$CASES"
log "$CASES cases started on $BACKEND"

# Starts an engine with the default lease and concurrency, which leaves a survivor room to
# claim what it takes over at once; its pid in ENGINE.
engine() {
  "$WF" engine >> "$WORK/engine.log" 2>&1 &
  ENGINE=$!
  PIDS+=($ENGINE)
}
# Waits (deadline 60 s) until one of the engines $@ holds leased work; prints its pid.
wait_holding() {
  for _ in $(seq 1 600); do
    for pid in "$@"; do [ "$(leased_by "$pid")" -gt 0 ] && { echo "$pid"; return 0; }; done
    sleep 0.1
  done
  fail "no engine of $* leased any work: $(tail -5 "$WORK/engine.log")"
}

times=()
for round in 1 2 3; do
  started=()
  engine; started+=($ENGINE)
  if [ "$BACKEND" = postgresql ]; then engine; started+=($ENGINE); fi
  # The victim is an engine with work; the other one (PostgreSQL) must take it over.
  victim=$(wait_holding "${started[@]}")
  others=()
  for pid in "${started[@]}"; do [ "$pid" != "$victim" ] && others+=($pid); done
  sleep "0.$(( RANDOM % 5 ))"
  held=$(leased_by "$victim")
  killed_at=$(date +%s.%N)
  kill -9 "$victim"
  wait "$victim" 2>/dev/null || true
  if [ "$BACKEND" = sqlite ]; then engine; others+=($ENGINE); fi  # one engine at a time
  took=$(wait_taken_over "$victim" "$killed_at" 90)
  times+=("$took")
  log "round $round: engine $victim killed holding $held rows; taken over after ${took} s"
  for pid in "${others[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  last_killed=("${others[@]}")
done

log "finishing the run with wf engine --until-idle (default lease)"
killed_at=$(date +%s.%N)
timeout 600 "$WF" engine --until-idle >> "$WORK/engine.log" 2>&1 &
final=$!
for pid in "${last_killed[@]}"; do
  took=$(wait_taken_over "$pid" "$killed_at" 90)
  times+=("$took")
  log "engine $pid, killed before the final engine started: taken over after ${took} s"
done
wait "$final" || fail "final engine failed: $(tail -5 "$WORK/engine.log")"

check_chain_run "$CASES"
log "take-over times on $BACKEND (lease 120 s): ${times[*]} s"
log "ok: $CASES cases completed; $STEPS steps, one key each"
