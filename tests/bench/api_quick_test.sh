#!/usr/bin/env bash
# bench/api.sh --quick as a smoke test: it runs, and every figure is in its JSON as a number.
# Nothing about speed is asserted. Skipped (77) without WF_TEST_PG_URL.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${WF_TEST_PG_URL:-}" ]; then
  [ "${WF_REQUIRE_PG:-}" = 1 ] && { echo "FAIL: WF_REQUIRE_PG=1 but WF_TEST_PG_URL is not set"; exit 1; }
  echo "SKIP: WF_TEST_PG_URL is not set"
  exit 77
fi
out=$(mktemp /tmp/wf-api-bench.XXXXXX.json)
trap 'rm -f "$out"' EXIT
WF=$1 WF_BENCH_PG_URL=$WF_TEST_PG_URL bash "$ROOT/bench/api.sh" --quick --out "$out"
jq -e '[.api.start_cases_per_s_plain, .api.start_cases_per_s_tls,
        .federation.local_step_e2e_ms.p50, .federation.federated_step_e2e_ms.p50,
        .federation.added_ms_p50] | all(type == "number")' "$out" >/dev/null ||
  { echo "FAIL: a figure is missing: $(cat "$out")"; exit 1; }
echo "ok: $(jq -c '{api, added_ms_p50: .federation.added_ms_p50}' "$out")"
