#!/usr/bin/env bash
# The HTTP API and federation, measured (issue 13):
#   bench/api.sh [--quick] [--out FILE.json] [--build-dir DIR]
# 1. Cases started per second through `wf serve` (POST /v1/procedures/{name}/cases, each with
#    its own Idempotency-Key, `curl --parallel`), on PostgreSQL, over plain loopback HTTP and
#    over TLS with client certificates.
# 2. The latency a federated step adds: two deployments on the same PostgreSQL server (two
#    databases, two `wf serve` over TLS, two `wf engine`); cases of a procedure whose one step
#    starts a case of a one-noop-step procedure at the other deployment and waits for its
#    answer, one after another, against the same procedure with a local noop step instead.
#    End to end = cases.ended_at - cases.started_at of the caller's case.
# PostgreSQL: WF_BENCH_PG_URL, or a throwaway cluster of its own (root). Figures are printed
# and written as JSON (default bench/results/api-latest.json); nothing is asserted.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${WF_BUILD_DIR:-$ROOT/build}
OUT=$ROOT/bench/results/api-latest.json
QUICK=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --out) OUT=$2; shift ;;
    --build-dir) BUILD=$2; shift ;;
    *) echo "usage: bench/api.sh [--quick] [--out FILE.json] [--build-dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
WF=${WF:-$BUILD/cli/wf}
[ -x "$WF" ] || { echo "bench: no wf at $WF; build first (bash .ci/setup)" >&2; exit 4; }
for tool in curl jq psql openssl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (bash .ci/setup)" >&2; exit 4; }
done
if [ "$QUICK" = 1 ]; then REQUESTS=${BENCH_API_REQUESTS:-200} RUNS=${BENCH_API_RUNS:-5}
else REQUESTS=${BENCH_API_REQUESTS:-4000} RUNS=${BENCH_API_RUNS:-20}; fi
PARALLEL=${BENCH_API_PARALLEL:-32}

WORK=$(mktemp -d /tmp/wf-bench-api.XXXXXX)
PIDS=()
PG_ROOT=""
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -z "$PG_ROOT" ] || bash "$ROOT/.ci/pg" stop "$PG_ROOT"
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }
now() { date +%s.%N; }

if [ -n "${WF_BENCH_PG_URL:-}" ]; then
  PG=$WF_BENCH_PG_URL
else
  [ "$(id -u)" -eq 0 ] || { echo "bench: a throwaway cluster needs root (or WF_BENCH_PG_URL)" >&2; exit 6; }
  eval "$(bash "$ROOT/.ci/pg" | sed 's/WF_TEST_PG/BENCH_PG/')"
  PG_ROOT=$BENCH_PG_ROOT
  PG=$BENCH_PG_URL
fi
DBS=()
fresh_db() {  # NAME -> the URL of a new database in DB_URL
  local name="wfbench_api_$$_$1"
  psql -Xq "$PG" -c "CREATE DATABASE $name" >/dev/null
  DBS+=("$name")
  DB_URL="${PG%/*}/$name"
}

# Starts `wf serve` with the given wf options; its base URL in SERVE_URL.
start_serve() {
  local out="$WORK/serve.$RANDOM.out"
  "$WF" "$@" serve --listen 127.0.0.1:0 --workers 4 --max-connections 1024 >"$out" 2>/dev/null &
  PIDS+=($!)
  for _ in $(seq 1 300); do grep -q 'listening on' "$out" 2>/dev/null && break; sleep 0.05; done
  SERVE_URL=$(sed -n 's|.*listening on \(https*://[0-9.:]*\).*|\1|p' "$out")
  [ -n "$SERVE_URL" ] || die "wf serve did not start"
}

# curl config of $1 POSTs of {"id": N} to $2 with keys prefixed $3; lines $4 in each (`next`
# resets every option that is not global).
requests() {
  awk -v n="$1" -v url="$2" -v key="$3" -v extra="$4" 'BEGIN { for (i = 1; i <= n; i++) {
    if (extra != "") printf "%s\n", extra
    printf "url = \"%s\"\nheader = \"Idempotency-Key: %s-%d\"\n", url, key, i
    printf "header = \"Content-Type: application/json\"\ndata = \"{\\\"id\\\": \\\"%d\\\"}\"\n", i
    printf "output = \"/dev/null\"\nwrite-out = \"%%{http_code}\\\\n\"\n"
    if (i < n) printf "next\n" } }'
}

# api_rate NAME [CURL CONFIG LINES]: cases/s through the running server at SERVE_URL.
api_rate() {
  local name=$1 t0 t1 codes
  requests "$REQUESTS" "$SERVE_URL/v1/procedures/bench-chain/cases" "$name" "${2:-}" \
    >"$WORK/$name.cfg"
  t0=$(now)
  codes=$(curl -s --no-progress-meter --parallel --parallel-max "$PARALLEL" -K "$WORK/$name.cfg" |
    sort | uniq -c)
  t1=$(now)
  echo "$codes" | grep -q " 201$" || die "api $name: no case created ($codes)"
  [ "$(echo "$codes" | wc -l)" = 1 ] || die "api $name: not every request got 201: $codes"
  awk -v n="$REQUESTS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }'
}

bash "$ROOT/examples/federation/make-certs.sh" "$WORK/certs" tayninh-dost hcmc-dost bench-portal >/dev/null
TLS_CLIENT="cacert = \"$WORK/certs/ca.pem\"
cert = \"$WORK/certs/bench-portal.pem\"
key = \"$WORK/certs/bench-portal.key\""

