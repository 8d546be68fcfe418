#!/usr/bin/env bash
# wf's benchmark harness: one command, one table, one JSON file. See bench/README.md.
#
#   bench/run.sh [--quick] [--out FILE.json] [--peers|--no-peers] [--build-dir DIR]
#   bench/run.sh --report FILE.json [--out FILE.json]   (the table of an earlier run's JSON;
#                                    with --out, that JSON with its ratios recomputed)
#
# Measures on one PostgreSQL server (a throwaway cluster of its own from .ci/pg with
# synchronous_commit=on, or WF_BENCH_PG_URL), a fresh database per measurement:
#   1. pgbench: one step transition's work (bench/pgbench/step.sql) at 1, 4 and 16 clients;
#   2. wf: 5-step chains on the noop adapter and on the http adapter against the mock agency,
#      cases started with --batch, one and two engine processes; then a single case's end-to-end
#      latency at light load and the dispatch latency at half the peak rate;
#   3. peers (bench/peers, Node): graphile-worker and DBOS Transact on the same chain;
#   4. growth: start rate, `wf show` and `wf inbox` with 1k, 100k and 1M cases stored.
# Binaries: WF_BUILD_DIR or --build-dir (default build/), or WF and WF_MOCK for the two paths.
# Exit codes: 0 done, 1 a measurement failed, 2 usage, 3 not JSON (--report), 4 a binary, tool
# or file is missing, 6 a throwaway cluster needs root.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench

usage() { sed -n '4,6p' "$0" | sed 's/^#  *//'; }
die() { echo "bench: $1" >&2; exit "${2:-1}"; }

QUICK=0
PEERS=1
OUT=$BENCH/results/latest.json
BUILD=${WF_BUILD_DIR:-$ROOT/build}
REPORT=""
OUT_GIVEN=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --peers) PEERS=1 ;;
    --no-peers) PEERS=0 ;;
    --out) [ $# -ge 2 ] || die "--out needs a file name" 2; OUT=$2; OUT_GIVEN=1; shift ;;
    --build-dir) [ $# -ge 2 ] || die "--build-dir needs a folder" 2; BUILD=$2; shift ;;
    --report) [ $# -ge 2 ] || die "--report needs a JSON file" 2; REPORT=$2; shift ;;
    -h|--help) echo "usage: $(usage)"; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; echo "usage: $(usage)" >&2; exit 2 ;;
  esac
  shift
