#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, starts a throwaway PostgreSQL when
# WF_TEST_PG_URL is not set already (needs root to run it as the postgres user), runs CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
if [ -z "${WF_TEST_PG_URL:-}" ] && [ "$(id -u)" -eq 0 ]; then
  eval "$(bash .ci/pg)"
  trap 'bash .ci/pg stop "$WF_TEST_PG_ROOT"' EXIT
  export WF_REQUIRE_PG=1
fi
cd "${WF_BUILD_DIR:-build}"
ctest --output-on-failure -j2 --timeout 600
