# Shared by the fault tests: a scratch folder, the mock agency, a database, wf on PATH-less calls.
# Expects WF (the wf binary), MOCK (wf-mock-agency) and BACKEND (sqlite or postgresql).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/wf-fault.XXXXXX)
PIDS=()
PG_ROOT=""
cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  if [ -n "$PG_ROOT" ]; then bash "$ROOT/.ci/pg" stop "$PG_ROOT"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] $*"; }

# Waits up to $2 seconds for file $1 to exist and be non-empty.
wait_for_file() {
  for _ in $(seq 1 $(( $2 * 10 ))); do [ -s "$1" ] && return 0; sleep 0.1; done
  fail "timed out waiting for $1"
}

start_mock() {
  "$MOCK" --port 0 --port-file "$WORK/mock.port" --quiet "$@" > "$WORK/mock.log" 2>&1 &
  PIDS+=($!)
  wait_for_file "$WORK/mock.port" 20
  MOCK_PORT=$(cat "$WORK/mock.port")
  cat > "$WORK/config.yaml" <<CONFIG
departments:
  registry: {adapter: http, url: "http://127.0.0.1:$MOCK_PORT/population-db", timeout: 5s}
agencies:
  test-agency: {members: {an.nguyen: [officer]}}
CONFIG
  export WF_CONFIG="$WORK/config.yaml"
}

# A throwaway PostgreSQL cluster of this test's own (it may be restarted), or SQLite.
use_database() {
  if [ "$BACKEND" = postgresql ]; then
    if [ "$(id -u)" -ne 0 ]; then
      # Skipped (77) as the other PostgreSQL tests are; a failure where PostgreSQL is required.
      [ "${WF_REQUIRE_PG:-}" = 1 ] && fail "WF_REQUIRE_PG=1 but only root can run a PostgreSQL cluster"
      echo "SKIP: needs root to run a PostgreSQL cluster"
      exit 77
    fi
    exports=$(bash "$ROOT/.ci/pg") || fail "could not start a PostgreSQL cluster"
    eval "$(sed 's/WF_TEST_PG/FAULT_PG/' <<< "$exports")"
    PG_ROOT=$FAULT_PG_ROOT
    export WF_DB=$FAULT_PG_URL
  else
    export WF_DB="sqlite:$WORK/wf.db"
  fi
}

http_get() {  # path -> body, through bash's /dev/tcp (no curl needed)
  exec 3<>"/dev/tcp/127.0.0.1/$MOCK_PORT"
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}

count_open() { "$WF" cases --status open --limit 0 --json | jq length; }

# Runs one query that answers a single value, behind the engines' backs (psql or sqlite3).
sql_value() {
  if [ "$BACKEND" = postgresql ]; then
    psql -XAtq "$WF_DB" -c "$1"
  else
    sqlite3 -cmd ".timeout 10000" "$WORK/wf.db" "$1"
  fi
}

# How many work rows are leased to the engine process $1 (its owner is "<host>:<pid>:<n>").
leased_by() { sql_value "SELECT COUNT(*) FROM work WHERE state = 'leased' AND owner LIKE '%:$1:%'"; }

# Prints the seconds (since the time $2, from `date +%s.%N`) until no work row is leased to the
# dead engine $1 any more: taken over and claimed by a live engine, or finished. Measured, not
# asserted; $3 seconds (below the default lease of 120 s) is only the deadline of a failed test.
wait_taken_over() {
  local pid=$1 since=$2 deadline=$3
  elapsed() { awk -v now="$(date +%s.%N)" -v since="$since" 'BEGIN { printf "%.2f", now - since }'; }
  while [ "$(leased_by "$pid")" -gt 0 ]; do
    if awk -v e="$(elapsed)" -v d="$deadline" 'BEGIN { exit !(e > d) }'; then
      fail "the work of engine $pid was not taken over within $deadline s"
    fi
    sleep 0.05
  done
  elapsed
}

# Deploys chain.yaml and starts $1 cases of it in one batch.
start_chain_cases() {
  "$WF" deploy "$HERE/chain.yaml" > /dev/null
  for i in $(seq 1 "$1"); do printf '{"id": "%012d"}\n' "$i"; done > "$WORK/cases.jsonl"
  "$WF" start fault-chain --batch "$WORK/cases.jsonl" > /dev/null
}

# The most idempotency keys any one step reached the department under (1 when none was doubled).
max_keys_per_step() {
  http_get /_ledger | jq '[.[] | {k: (.case + "/" + .step), key}] | group_by(.k) | map([.[].key] | unique | length) | max'
}

# After a run of $1 chain cases: every case completed, the history verifies, and each step
# reached the department under one key with one body (5 steps a case); sets STEPS.
check_chain_run() {
  local open completed keys conflicts
  open=$(count_open)
  completed=$("$WF" cases --status completed --limit 0 --json | jq length)
  [ "$open" -eq 0 ] || fail "$open cases still open"
  [ "$completed" -eq "$1" ] || fail "$completed of $1 cases completed"
  "$WF" audit verify > /dev/null || fail "history does not verify"
  keys=$(max_keys_per_step)
  [ "$keys" -eq 1 ] || fail "a step reached the department under $keys different keys"
  STEPS=$(http_get /_ledger | jq '[.[] | (.case + "/" + .step)] | unique | length')
  [ "$STEPS" -eq $(( $1 * 5 )) ] || fail "$STEPS steps reached the department, expected $(( $1 * 5 ))"
  conflicts=$(http_get /_stats | jq '.conflicts')
  [ "$conflicts" -eq 0 ] || fail "$conflicts idempotency conflicts"
}