done
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
if [ -n "$REPORT" ]; then
  WORK=$(mktemp -d /tmp/wf-bench.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
else
WF=${WF:-$BUILD/cli/wf}
MOCK=${WF_MOCK:-$BUILD/examples/mock-agency/wf-mock-agency}
[ -x "$WF" ] || die "no wf binary at $WF; build it (cmake --build $BUILD --target wf wf_mock_agency) or set WF_BUILD_DIR" 4
[ -x "$MOCK" ] || die "no wf-mock-agency binary at $MOCK; build the wf_mock_agency target or set WF_MOCK" 4
PG_BIN=${WF_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}
PSQL=$(command -v psql || echo "$PG_BIN/psql")
PGBENCH=$(command -v pgbench || echo "$PG_BIN/pgbench")
for tool in "$PSQL" "$PGBENCH" /usr/bin/time; do
  [ -x "$tool" ] || die "$tool is missing; bash .ci/setup installs it (packages postgresql, time)" 4
done
command -v jq > /dev/null || die "jq is missing; bash .ci/setup installs it" 4
if [ "$PEERS" = 1 ]; then
  command -v node > /dev/null && command -v npm > /dev/null ||
    die "the peers need Node 20 and npm (or run with --no-peers)" 4
fi

# Sizes. Every one can be overridden from the environment (BENCH_CASES=5000 bench/run.sh).
if [ "$QUICK" = 1 ]; then
  : "${BENCH_PGBENCH_SECONDS:=2}" "${BENCH_PGBENCH_CASES:=1000}" "${BENCH_CASES:=50}"
  : "${BENCH_LIGHT_RUNS:=3}" "${BENCH_HALF_SECONDS:=2}" "${BENCH_GROWTH:=1000 10000}"
  : "${BENCH_GROWTH_SAMPLE:=50}" "${BENCH_CLI_RUNS:=3}" "${BENCH_PEER_CHAINS:=100}"
  : "${BENCH_INFLIGHT:=0}"
else
  : "${BENCH_PGBENCH_SECONDS:=20}" "${BENCH_PGBENCH_CASES:=100000}" "${BENCH_CASES:=20000}"
  : "${BENCH_LIGHT_RUNS:=20}" "${BENCH_HALF_SECONDS:=20}" "${BENCH_GROWTH:=1000 100000 1000000}"
  : "${BENCH_GROWTH_SAMPLE:=2000}" "${BENCH_CLI_RUNS:=20}" "${BENCH_PEER_CHAINS:=2000}"
  : "${BENCH_INFLIGHT:=10000}"
fi
: "${BENCH_CONCURRENCY:=1024}" "${BENCH_PEER_CONCURRENCY:=32}"
LEASE=120  # passed to every engine

WORK=$(mktemp -d /tmp/wf-bench.XXXXXX)
PIDS=()
PG_ROOT=""
DATABASES=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$PG_ROOT" ]; then
    bash "$ROOT/.ci/pg" stop "$PG_ROOT"
  elif [ -n "${ADMIN_URL:-}" ]; then
    for db in "${DATABASES[@]}"; do
      "$PSQL" -Xq "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db" > /dev/null 2>&1 || true
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- PostgreSQL: a throwaway cluster, or the server of WF_BENCH_PG_URL -------------------------
if [ -n "${WF_BENCH_PG_URL:-}" ]; then
  ADMIN_URL=$WF_BENCH_PG_URL
else
  [ "$(id -u)" -eq 0 ] || die "starting a throwaway PostgreSQL needs root; or set WF_BENCH_PG_URL" 6
  exports=$(bash "$ROOT/.ci/pg") || die "could not start a throwaway PostgreSQL (.ci/pg)"
  eval "$(sed 's/WF_TEST_PG/BENCH_PG/' <<< "$exports")"
  PG_ROOT=$BENCH_PG_ROOT
  ADMIN_URL=$BENCH_PG_URL
fi
sql() { PGOPTIONS="-c client_min_messages=warning" "$PSQL" -Xq -v ON_ERROR_STOP=1 -At "$@"; }
sql "$ADMIN_URL" -c "SELECT 1" > /dev/null || die "cannot connect to PostgreSQL at $ADMIN_URL"
# The URL of database $1 on the same server (the URL's last path segment replaced).
db_url() {
  local base=${ADMIN_URL%%\?*} query=""
  [ "$base" != "$ADMIN_URL" ] && query="?${ADMIN_URL#*\?}"
  echo "${base%/*}/$1$query"
}
# Creates an empty database for one measurement; its URL goes into DB_URL. Every measurement
# starts on a quiet server, wf's and the peers' alike: the databases of the measurements before it
# are dropped (their autovacuum and dirty pages would run during this one) and a CHECKPOINT writes
# out what they left.
fresh_db() {
  local name="wfbench_$$_$1" db
  for db in "${DATABASES[@]}"; do
    sql "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db" > /dev/null
  done
  DATABASES=()
  sql "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" > /dev/null
  # CHECKPOINT needs a superuser or pg_checkpoint: a server of WF_BENCH_PG_URL may not allow it.
  sql "$ADMIN_URL" -c "CHECKPOINT" > /dev/null 2>&1 || true
  DATABASES+=("$name")
  DB_URL=$(db_url "$name")
}

fi  # not --report
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# --- results: one JSON document, and the rows of the table -------------------------------------
RESULT=$WORK/result.json
echo '{}' > "$RESULT"
if [ -n "$REPORT" ]; then
  [ -r "$REPORT" ] || die "--report $REPORT: no such file" 4
  jq -e 'type == "object"' "$REPORT" > /dev/null 2>&1 || die "--report $REPORT: not a JSON object" 3
  cp "$REPORT" "$RESULT"
fi
put() {  # put JQ_PATH JSON_VALUE
  jq --argjson v "$2" "$1 = \$v" "$RESULT" > "$RESULT.tmp" && mv "$RESULT.tmp" "$RESULT"
}
get() { jq -r "$1 // empty" "$RESULT"; }
ROWS=$WORK/rows.tsv
: > "$ROWS"
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "${3:--}" "${4:--}" >> "$ROWS"; }
ratio() {  # a / b with two decimals, or - when either is missing
  if [ -z "$1" ] || [ -z "$2" ] || [ "$1" = null ] || [ "$2" = null ]; then echo -; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2fx", a / b }'
}
fmt() { [ -z "$1" ] || [ "$1" = null ] && echo - || awk -v v="$1" 'BEGIN { printf "%.'"${2:-0}"'f", v }'; }

if [ -z "$REPORT" ]; then
cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
put .meta "$(jq -n --arg date "$(date -u +%FT%TZ)" --arg mode "$([ "$QUICK" = 1 ] && echo quick || echo full)" \
  --arg wf "$WF" --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg cpu "$cpu_model" --argjson cpus "$(nproc)" \
  --argjson mem "$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)" \
  --arg pg "$(sql "$ADMIN_URL" -c 'SHOW server_version')" \
  --arg sync "$(sql "$ADMIN_URL" -c 'SHOW synchronous_commit')" \
  --argjson load "$(awk '{ print $1 }' /proc/loadavg)" \
  '{date: $date, mode: $mode, wf: $wf, commit: $commit, cpu: $cpu, cpus: $cpus, mem_mb: $mem,
    postgres: $pg, synchronous_commit: $sync, load_at_start: $load}')"
log "wf: $WF; PostgreSQL $(get .meta.postgres) (synchronous_commit=$(get .meta.synchronous_commit))"

# --- 1. pgbench: the physical limit of one transition per transaction ---------------------------
run_pgbench() {
  local url clients out tps lat
  fresh_db pgbench; url=$DB_URL
  sql "$url" -v ncases="$BENCH_PGBENCH_CASES" -f "$BENCH/pgbench/schema.sql" > /dev/null
  for clients in 1 4 16; do
    log "pgbench: $clients clients, ${BENCH_PGBENCH_SECONDS}s"
    out=$("$PGBENCH" -n -M prepared -f "$BENCH/pgbench/step.sql" -D ncases="$BENCH_PGBENCH_CASES" \
      -c "$clients" -j "$(( clients < 4 ? clients : 4 ))" -T "$BENCH_PGBENCH_SECONDS" "$url" 2>&1) ||
      die "pgbench failed at $clients clients: $(tail -3 <<< "$out")"
    tps=$(awk '/^tps = / { print $3; exit }' <<< "$out")
    lat=$(awk '/^latency average = / { print $4; exit }' <<< "$out")
    [ -n "$tps" ] || die "pgbench printed no tps: $(tail -3 <<< "$out")"
    put ".pgbench.\"$clients\"" "$(jq -n --argjson tps "$tps" --argjson lat "${lat:-null}" \
      --argjson s "$BENCH_PGBENCH_SECONDS" '{tps: $tps, latency_avg_ms: $lat, seconds: $s}')"
  done
}

