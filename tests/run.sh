#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, starts a throwaway PostgreSQL when
# WF_TEST_PG_URL is not set already (needs root to run it as the postgres user), runs CTest.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash .ci/setup
if [ -z "${WF_TEST_PG_URL:-}" ] && [ "$(id -u)" -eq 0 ]; then
  eval "$(bash .ci/pg)"
  # The trap runs after the `cd` below: every path in it is absolute.
  trap 'bash "$ROOT/.ci/pg" stop "$WF_TEST_PG_ROOT"' EXIT
  export WF_REQUIRE_PG=1
fi
no_postgres() {
  [ -z "${WF_TEST_PG_URL:-}" ] || return 0
  echo "== PostgreSQL is NOT tested in this run: WF_TEST_PG_URL is not set and only root can start"
  echo "   a throwaway cluster (as the postgres user). The PostgreSQL tests report 'skipped'."
}
no_postgres
cd "${WF_BUILD_DIR:-build}"
status=0
ctest --output-on-failure -j2 --timeout 600 || status=$?
no_postgres  # again below CTest's summary, where it is read
exit $status
