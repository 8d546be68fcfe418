#!/usr/bin/env bash
# Measures the engine alone: N cases of a 5-step noop procedure started with --batch, then one
# `wf engine --until-idle` carrying them all to completion. Prints start rate, durable step
# transitions per second, cases per second, engine CPU time and peak resident memory.
# Usage: bench/engine_noop.sh [CASES] [--db URL]   (default: a throwaway PostgreSQL cluster)
# BENCH_PERSONAL=1: the same chain over a citizen id and name marked personal (chain5-personal.yaml);
# BENCH_PERSONAL=unmarked: the same procedure and data with no field marked personal, the baseline
# that shows what sealing costs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CASES=${1:-10000}
WF=${WF:-$ROOT/build/cli/wf}
WORK=$(mktemp -d /tmp/wf-bench.XXXXXX)
PG_ROOT=""
cleanup() { [ -n "$PG_ROOT" ] && bash "$ROOT/.ci/pg" stop "$PG_ROOT"; rm -rf "$WORK"; }
trap cleanup EXIT
if [ "${2:-}" = "--db" ]; then
  export WF_DB=$3
else
  exports=$(bash "$ROOT/.ci/pg")
  eval "$(sed 's/WF_TEST_PG/BENCH_PG/' <<< "$exports")"
  PG_ROOT=$BENCH_PG_ROOT
  export WF_DB=$BENCH_PG_URL
fi
unset WF_CONFIG
if [ -n "${BENCH_PERSONAL:-}" ]; then
  export WF_KEY_FILE=$WORK/wf.keys
  if [ "$BENCH_PERSONAL" = unmarked ]; then
    sed 's/, personal: true//' "$ROOT/bench/chain5-personal.yaml" > "$WORK/bench-chain.yaml"
  else
    cp "$ROOT/bench/chain5-personal.yaml" "$WORK/bench-chain.yaml"
  fi
  "$WF" deploy "$WORK/bench-chain.yaml" > /dev/null
  for i in $(seq 1 "$CASES"); do
    printf '{"id": "%d", "citizen_id": "0792%08d", "name": "Nguyễn Văn %d"}\n' "$i" "$i" "$i"
  done > "$WORK/cases.jsonl"
else
  "$WF" deploy "$ROOT/bench/chain5.yaml" > /dev/null
  for i in $(seq 1 "$CASES"); do printf '{"id": "%d"}\n' "$i"; done > "$WORK/cases.jsonl"
fi
t0=$(date +%s.%N)
"$WF" start bench-chain --batch "$WORK/cases.jsonl" --batch-size 1000 > /dev/null
t1=$(date +%s.%N)
# /usr/bin/time reports the engine's CPU time and peak memory at its end: sampling /proc from
# this shell (two awk processes every 100 ms) took a tenth of the 2-core machine being measured.
/usr/bin/time -f '%U %S %M' -o "$WORK/time" \
  "$WF" engine --until-idle --idle-wait 1 --concurrency "${CONCURRENCY:-1024}" --json \
  > "$WORK/engine.json" 2> "$WORK/engine.err" || { cat "$WORK/engine.err" >&2; exit 1; }
t2=$(date +%s.%N)
read -r user sys peak < "$WORK/time"
completed=$("$WF" cases --status completed --limit 0 --json | jq length)
transitions=$(jq .committed "$WORK/engine.json")
awk -v n="$CASES" -v s="$t0" -v b="$t1" -v e="$t2" -v tr="$transitions" -v done="$completed" \
    -v peak="$peak" -v cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" 'BEGIN {
  printf "cases started:        %d in %.2f s (%.0f cases/s)\n", n, b - s, n / (b - s);
  printf "engine run:           %.2f s for %d cases (%d completed)\n", e - b, n, done;
  printf "step transitions:     %d committed, %.0f per second\n", tr, tr / (e - b);
  printf "cases per second:     %.0f\n", done / (e - b);
  printf "engine CPU time:      %.2f s\n", cpu;
  printf "engine peak RSS:      %.1f MB\n", peak / 1024;
}'