# --- 2. wf -------------------------------------------------------------------------------------

# Dispatch latency (ms) as the engines measured it (`wf engine --json`, "dispatch_ms": from the
# moment a row became claimable to its adapter call), over the JSON files given: counts add up,
# and with several engines each percentile is the worst engine's.
dispatch_of() {
  jq -s '[.[] | select(. != null) | .dispatch_ms | select(. != null)] |
    if length == 0 then null else
      {n: (map(.count) | add), p50: (map(.p50) | max), p90: (map(.p90) | max),
       p99: (map(.p99) | max), max: (map(.max) | max),
       source: "wf engine --json (ready -> adapter invoked)"} end' "$@"
}

# Whether process $1 is alive and not a zombie (an exited child not yet waited for).
running() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

start_mock() {  # sets MOCK_PID and MOCK_PORT
  rm -f "$WORK/mock.port"
  "$MOCK" --port 0 --port-file "$WORK/mock.port" --quiet > "$WORK/mock.log" 2>&1 &
  MOCK_PID=$!
  PIDS+=($MOCK_PID)
  for _ in $(seq 1 200); do [ -s "$WORK/mock.port" ] && break; sleep 0.05; done
  [ -s "$WORK/mock.port" ] || die "the mock agency did not start: $(tail -3 "$WORK/mock.log")"
  MOCK_PORT=$(cat "$WORK/mock.port")
}

mock_stats() {  # GET /_stats from the mock agency on port $1, through bash's /dev/tcp
  exec 3<> "/dev/tcp/127.0.0.1/$1"
  printf 'GET /_stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}

cases_jsonl() {  # N [FIRST] -> JSON lines with an id and a valid 12-digit citizen id
  awk -v n="$1" -v f="${2:-1}" 'BEGIN { for (i = f; i < f + n; i++)
    printf "{\"id\": \"%d\", \"citizen_id\": \"072195%06d\"}\n", i, i % 1000000 }'
}

# wf_run KEY ADAPTER(noop|http) ENGINES CASES CONCURRENCY: one measurement on a fresh database.
wf_run() {
  local key=$1 adapter=$2 engines=$3 cases=$4 concurrency=$5
  local url file proc t0 t1 t2 e pids=() rc=0 port="" since
  fresh_db "$key"; url=$DB_URL
  export WF_DB=$url
  unset WF_CONFIG
  if [ "$adapter" = http ]; then
    start_mock
    port=$MOCK_PORT
    cat > "$WORK/http.yaml" <<CONFIG
departments:
  agency: {adapter: http, url: "http://127.0.0.1:$port/population-db", timeout: 10s}
CONFIG
    export WF_CONFIG=$WORK/http.yaml
    file=$BENCH/chain5-http.yaml proc=bench-chain-http
  else
    file=$BENCH/chain5.yaml proc=bench-chain
  fi
  "$WF" deploy "$file" > /dev/null
  cases_jsonl "$cases" > "$WORK/cases.jsonl"
  log "wf $key: starting $cases cases with --batch"
  t0=$(now)
  "$WF" start "$proc" --batch "$WORK/cases.jsonl" --batch-size 1000 > /dev/null ||
    die "wf $key: wf start --batch failed"
  t1=$(now)
  log "wf $key: $engines engine(s), --concurrency $concurrency"
  for e in $(seq 1 "$engines"); do
    /usr/bin/time -f '{"wall": %e, "user": %U, "sys": %S, "max_rss_kb": %M}' -o "$WORK/time.$e" \
      "$WF" engine --until-idle --idle-wait 1 --lease "$LEASE" --concurrency "$concurrency" \
      --json > "$WORK/engine.$e.json" 2> "$WORK/engine.$e.err" &
    pids+=($!)
  done
  # A mock agency that went away (stopped from outside, or crashed) would turn the run into
  # retries and incidents: stop the engines and say so.
  while true; do
    local alive=0 p
    for p in "${pids[@]}"; do running "$p" && alive=1; done
    [ "$alive" = 1 ] || break
    if [ -n "$port" ] && ! running "$MOCK_PID"; then
      for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; done
      die "wf $key: the mock agency (pid $MOCK_PID) exited during the run (stopped from outside, or crashed): $(tail -3 "$WORK/mock.log")"
    fi
    sleep 0.2
  done
  for e in "${!pids[@]}"; do wait "${pids[$e]}" || rc=$?; done
  t2=$(now)
  [ "$rc" = 0 ] || die "wf $key: an engine failed (exit $rc): $(tail -3 "$WORK"/engine.*.err)"
  local completed steps dispatch times engine_json mock=null
  completed=$(sql "$url" -c "SELECT count(*) FROM cases WHERE status = 'completed'")
  steps=$(sql "$url" -c "SELECT count(*) FROM history WHERE action = 'step.succeeded'")
  [ "$completed" = "$cases" ] ||
    die "wf $key: $completed of $cases cases completed; see $(tail -3 "$WORK"/engine.*.err)"
  dispatch=$(dispatch_of "$WORK"/engine.*.json)
  times=$(jq -s '.' "$WORK"/time.*)
  engine_json=$(for e in $(seq 1 "$engines"); do
    jq -c -s 'last' "$WORK/engine.$e.json" 2>/dev/null || echo null; done | jq -s '.')
  [ -n "$port" ] && mock=$(mock_stats "$port" | jq '{requests, applied, replays, conflicts}')
  rm -f "$WORK"/time.* "$WORK"/engine.*.json
  put ".wf.$key" "$(jq -n --argjson cases "$cases" --argjson engines "$engines" \
    --argjson conc "$concurrency" --argjson start "$(elapsed "$t0" "$t1")" \
    --argjson wall "$(elapsed "$t1" "$t2")" --argjson steps "$steps" \
    --argjson completed "$completed" --argjson dispatch "$dispatch" --argjson times "$times" \
    --argjson engine "$engine_json" --argjson mock "$mock" '{
      adapter: "'"$adapter"'", cases: $cases, engines: $engines, concurrency: $conc,
      start_seconds: $start, start_cases_per_s: ($cases / $start),
      engine_wall_seconds: $wall, completed: $completed, step_transitions: $steps,
      transitions_per_s: ($steps / $wall), cases_per_s: ($completed / $wall),
      engine_cpu_seconds: ([$times[] | .user + .sys] | add),
      peak_rss_mb: ([$times[] | .max_rss_kb] | max / 1024),
      dispatch_full_load_ms: $dispatch, engine_output: $engine,
      mock_agency: $mock}')"
  if [ -n "$port" ]; then kill "$MOCK_PID" 2>/dev/null || true; wait "$MOCK_PID" 2>/dev/null || true; fi
  unset WF_DB WF_CONFIG
}

