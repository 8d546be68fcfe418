#!/usr/bin/env bash
# The history of the benchmark figures: every bench/run.sh result in bench/results/ (the files
# with a `wf.noop_1` run), oldest first, as a Markdown table on standard output and, with --svg,
# as an SVG chart (transitions/s and light-load end-to-end latency of wf against pgbench at 4
# clients and the peers, one point per run, the targets dashed).
#
#   bench/history.sh [--svg FILE] [RESULT.json ...]   (default: bench/results/*.json)
#
# Exit codes: 0 done, 2 usage, 4 jq missing or no result file.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SVG=""
FILES=()
while [ $# -gt 0 ]; do
  case $1 in
    --svg) [ $# -ge 2 ] || { echo "history: --svg needs a file name" >&2; exit 2; }; SVG=$2; shift ;;
    -h|--help) sed -n '6p' "$0" | sed 's/^#  *//'; exit 0 ;;
    -*) echo "history: unknown option '$1'" >&2; exit 2 ;;
    *) FILES+=("$1") ;;
  esac
  shift
done
command -v jq > /dev/null || { echo "history: jq is missing; bash .ci/setup installs it" >&2; exit 4; }
[ ${#FILES[@]} -gt 0 ] || FILES=("$ROOT"/bench/results/*.json)

# One JSON object per run, oldest first.
ROWS=$(for f in "${FILES[@]}"; do
  [ -f "$f" ] || continue
  jq -c --arg file "$(basename "$f")" 'select(.wf.noop_1 != null) | {
    file: $file, date: (.meta.date // "" | .[0:10]), commit: (.meta.commit // "-"),
    load: .meta.load_at_start,
    pg4: .pgbench["4"].tps,
    wf: ([.wf.noop_1.transitions_per_s, .wf.noop_2.transitions_per_s] | map(select(. != null)) | max),
    http: .wf.http_1.transitions_per_s,
    e2e: .latency.e2e_ms.p50,
    dispatch: .latency.half_rate.dispatch_ms.p50,
    dispatch99: .latency.half_rate.dispatch_ms.p99,
    graphile: .peers.graphile.steps_per_s, dbos: .peers.dbos.steps_per_s,
    graphile_e2e: .peers.graphile.e2e_ms.p50, dbos_e2e: .peers.dbos.e2e_ms.p50,
    sort: (.meta.date // "")}' "$f"
done | jq -s -c 'sort_by(.sort) | .[]')
[ -n "$ROWS" ] || { echo "history: no bench/run.sh result among the files" >&2; exit 4; }

# The table.
echo "| date | commit | load | pgbench@4 tx/s | wf transitions/s | wf http | wf / pgbench@4 | best peer steps/s | wf / best peer | e2e p50 ms (wf / DBOS / graphile) | dispatch p50 / p99 ms at half the peak |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
jq -r 'def n(d): if . == null then "-" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
  def r(a; b): if a == null or b == null or b == 0 then "-" else ((a / b * 100 | round) / 100 | tostring) + "x" end;
  ([.graphile, .dbos] | map(select(. != null)) | max) as $peer |
  "| \(.date) | \(.commit) | \(.load | n(1)) | \(.pg4 | n(0)) | \(.wf | n(0)) | \(.http | n(0)) | \(r(.wf; .pg4)) | \($peer | n(0)) | \(r(.wf; $peer)) | \(.e2e | n(1)) / \(.dbos_e2e | n(1)) / \(.graphile_e2e | n(1)) | \(.dispatch | n(1)) / \(.dispatch99 | n(1)) |"' <<< "$ROWS"

[ -n "$SVG" ] || exit 0

# The chart: two panels, one point per run along x; series as polylines.
jq -r '[.wf, .pg4, ([.graphile, .dbos] | map(select(. != null)) | max), .e2e, .dbos_e2e,
  .graphile_e2e] | map(if . == null then "-" else tostring end) | @tsv' <<< "$ROWS" |
  paste - <(jq -r '"\(.date) \(.commit)"' <<< "$ROWS") |
  awk -F'\t' '
  function x(i) { return left + (n == 1 ? w / 2 : (i - 1) * w / (n - 1)) }
  function y(v, max) { return top + h - v / max * h }
  function series(panel, col, max, color, name, ly,   i, pts, first) {
    pts = ""
    for (i = 1; i <= n; i++) if (v[i, col] != "-") pts = pts sprintf("%.1f,%.1f ", x(i) + panel, y(v[i, col], max))
    if (pts != "") printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", color, pts
    for (i = 1; i <= n; i++) if (v[i, col] != "-")
      printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s %s: %s</title></circle>\n", x(i) + panel, y(v[i, col], max), color, name, label[i], v[i, col]
    printf "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n", panel + left + 5, ly, color, panel + left + 20, ly + 9, name
  }
  function axis(panel, max, title, unit, target, tname,   k, val) {
    printf "<text x=\"%d\" y=\"20\" font-weight=\"bold\">%s</text>\n", panel + left, title
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", panel + left, top + h, panel + left + w, top + h
    printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", panel + left, top, panel + left, top + h
    for (k = 0; k <= 4; k++) {
      val = max * k / 4
      printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", panel + left - 4, y(val, max) + 4, (val >= 1000 ? sprintf("%.0fk", val / 1000) : sprintf("%g", val))
      printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", panel + left, y(val, max), panel + left + w, y(val, max)
    }
    printf "<text x=\"%d\" y=\"%d\">%s</text>\n", panel + 4, top - 8, unit
    printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>\n", panel + left, y(target, max), panel + left + w, y(target, max)
    printf "<text x=\"%d\" y=\"%.1f\" fill=\"#c00\" text-anchor=\"end\">%s</text>\n", panel + left + w, y(target, max) - 4, tname
    for (k = 1; k <= n; k++) {
      split(label[k], part, " ")
      printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x(k) + panel, top + h + 14, part[1]
      printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#666\">%s</text>\n", x(k) + panel, top + h + 26, part[2]
    }
  }
  { n++; for (c = 1; c <= 6; c++) v[n, c] = $c; label[n] = $7 }
  END {
    left = 56; top = 40; w = 300; h = 200; pw = left + w + 40
    max1 = 20000; max2 = 10
    for (i = 1; i <= n; i++) {
      for (c = 1; c <= 3; c++) if (v[i, c] != "-" && v[i, c] + 0 > max1) max1 = v[i, c] + 0
      for (c = 4; c <= 6; c++) if (v[i, c] != "-" && v[i, c] + 0 > max2) max2 = v[i, c] + 0
    }
    max1 = int(max1 / 5000 + 0.999) * 5000; max2 = int(max2 / 20 + 0.999) * 20
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", 2 * pw, top + h + 100
    print "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    axis(0, max1, "Durable transitions per second", "per s", 20000, "target 20,000")
    series(0, 1, max1, "#1f77b4", "wf, one 5-step noop chain", top + h + 42)
    series(0, 2, max1, "#7f7f7f", "pgbench, 4 clients (one step = one tx)", top + h + 58)
    series(0, 3, max1, "#2ca02c", "faster peer (graphile-worker, DBOS)", top + h + 74)
    axis(pw, max2, "One 5-step case end to end, light load, p50", "ms", 10, "target 10 ms")
    series(pw, 4, max2, "#1f77b4", "wf", top + h + 42)
    series(pw, 5, max2, "#d62728", "DBOS Transact", top + h + 58)
    series(pw, 6, max2, "#2ca02c", "graphile-worker", top + h + 74)
    print "</svg>"
  }' > "$SVG"
echo "history: chart written to $SVG" >&2
