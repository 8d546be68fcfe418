#!/usr/bin/env bash
# Smoke test of the benchmark harness: `bench/run.sh --quick --no-peers` runs end to end on the
# PostgreSQL server of WF_TEST_PG_URL and writes its figures as JSON with every expected key.
# Checks only that it ran and what it wrote, never a timing. Skips (77) without PostgreSQL, or
# fails when WF_REQUIRE_PG=1.
# Usage: quick_test.sh WF MOCK
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ -z "${WF_TEST_PG_URL:-}" ]; then
  [ "${WF_REQUIRE_PG:-}" = 1 ] && fail "WF_REQUIRE_PG=1 but WF_TEST_PG_URL is not set"
  echo "SKIP: WF_TEST_PG_URL is not set (tests/run.sh and .ci/run set it)"
  exit 77
fi
OUT=$(mktemp /tmp/wf-bench-quick.XXXXXX.json)
trap 'rm -f "$OUT"' EXIT

WF=$1 WF_MOCK=$2 WF_BENCH_PG_URL=$WF_TEST_PG_URL \
  bash "$ROOT/bench/run.sh" --quick --no-peers --out "$OUT" || fail "bench/run.sh --quick failed"
jq -e . "$OUT" > /dev/null || fail "$OUT is not JSON"
# Every figure the table and the README use is there and is a number.
paths=(meta.total_seconds pgbench.1.tps pgbench.4.tps pgbench.16.tps
  latency.e2e_ms.p50 latency.e2e_ms.p99 latency.half_rate.offered_cases_per_s
  latency.half_rate.dispatch_ms.p50 latency.half_rate.dispatch_ms.p99
  growth.0.start_cases_per_s growth.0.show_ms growth.0.inbox_ms growth.1.show_ms
  growth.1.inbox_ms ratios.wf_noop_1_over_pgbench_4 ratios.wf_http_1_over_pgbench_4)
for run in noop_1 noop_2 http_1 http_2; do
  for f in transitions_per_s cases_per_s start_cases_per_s engine_wall_seconds \
           engine_cpu_seconds peak_rss_mb step_transitions completed; do
    paths+=("wf.$run.$f")
  done
done
missing=$(printf '%s\n' "${paths[@]}" | jq -R . | jq -s . |
  jq -r --slurpfile r "$OUT" '.[] | . as $p
    | (reduce ($p | split("."))[] as $k ($r[0];
        if type == "array" then .[$k | tonumber] elif type == "object" then .[$k] else null end))
    | select(type != "number") | $p')
[ -z "$missing" ] || fail "missing or not numbers in $OUT: $(echo $missing)"
# What the runs did, not how fast: every case of every wf run completed, five steps each.
for run in noop_1 noop_2 http_1 http_2; do
  jq -e --arg k "$run" '.wf[$k] | .completed == .cases and .step_transitions == 5 * .cases' \
    "$OUT" > /dev/null || fail "wf run $run did not complete its cases: $(jq -c --arg k "$run" '.wf[$k]' "$OUT")"
done
jq -e '.wf.http_1.mock_agency.conflicts == 0 and .wf.http_1.mock_agency.applied == 5 * .wf.http_1.cases' \
  "$OUT" > /dev/null || fail "the mock agency did not apply every call once: $(jq -c .wf.http_1.mock_agency "$OUT")"
[ "$(jq -r .meta.mode "$OUT")" = quick ] || fail "meta.mode is not quick"
[ "$(jq -r .peers "$OUT")" = null ] || fail "--no-peers still ran the peers"
echo "ok: bench/run.sh --quick wrote $(jq '[paths(numbers)] | length' "$OUT") figures"