# Light load and half the peak rate, on one engine that keeps running (no --until-idle).
wf_latency() {
  local peak_cases=${1:-10} url epid spid serve_out serve t0 id e2e=() e2e_cli=() rate offered
  local first=1000000 streams per_stream n k codes cpids=()
  fresh_db latency; url=$DB_URL
  export WF_DB=$url
  unset WF_CONFIG
  "$WF" deploy "$BENCH/chain5.yaml" > /dev/null
  "$WF" engine --lease "$LEASE" --concurrency "$BENCH_CONCURRENCY" > /dev/null 2> "$WORK/latency.err" &
  epid=$!
  PIDS+=($epid)
  # Cases are started the way a department's system starts them, through `wf serve` (loopback
  # HTTP, a warm process and database connection, as the peers' clients are); the same cases
  # started by a `wf start` process each are measured too (that adds a process and a cold
  # database session to every case).
  serve_out=$WORK/serve.out
  "$WF" serve --listen 127.0.0.1:0 --workers 4 --max-connections 256 > "$serve_out" 2> "$WORK/serve.err" &
  spid=$!
  PIDS+=($spid)
  for _ in $(seq 1 600); do grep -q 'listening on' "$serve_out" 2>/dev/null && break; sleep 0.05; done
  serve=$(sed -n 's|.*listening on \(http://[0-9.:]*\).*|\1|p' "$serve_out")
  [ -n "$serve" ] || die "wf serve did not start: $(tail -3 "$WORK/serve.err")"
  # The light-load client starts no process while a case runs (on 2 cores a process start, or a
  # new database session, takes the CPU the engine needs; the peers' clients are one warm
  # process too): cases are posted from this shell over one kept-alive HTTP connection
  # (/dev/tcp), and a psql coprocess started before them waits for each, polling in the server
  # every 5 ms.
  local hostport=${serve#http://} api waiter
  coproc WAITER { PGOPTIONS="-c client_min_messages=warning" "$PSQL" -XqAt "$url"; }
  waiter=$WAITER_PID
  PIDS+=($waiter)
  api_connect() { exec {api}<>"/dev/tcp/${hostport%:*}/${hostport##*:}"; }
  api_post() {  # N -> CASE_ID, the id of the case the API started (1 when it did not)
    local body=$2 line length=0 answer=""
    printf 'POST /v1/procedures/bench-chain/cases HTTP/1.1\r\nHost: %s\r\nIdempotency-Key: light-%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
      "$hostport" "$1" "${#body}" "$body" >&"$api" 2>/dev/null || return 1
    IFS= read -r -t 30 line <&"$api" || return 1
    [[ $line == *" 201 "* ]] || return 1
    while IFS= read -r -t 30 line <&"$api"; do
      line=${line%$'\r'}
      [ -z "$line" ] && break
      shopt -s nocasematch
      [[ $line =~ ^content-length:\ *([0-9]+) ]] && length=${BASH_REMATCH[1]}
      shopt -u nocasematch
    done
    [ "$length" -gt 0 ] && IFS= read -r -t 30 -N "$length" answer <&"$api"
    [[ $answer =~ \"id\":\ *\"([^\"]+)\" ]] || return 1
    CASE_ID=${BASH_REMATCH[1]}
  }
  api_start() {  # N -> CASE_ID; a connection the server closed is opened again, once
    local body
    body=$(cases_jsonl 1 "$1")
    api_post "$1" "$body" && return 0
    exec {api}>&- 2>/dev/null || true
    api_connect && api_post "$1" "$body"
  }
  wait_completed() {  # case id -> E2E, ended - started in ms (waits 60 s at most)
    local v=""
    echo "DO \$w\$ BEGIN FOR i IN 1..12000 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM cases WHERE id = '$1' AND ended_at IS NOT NULL);
        PERFORM pg_sleep(0.005); END LOOP; END \$w\$;
      SELECT coalesce((SELECT (ended_at - started_at) / 1000.0 FROM cases
        WHERE id = '$1' AND ended_at IS NOT NULL)::text, 'open');" >&"${WAITER[1]}"
    IFS= read -r -t 90 v <&"${WAITER[0]}" || die "the psql waiting for case $1 stopped"
    [ "$v" != open ] && [ -n "$v" ] && { E2E=$v; return 0; }
    kill -0 "$epid" 2>/dev/null || die "the engine stopped: $(tail -3 "$WORK/latency.err")"
    die "case $1 did not complete within 60 s at light load"
  }
  # A first case warms the engine and the server up (connections, LISTEN); it is not counted.
  api_connect || die "cannot connect to wf serve at $serve"
  api_start "$first" || die "wf serve did not start a case"
  wait_completed "$CASE_ID"
  log "wf latency: $BENCH_LIGHT_RUNS single cases at light load, through the API and by wf start"
  for i in $(seq 1 "$BENCH_LIGHT_RUNS"); do
    api_start $(( first + i )) || die "wf serve did not start case $(( first + i ))"
    wait_completed "$CASE_ID"
    e2e+=("$E2E")
    id=$(cases_jsonl 1 $(( first + 1000 + i )) | "$WF" start bench-chain --data -)
    wait_completed "$id"
    e2e_cli+=("$E2E")
  done
  exec {api}>&-
  eval "exec ${WAITER[1]}>&-"  # psql ends at the end of its input
  wait "$waiter" 2>/dev/null || true
  percentiles() {
    jq -s --arg source "$1" '{runs: length, p50: (sort | .[((length * 0.5) | ceil) - 1]),
      p99: (sort | .[((length * 0.99) | ceil) - 1]), source: $source}'
  }
  put .latency.e2e_ms "$(printf '%s\n' "${e2e[@]}" |
    percentiles "cases.ended_at - cases.started_at, started by POST /v1/procedures/bench-chain/cases")"
  put .latency.e2e_cli_ms "$(printf '%s\n' "${e2e_cli[@]}" |
    percentiles "cases.ended_at - cases.started_at, started by a wf start process each")"
  # A fresh engine for the half-rate load, so that its own figures are the load's alone.
  kill -TERM "$epid" 2>/dev/null || true
  wait "$epid" 2>/dev/null || true
  "$WF" engine --lease "$LEASE" --concurrency "$BENCH_CONCURRENCY" --json > "$WORK/latency.json" \
    2> "$WORK/latency.err" &
  epid=$!
  PIDS+=($epid)
  # Half the peak rate as a smooth stream: `streams` curl processes, each starting one case at a
  # time at rate/streams per second (curl --rate) over one kept-alive connection, started
  # staggered so that their requests interleave. If the server cannot keep up, the offered rate
  # falls short and the JSON says so.
  rate=$(awk -v p="$peak_cases" 'BEGIN { r = p / 2; if (r < 4) r = 4; print r }')
  streams=$(awk -v r="$rate" 'BEGIN { s = int(r / 100) + 1; print (s > 8 ? 8 : s) }')
  per_stream=$(awk -v r="$rate" -v s="$streams" 'BEGIN { printf "%d", r / s * 60 }')
  n=$(awk -v r="$rate" -v s="$streams" -v t="$BENCH_HALF_SECONDS" 'BEGIN { printf "%d", r / s * t }')
  [ "$n" -ge 1 ] || n=1
  log "wf latency: $streams stream(s) of $(fmt "$(awk -v r="$rate" -v s="$streams" 'BEGIN { print r / s }')") cases/s each for ${BENCH_HALF_SECONDS}s through the API (half the peak: $(fmt "$rate") cases/s)"
  for k in $(seq 1 "$streams"); do
    awk -v n="$n" -v k="$k" -v url="$serve/v1/procedures/bench-chain/cases" 'BEGIN {
      for (i = 1; i <= n; i++) {
        printf "url = \"%s\"\nrequest = \"POST\"\n", url
        printf "header = \"Idempotency-Key: half-%d-%d\"\nheader = \"Content-Type: application/json\"\n", k, i
        printf "data = \"{\\\"id\\\": \\\"h%d-%d\\\", \\\"citizen_id\\\": \\\"072195%06d\\\"}\"\n", k, i, i % 1000000
        printf "output = \"/dev/null\"\nwrite-out = \"%%{http_code}\\\\n\"\n"
        if (i < n) printf "next\n" } }' > "$WORK/half.$k.cfg"
  done
  t0=$(now)
  for k in $(seq 1 "$streams"); do
    curl -s --no-progress-meter --rate "$per_stream/m" -K "$WORK/half.$k.cfg" > "$WORK/half.$k.codes" &
    cpids+=($!)
    sleep "$(awk -v r="$rate" 'BEGIN { print 1 / r }')"
  done
  for k in "${cpids[@]}"; do wait "$k" || die "a curl stream of the half-rate load failed"; done
  offered=$(awk -v n="$(( n * streams ))" -v s="$(elapsed "$t0" "$(now)")" 'BEGIN { print n / s }')
  codes=$(cat "$WORK"/half.*.codes | sort | uniq -c)
  [ "$(echo "$codes" | wc -l)" = 1 ] && echo "$codes" | grep -q " 201$" ||
    die "not every case of the half-rate load was started (HTTP codes: $codes)"
  for _ in $(seq 1 6000); do
    [ "$(sql "$url" -c "SELECT count(*) FROM cases WHERE status = 'open'")" = 0 ] && break
    kill -0 "$epid" 2>/dev/null || die "the engine stopped: $(tail -3 "$WORK/latency.err")"
    sleep 0.05
  done
  [ "$(sql "$url" -c "SELECT count(*) FROM cases WHERE status = 'open'")" = 0 ] ||
    die "cases still open 5 minutes after the half-rate load"
  kill -TERM "$epid" 2>/dev/null || true  # it prints its figures as it stops
  wait "$epid" 2>/dev/null || true
  kill -TERM "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  put .latency.half_rate "$(jq -n --argjson rate "$rate" --argjson offered "$offered" \
    --argjson streams "$streams" --argjson d "$(dispatch_of "$WORK/latency.json")" \
    '{target_cases_per_s: $rate, offered_cases_per_s: $offered, streams: $streams,
      offered_as: "a smooth stream through POST /v1/procedures/{name}/cases (curl --rate)",
      dispatch_ms: $d}')"
  unset WF_DB
}

