#!/usr/bin/env bash
# Renders `wf report --html` in headless Chromium and checks what the browser built: the tables,
# the inline SVG charts and process maps, the numbers, and that hostile text from the data stayed
# text. Usage: render_test.sh WF_BINARY sqlite|postgresql. Exit 77 (skipped) when chromium is not
# installed, or for postgresql when WF_TEST_PG_URL is not set (a failure under WF_REQUIRE_PG=1).
# WF_REPORT_KEEP=DIR keeps the page and a screenshot there.
set -euo pipefail
WF=$1
BACKEND=${2:-sqlite}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then echo "SKIP: chromium is not installed (apt-get install chromium)"; exit 77; fi

WORK=$(mktemp -d /tmp/wf-report.XXXXXX)
PG_DB=""
cleanup() {
  if [ -n "$PG_DB" ]; then
    psql -X -q "$WF_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "$BACKEND" = postgresql ]; then
  if [ -z "${WF_TEST_PG_URL:-}" ]; then
    [ "${WF_REQUIRE_PG:-}" = 1 ] && fail "WF_REQUIRE_PG=1 but WF_TEST_PG_URL is not set"
    echo "SKIP: set WF_TEST_PG_URL to run on PostgreSQL"; exit 77
  fi
  PG_DB="wf_report_$$_$RANDOM$RANDOM"
  psql -X -q -v ON_ERROR_STOP=1 "$WF_TEST_PG_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
  # The admin URL with its database replaced.
  export WF_DB=$(sed -E "s#^(postgresql://[^/?]*)(/[^?]*)?#\1/$PG_DB#" <<< "$WF_TEST_PG_URL")
else
  export WF_DB="sqlite:$WORK/wf.db"
fi
export WF_CONFIG="$WORK/config.yaml"
cat > "$WF_CONFIG" <<'YAML'
departments:
  registry: {adapter: noop}
agencies:
  town-hall: {members: {ann: [clerk]}}
YAML
# Hostile text where the report shows data: the title, a task title, a role.
cat > "$WORK/permit.yaml" <<'YAML'
procedure: render-permit
version: 1
title: "A permit <script>alert('title')</script> & more"
agency: town-hall
deadline: 3 working days
dedupe: ${ .id }
roles:
  clerk: {agency: town-hall}
steps:
  lookup:
    adapter: registry
    call: {operation: lookup, id: "${ .id }"}
    reuse: 30 days
    next: review
  review:
    task: "Review <b>it</b>"
    role: clerk
    form: {approved: {type: boolean, required: true}}
    save_as: review
    next:
      - if: ${ .review.approved }
        goto: both
      - goto: refused
  both:
    parallel: [record, notify]
    next: granted
  record: {adapter: registry, call: {operation: record}}
  notify: {adapter: registry, call: {operation: notify}}
  granted: {end: completed}
  refused: {end: refused}
YAML
"$WF" deploy "$WORK/permit.yaml" >/dev/null
for id in 1 2 3; do echo "{\"id\": \"$id\"}" > "$WORK/c$id.json"; "$WF" start render-permit --data "$WORK/c$id.json" >/dev/null; done
set +e
"$WF" start render-permit --data "$WORK/c1.json" >/dev/null 2>&1
[ $? -eq 5 ] || fail "a duplicate start was not refused with exit 5"
set -e
"$WF" engine --until-idle >/dev/null
task=$("$WF" inbox --as ann --json | jq '.[0].id')
"$WF" complete "$task" --as ann --set approved=true >/dev/null
"$WF" engine --until-idle >/dev/null
"$WF" report --html "$WORK/report.html" >/dev/null

# A profile of its own, a hard timeout, and no way out to the network.
run_chromium() {
  timeout -k 5 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --disable-extensions --user-data-dir="$WORK/profile" \
    --host-resolver-rules="MAP * ~NOTFOUND" "$@" 2>>"$WORK/chromium.log"
}
run_chromium --dump-dom "file://$WORK/report.html" > "$WORK/dom.html" ||
  { cat "$WORK/chromium.log" >&2; fail "chromium could not render the report"; }
run_chromium --window-size=1280,2000 --screenshot="$WORK/report.png" "file://$WORK/report.html" \
  >/dev/null || { cat "$WORK/chromium.log" >&2; fail "chromium could not take a screenshot"; }
if [ -n "${WF_REPORT_KEEP:-}" ]; then cp "$WORK/report.html" "$WORK/report.png" "$WF_REPORT_KEEP/"; fi

dom="$WORK/dom.html"
expect() { grep -q -- "$1" "$dom" || fail "the rendered page lacks: $1"; }
count() { grep -o -- "$1" "$dom" | wc -l; }
expect '<table id="procedures">'
expect '<table id="agencies">'
expect '<svg class="chart" id="chart-times"'
expect '<svg class="chart" id="chart-on-time"'
expect '<b id="total-cases">3</b>'
expect '<b id="total-refused">1</b>'
expect '<td class="num cases">3</td>'
expect '<td class="num on-time">100 %</td>'
expect '<td class="num refused">1</td>'
expect 'id="procedure-render-permit"'
# One node per step in the process map, coloured; the edges drawn.
[ "$(count '<g class="node"')" -eq 7 ] || fail "the process map has $(count '<g class="node"') nodes, not 7"
[ "$(count 'fill="hsl(')" -ge 5 ] || fail "the process map's steps are not coloured by time"
[ "$(count '<path class="edge')" -eq 6 ] || fail "the process map lacks its edges"
# Hostile text stayed text: no element the data smuggled in, its characters shown escaped.
grep -q '<script' "$dom" && fail "a <script> element reached the page"
grep -q '<b>it</b>' "$dom" && fail "markup from a task title reached the page"
expect 'A permit &lt;script&gt;alert'
# The screenshot is a real picture of some size.
[ "$(stat -c %s "$WORK/report.png")" -gt 20000 ] || fail "the screenshot is suspiciously small"
echo "ok: the report renders in $("$CHROMIUM" --version 2>/dev/null | head -1)"
