#!/usr/bin/env bash
# What sealing personal data costs (issue: personal data, "within 10%"): ROUNDS rounds of
# engine_noop.sh CASES, each round the same procedure and data twice in turn, once with nothing
# marked personal (`unmarked`) and once with the citizen id and name marked `personal: true`
# (BENCH_PERSONAL=1, chain5-personal.yaml), each on a fresh database of one throwaway PostgreSQL
# cluster. Prints every run, the medians and the differences (of the medians, and the median of
# each round's own difference), and writes them as JSON to OUT.
# Usage: bench/personal.sh [ROUNDS] [CASES] [OUT]   (defaults: 5, 5000, bench/results/DATE-personal.json)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${1:-5}
CASES=${2:-5000}
OUT=${3:-$ROOT/bench/results/$(date -u +%F)-personal.json}
PG_ROOT=""
WORK=$(mktemp -d /tmp/wf-bench-personal.XXXXXX)
cleanup() { [ -n "$PG_ROOT" ] && bash "$ROOT/.ci/pg" stop "$PG_ROOT"; rm -rf "$WORK"; }
trap cleanup EXIT
exports=$(bash "$ROOT/.ci/pg")
eval "$(sed 's/WF_TEST_PG/BENCH_PG/' <<< "$exports")"
PG_ROOT=$BENCH_PG_ROOT
PSQL=("$BENCH_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$BENCH_PG_URL")
server=${BENCH_PG_URL%/*}

for round in $(seq 1 "$ROUNDS"); do
  # Alternate which mode goes first, so that a machine slowly getting busier favours neither.
  modes=(unmarked personal)
  [ $((round % 2)) -eq 0 ] && modes=(personal unmarked)
  for mode in "${modes[@]}"; do
    "${PSQL[@]}" -c "DROP DATABASE IF EXISTS bench_personal" -c "CREATE DATABASE bench_personal"
    flag=unmarked
    [ "$mode" = personal ] && flag=1
    # (stderr kept only when the run fails: the personal runs say where they made a key file)
    if ! out=$(BENCH_PERSONAL=$flag bash "$ROOT/bench/engine_noop.sh" "$CASES" \
                 --db "$server/bench_personal" 2> "$WORK/stderr"); then
      cat "$WORK/stderr" >&2
      exit 1
    fi
    rate=$(sed -n 's/^step transitions: .* committed, \([0-9]*\) per second$/\1/p' <<< "$out")
    cpu=$(sed -n 's/^engine CPU time: *\([0-9.]*\) s$/\1/p' <<< "$out")
    echo "round $round $mode: $rate transitions/s, engine CPU $cpu s"
    echo "$round $mode $rate $cpu" >> "$WORK/runs"
  done
done

python3 - "$WORK/runs" "$OUT" "$CASES" "$(git -C "$ROOT" rev-parse --short HEAD)" <<'PY'
import json, statistics, sys, datetime, os
runs_file, out, cases, commit = sys.argv[1:5]
runs = [line.split() for line in open(runs_file)]
def of(mode, i, cast):
    return [cast(r[i]) for r in runs if r[1] == mode]
result = {"meta": {"date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "commit": commit, "cases": int(cases), "transitions_per_run": 5 * int(cases),
                   "load_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg())}}
for mode in ("unmarked", "personal"):
    rates, cpus = of(mode, 2, int), of(mode, 3, float)
    result[mode] = {"transitions_per_s": rates, "engine_cpu_s": cpus,
                    "median_transitions_per_s": statistics.median(rates),
                    "median_engine_cpu_s": statistics.median(cpus)}
u, p = result["unmarked"], result["personal"]
result["throughput_change_pct"] = round(100 * (p["median_transitions_per_s"] /
                                               u["median_transitions_per_s"] - 1), 1)
result["engine_cpu_change_pct"] = round(100 * (p["median_engine_cpu_s"] /
                                               u["median_engine_cpu_s"] - 1), 1)
# Each round's two runs side by side: on a noisy machine the steadier figure.
paired = [100 * (pr / ur - 1) for ur, pr in zip(u["transitions_per_s"], p["transitions_per_s"])]
result["throughput_change_pct_by_round"] = [round(x, 1) for x in paired]
result["throughput_change_pct_median_of_rounds"] = round(statistics.median(paired), 1)
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print(f"median unmarked {u['median_transitions_per_s']} transitions/s "
      f"(CPU {u['median_engine_cpu_s']} s), personal {p['median_transitions_per_s']} "
      f"(CPU {p['median_engine_cpu_s']} s): throughput {result['throughput_change_pct']:+}% "
      f"(median of the rounds' own differences {result['throughput_change_pct_median_of_rounds']:+}%), "
      f"engine CPU {result['engine_cpu_change_pct']:+}%; written to {out}")
PY