# --- 3. peers ----------------------------------------------------------------------------------
run_peers() {
  if [ ! -d "$BENCH/peers/node_modules/graphile-worker" ] ||
     [ ! -d "$BENCH/peers/node_modules/@dbos-inc/dbos-sdk" ]; then
    log "peers: npm ci in bench/peers"
    (cd "$BENCH/peers" && npm ci --no-audit --no-fund > "$WORK/npm.log" 2>&1) ||
      die "npm ci in bench/peers failed: $(tail -3 "$WORK/npm.log")"
  fi
  local peer url out
  for peer in graphile dbos; do
    fresh_db "$peer"; url=$DB_URL
    log "peer $peer: $BENCH_PEER_CHAINS chains, concurrency $BENCH_PEER_CONCURRENCY"
    out=$(cd "$BENCH/peers" && timeout 1800 node "$peer.js" "$url" "$BENCH_PEER_CHAINS" \
      "$BENCH_LIGHT_RUNS" "$BENCH_PEER_CONCURRENCY" 2> "$WORK/$peer.err") ||
      die "peer $peer failed: $(tail -5 "$WORK/$peer.err")"
    put ".peers.$peer" "$(tail -1 <<< "$out")"
  done
}

# --- 4. growth ---------------------------------------------------------------------------------
run_growth() {
  local url seed size have chunk from to t0 t1 i
  fresh_db growth; url=$DB_URL
  export WF_DB=$url WF_CONFIG=$BENCH/growth/config.yaml
  "$WF" deploy "$BENCH/growth/inbox.yaml" > /dev/null
  # 20 real cases, each waiting at a clerk's review: the clerk's inbox.
  cases_jsonl 20 > "$WORK/seed.jsonl"
  "$WF" start bench-inbox --batch "$WORK/seed.jsonl" > /dev/null
  "$WF" engine --until-idle --idle-wait 0 > /dev/null 2> "$WORK/growth.err" ||
    die "growth: the engine failed: $(tail -3 "$WORK/growth.err")"
  seed=$(sql "$url" -c "SELECT id FROM cases ORDER BY started_at, id LIMIT 1")
  [ "$(sql "$url" -c "SELECT count(*) FROM tasks WHERE status = 'open'")" = 20 ] ||
    die "growth: the seed cases did not reach their review task"
  put .growth '[]'
  for size in $BENCH_GROWTH; do
    have=$(sql "$url" -c "SELECT count(*) FROM cases")
    if [ "$have" -lt "$size" ]; then
      log "growth: cloning the seed case up to $size cases"
      from=$(sql "$url" -c "SELECT count(*) FROM cases WHERE id LIKE 'g%'")
      to=$(( from + size - have ))
      while [ "$from" -lt "$to" ]; do
        chunk=$(( to - from < 250000 ? to - from : 250000 ))
        sql "$url" -v seed="$seed" -v lo="$(( from + 1 ))" -v hi="$(( from + chunk ))" \
          -f "$BENCH/growth/clone.sql" > /dev/null || die "growth: cloning failed"
        from=$(( from + chunk ))
      done
      sql "$url" -c "ANALYZE" > /dev/null
    fi
    cases_jsonl "$BENCH_GROWTH_SAMPLE" $(( 5000000 + size )) > "$WORK/sample.jsonl"
    t0=$(now)
    "$WF" start bench-inbox --batch "$WORK/sample.jsonl" --batch-size 1000 > /dev/null ||
      die "growth: wf start --batch failed at $size cases"
    t1=$(now)
    local show=() inbox=() floor=() a b stored
    for i in $(seq 1 "$BENCH_CLI_RUNS"); do
      # Bash's own clock: $(now) would add the start of `date` (about 7 ms here) to each figure.
      a=${EPOCHREALTIME/,/.}; "$WF" show "$seed" --json > /dev/null || die "growth: wf show failed"
      b=${EPOCHREALTIME/,/.}; show+=("$(elapsed "$a" "$b")")
      a=${EPOCHREALTIME/,/.}
      "$WF" inbox --as an.bench --json > "$WORK/inbox.json" || die "growth: wf inbox failed"
      b=${EPOCHREALTIME/,/.}; inbox+=("$(elapsed "$a" "$b")")
      a=${EPOCHREALTIME/,/.}; "$WF" --help > /dev/null; b=${EPOCHREALTIME/,/.}
      floor+=("$(elapsed "$a" "$b")")
    done
    [ "$(jq length "$WORK/inbox.json")" = 20 ] ||
      die "growth: the clerk's inbox has $(jq length "$WORK/inbox.json") tasks, expected 20"
    stored=$(sql "$url" -c "SELECT count(*) FROM cases")
    median_ms() { printf '%s\n' "$@" | jq -s 'sort | .[(length / 2 | floor)] * 1000'; }
    jq --argjson e "$(jq -n --argjson size "$size" --argjson stored "$stored" \
        --argjson sample "$BENCH_GROWTH_SAMPLE" --argjson s "$(elapsed "$t0" "$t1")" \
        --argjson show "$(median_ms "${show[@]}")" --argjson inbox "$(median_ms "${inbox[@]}")" \
        --argjson floor "$(median_ms "${floor[@]}")" --argjson runs "$BENCH_CLI_RUNS" \
        '{cases: $size, stored_after: $stored, start_sample: $sample,
          start_cases_per_s: ($sample / $s), show_ms: $show, inbox_ms: $inbox,
          process_floor_ms: $floor, runs: $runs}')" '.growth += [$e]' "$RESULT" > "$RESULT.tmp"
    mv "$RESULT.tmp" "$RESULT"
    log "growth: $size cases: show $(get ".growth[-1].show_ms") ms, inbox $(get ".growth[-1].inbox_ms") ms"
  done
  unset WF_DB WF_CONFIG
}