# --- 1. cases started per second through the API --------------------------------------------
fresh_db api_plain
"$WF" --db "$DB_URL" deploy "$ROOT/bench/chain5.yaml" >/dev/null 2>&1
start_serve --db "$DB_URL"
log "api: $REQUESTS starts, $PARALLEL at a time, plain HTTP"
PLAIN=$(api_rate plain)
cat >"$WORK/tls.yaml" <<YAML
identity: {name: tayninh-dost, cert: certs/tayninh-dost.pem, key: certs/tayninh-dost.key, ca: certs/ca.pem}
clients:
  bench-portal: {may: [start, show]}
YAML
fresh_db api_tls
"$WF" --db "$DB_URL" deploy "$ROOT/bench/chain5.yaml" >/dev/null 2>&1
start_serve --db "$DB_URL" --config "$WORK/tls.yaml"
log "api: $REQUESTS starts, $PARALLEL at a time, TLS with client certificates"
TLS=$(api_rate tls "$TLS_CLIENT")

# --- 2. the latency a federated step adds ---------------------------------------------------
cat >"$WORK/answer.yaml" <<'YAML'
procedure: bench-answer
agency: bench
steps:
  s1: {adapter: noop, call: {operation: one}, save_as: r1, next: done}
  done: {end: completed}
YAML
cat >"$WORK/local.yaml" <<'YAML'
procedure: bench-local
agency: bench
steps:
  s1: {adapter: noop, call: {operation: one}, save_as: r1, next: done}
  done: {end: completed}
YAML
cat >"$WORK/federated.yaml" <<'YAML'
procedure: bench-federated
agency: bench
steps:
  s1: {adapter: hcmc-dost, call: {operation: start, procedure: bench-answer}, save_as: r1, next: done}
  done: {end: completed}
YAML
cat >"$WORK/answerer.yaml" <<YAML
identity: {name: hcmc-dost, cert: certs/hcmc-dost.pem, key: certs/hcmc-dost.key, ca: certs/ca.pem}
clients:
  tayninh-dost: {may: [start, show]}
YAML
cat >"$WORK/caller.yaml" <<YAML
identity: {name: tayninh-dost, cert: certs/tayninh-dost.pem, key: certs/tayninh-dost.key, ca: certs/ca.pem}
clients:
  hcmc-dost: {may: [events]}
departments:
  hcmc-dost: {adapter: wf, url: "\${env.PEER_URL}", callback_url: "\${env.OWN_URL}"}
YAML
fresh_db answerer; ANSWERER=$DB_URL
fresh_db caller; CALLER=$DB_URL
start_serve --db "$ANSWERER" --config "$WORK/answerer.yaml"; export PEER_URL=$SERVE_URL
start_serve --db "$CALLER" --config "$WORK/caller.yaml"; export OWN_URL=$SERVE_URL
"$WF" --db "$ANSWERER" --config "$WORK/answerer.yaml" deploy "$WORK/answer.yaml" >/dev/null
"$WF" --db "$CALLER" --config "$WORK/caller.yaml" deploy "$WORK/local.yaml" "$WORK/federated.yaml" >/dev/null
for side in "$ANSWERER answerer" "$CALLER caller"; do
  set -- $side
  "$WF" --db "$1" --config "$WORK/$2.yaml" engine >"$WORK/engine.$2.log" 2>&1 &
  PIDS+=($!)
done
e2e() {  # PROCEDURE -> RUNS end-to-end times in ms, one a line
  local id v
  for i in $(seq 0 "$RUNS"); do
    id=$("$WF" --db "$CALLER" --config "$WORK/caller.yaml" start "$1" --data - <<<'{}')
    v=""
    for _ in $(seq 1 600); do
      v=$(psql -XAtq "$CALLER" -c "SELECT (ended_at - started_at) / 1000.0 FROM cases WHERE id = '$id' AND ended_at IS NOT NULL")
      [ -n "$v" ] && break
      sleep 0.05
    done
    [ -n "$v" ] || die "case $id of $1 did not end within 30 s: $(tail -n 3 "$WORK"/engine.*.log)"
    [ "$i" = 0 ] || echo "$v"  # the first is a warm-up
  done
}
stats() { jq -s 'sort | {p50: .[(length / 2 | floor)], p90: .[(length * 9 / 10 | floor)], runs: length}'; }
log "federation: $RUNS cases with a local noop step, then $RUNS with a federated step"
LOCAL=$(e2e bench-local | stats)
FEDERATED=$(e2e bench-federated | stats)

RESULT=$(jq -n --argjson plain "$PLAIN" --argjson tls "$TLS" --argjson local "$LOCAL" \
  --argjson fed "$FEDERATED" --arg date "$(date -u +%FT%TZ)" \
  --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson requests "$REQUESTS" \
  --argjson parallel "$PARALLEL" '{
    meta: {date: $date, commit: $commit, load_at_end: $load, requests: $requests,
           parallel: $parallel, store: "postgresql"},
    api: {start_cases_per_s_plain: $plain, start_cases_per_s_tls: $tls},
    federation: {local_step_e2e_ms: $local, federated_step_e2e_ms: $fed,
                 added_ms_p50: ($fed.p50 - $local.p50)}}')
mkdir -p "$(dirname "$OUT")"
echo "$RESULT" >"$OUT"
printf '%-58s %s\n' "API starts/s, plain HTTP ($REQUESTS, $PARALLEL at a time)" "$PLAIN" \
  "API starts/s, TLS + client certificates" "$TLS" \
  "e2e ms p50/p90, one local noop step" "$(jq -r '"\(.p50) / \(.p90)"' <<<"$LOCAL")" \
  "e2e ms p50/p90, one federated step (a case at the peer)" "$(jq -r '"\(.p50) / \(.p90)"' <<<"$FEDERATED")" \
  "added by federation, p50 ms" "$(jq -r .federation.added_ms_p50 <<<"$RESULT")"
log "written to $OUT"