# --- run everything ----------------------------------------------------------------------------
# BENCH_ONLY="pgbench wf_noop wf_http inflight latency peers growth" picks sections (default:
# all; "wf" means the first three). Runs split this way merge with jq -s '.[0] * .[1]'.
want() {
  [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]] ||
    { [[ $1 == wf_* || $1 == inflight ]] && [[ " $BENCH_ONLY " == *" wf "* ]]; }
}
T_START=$(now)
want pgbench && run_pgbench
if want wf_noop; then
  wf_run noop_1 noop 1 "$BENCH_CASES" "$BENCH_CONCURRENCY"
  wf_run noop_2 noop 2 "$BENCH_CASES" "$BENCH_CONCURRENCY"
fi
if want wf_http; then
  wf_run http_1 http 1 "${BENCH_HTTP_CASES:-$BENCH_CASES}" "$BENCH_CONCURRENCY"
  wf_run http_2 http 2 "${BENCH_HTTP_CASES:-$BENCH_CASES}" "$BENCH_CONCURRENCY"
fi
if want inflight && [ "$BENCH_INFLIGHT" -gt 0 ]; then
  wf_run inflight noop 1 "$BENCH_INFLIGHT" "$BENCH_INFLIGHT"
fi
# Half the peak: of the one-engine noop run, or BENCH_PEAK_CASES (cases/s) when it did not run.
want latency && wf_latency "${BENCH_PEAK_CASES:-$(get .wf.noop_1.cases_per_s)}"
if [ "$PEERS" = 1 ] && want peers; then run_peers; else put .peers null; fi
want growth && run_growth

fi  # not --report

# --- ratios and the table ----------------------------------------------------------------------
pg4=$(get '.pgbench."4".tps')
best_wf=$(jq '[.wf.noop_1.transitions_per_s, .wf.noop_2.transitions_per_s] | map(select(. != null)) | max' "$RESULT")
best_peer=$(jq '[.peers.graphile.steps_per_s, .peers.dbos.steps_per_s] | map(select(. != null)) | max' "$RESULT")
put .ratios "$(jq 'def r(a; b): if (a | type) == "number" and (b | type) == "number" and b != 0
    then a / b else null end;
  ([.wf.noop_1.transitions_per_s, .wf.noop_2.transitions_per_s] | map(select(. != null)) | max) as $best
  | {wf_noop_1_over_pgbench_4: r(.wf.noop_1.transitions_per_s; .pgbench."4".tps),
     wf_noop_2_over_pgbench_4: r(.wf.noop_2.transitions_per_s; .pgbench."4".tps),
     wf_http_1_over_pgbench_4: r(.wf.http_1.transitions_per_s; .pgbench."4".tps),
     wf_http_2_over_pgbench_4: r(.wf.http_2.transitions_per_s; .pgbench."4".tps),
     wf_noop_best_over_graphile: r($best; .peers.graphile.steps_per_s),
     wf_noop_best_over_dbos: r($best; .peers.dbos.steps_per_s),
     wf_e2e_p50_over_dbos_e2e_p50: r(.latency.e2e_ms.p50; .peers.dbos.e2e_ms.p50),
     wf_e2e_p50_over_graphile_e2e_p50: r(.latency.e2e_ms.p50; .peers.graphile.e2e_ms.p50)}' "$RESULT")"
[ -n "$REPORT" ] || put .meta.total_seconds "$(elapsed "$T_START" "$(now)")"

for clients in 1 4 16; do
  if [ -n "$(get ".pgbench.\"$clients\".tps")" ]; then
    row "pgbench step.sql, $clients clients (tx/s)" "$(fmt "$(get ".pgbench.\"$clients\".tps")")"
  fi
done
for k in noop_1 noop_2 http_1 http_2 inflight; do
  [ -n "$(get ".wf.$k.cases")" ] || continue
  v=$(get ".wf.$k.transitions_per_s")
  row "wf $k: step transitions/s ($(get ".wf.$k.cases") cases)" "$(fmt "$v")" \
    "20,000, ≥ 4x pgbench@4 $(fmt "$pg4")" "$(ratio "$v" "$pg4") pgbench@4"
  row "wf $k: cases/s, start --batch cases/s" \
    "$(fmt "$(get ".wf.$k.cases_per_s")"), $(fmt "$(get ".wf.$k.start_cases_per_s")")"
  row "wf $k: engine CPU s / wall s, peak RSS MB" \
    "$(fmt "$(get ".wf.$k.engine_cpu_seconds")" 1) / $(fmt "$(get ".wf.$k.engine_wall_seconds")" 1), $(fmt "$(get ".wf.$k.peak_rss_mb")" 1)" \
    "$([ "$k" = inflight ] && echo "< 200 MB at 10,000 in flight")"
  row "wf $k: dispatch p50/p99 ms, full backlog " \
    "$(fmt "$(get ".wf.$k.dispatch_full_load_ms.p50")" 1) / $(fmt "$(get ".wf.$k.dispatch_full_load_ms.p99")" 1)"
done
if [ -n "$(get .latency.e2e_ms.p50)" ]; then
  row "wf dispatch p50/p99 ms at half the peak ($(fmt "$(get .latency.half_rate.offered_cases_per_s)") cases/s)" \
    "$(fmt "$(get .latency.half_rate.dispatch_ms.p50)" 1) / $(fmt "$(get .latency.half_rate.dispatch_ms.p99)" 1)" \
    "p50 < 2, p99 < 5"
  row "wf one 5-step case e2e ms, light load p50/p99 (API)" \
    "$(fmt "$(get .latency.e2e_ms.p50)" 1) / $(fmt "$(get .latency.e2e_ms.p99)" 1)" \
    "p50 < 10 (DBOS $(fmt "$(get .peers.dbos.e2e_ms.p50)" 1))" \
    "$(ratio "$(get .latency.e2e_ms.p50)" "$(get .peers.dbos.e2e_ms.p50)") DBOS"
  if [ -n "$(get .latency.e2e_cli_ms.p50)" ]; then
    row "wf the same, each case by a wf start process" \
      "$(fmt "$(get .latency.e2e_cli_ms.p50)" 1) / $(fmt "$(get .latency.e2e_cli_ms.p99)" 1)"
  fi
fi
for peer in graphile dbos; do
  [ -n "$(get ".peers.$peer.steps_per_s")" ] || continue
  row "$peer: steps/s ($(get ".peers.$peer.chains") chains), e2e p50 ms" \
    "$(fmt "$(get ".peers.$peer.steps_per_s")"), $(fmt "$(get ".peers.$peer.e2e_ms.p50")" 1)" \
    "wf ≥ 10x" "$(ratio "$best_wf" "$(get ".peers.$peer.steps_per_s")") wf/$peer"
done
[ -n "$best_peer" ] && [ "$best_peer" != null ] && [ "$best_wf" != null ] &&
  row "wf best / faster peer, steps/s" "$(fmt "$best_wf") / $(fmt "$best_peer")" "≥ 10x" \
    "$(ratio "$best_wf" "$best_peer")"
n=$(jq '.growth | length' "$RESULT")
for i in $(seq 0 $(( n - 1 ))); do
  row "growth $(get ".growth[$i].cases") cases: start/s, show ms, inbox ms (floor ms)" \
    "$(fmt "$(get ".growth[$i].start_cases_per_s")"), $(fmt "$(get ".growth[$i].show_ms")" 1), $(fmt "$(get ".growth[$i].inbox_ms")" 1) ($(fmt "$(get ".growth[$i].process_floor_ms")" 1))" \
    "show, inbox < 50 at 1M"
done

if [ -z "$REPORT" ] || [ "$OUT_GIVEN" = 1 ]; then
  mkdir -p "$(dirname "$OUT")"
  cp "$RESULT" "$OUT"
else
  OUT=$REPORT
fi
{
  printf 'METRIC\tVALUE\tTARGET\tRATIO\n'
  cat "$ROWS"
} | awk -F '\t' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
  END { for (r = 1; r <= NR; r++) { line = ""; for (i = 1; i <= 4; i++)
          line = line sprintf(i < 4 ? "%-" w[i] "s  " : "%s", cell[r, i]); print line } }'
echo
echo "figures: $OUT ($(get .meta.mode) mode, $(fmt "$(get .meta.total_seconds)") s, PostgreSQL $(get .meta.postgres), $(get .meta.cpus) CPUs: $(get .meta.cpu))"
