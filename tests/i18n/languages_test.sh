#!/usr/bin/env bash
# Every command of `wf` in English and in Vietnamese (WF_LANG=vi) on the demo's cases: the
# README's demo runs first (examples/run-demo.sh, into a folder of its own), then each command
# runs in both languages. Checked: the same exit code; --json byte for byte the same; the
# Vietnamese text differs from the English, is valid UTF-8 and keeps its diacritics; no English
# word left in a Vietnamese table header; dates dd/mm/yyyy HH:MM; help and errors translated;
# the report page lang="vi", rendered by headless Chromium, and its screenshot read back by
# tesseract (OCR) with the Vietnamese words intact.
# Usage: languages_test.sh BUILD_DIR. Exit 77 (skipped) when chromium or jq is missing.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WF=$BUILD/cli/wf
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
WORK=$(mktemp -d /tmp/wf-lang.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset LANG LC_ALL LC_MESSAGES LANGUAGE WF_LANG

(cd "$ROOT" && WF_SKIP_SETUP=1 WF_BUILD_DIR="$BUILD" WF_DEMO_OUT="$WORK/demo" \
  bash examples/run-demo.sh) >"$WORK/demo.log" 2>&1 || { tail -40 "$WORK/demo.log"; fail "the demo failed"; }
export WF_DB="sqlite:$WORK/demo/wf.db" WF_CONFIG="$WORK/demo/config.yaml"

n=0
# both NAME ARGS...: runs `wf ARGS` in each language into $WORK/out/NAME.{en,vi}{,.err,.rc}.
mkdir -p "$WORK/out"
both() {
  local name=$1
  shift
  for lang in en vi; do
    set +e
    (cd "$ROOT" && WF_LANG=$lang "$WF" "$@") >"$WORK/out/$name.$lang" 2>"$WORK/out/$name.$lang.err"
    echo $? >"$WORK/out/$name.$lang.rc"
    set -e
  done
  n=$((n + 1))
  local en_rc vi_rc
  en_rc=$(cat "$WORK/out/$name.en.rc")
  vi_rc=$(cat "$WORK/out/$name.vi.rc")
  [ "$en_rc" = "$vi_rc" ] || fail "wf $*: exit $en_rc in English, $vi_rc in Vietnamese"
  for f in "$WORK/out/$name.vi" "$WORK/out/$name.vi.err"; do
    iconv -f UTF-8 -t UTF-8 "$f" >/dev/null 2>&1 || fail "wf $*: Vietnamese output is not valid UTF-8"
  done
}
# The same bytes in both languages (machine-read output).
same() {
  both "$@"
  cmp -s "$WORK/out/$1.en" "$WORK/out/$1.vi" || fail "wf ${*:2}: output differs between languages"
}
# Translated: the Vietnamese text (stdout and stderr) differs and has Vietnamese letters.
translated() {
  both "$@"
  local name=$1
  cat "$WORK/out/$name.en" "$WORK/out/$name.en.err" >"$WORK/out/$name.en.all"
  cat "$WORK/out/$name.vi" "$WORK/out/$name.vi.err" >"$WORK/out/$name.vi.all"
  ! cmp -s "$WORK/out/$name.en.all" "$WORK/out/$name.vi.all" ||
    fail "wf ${*:2}: the Vietnamese output is the English one: $(head -3 "$WORK/out/$name.en.all")"
  grep -q '[ăâđêôơưĂÂĐÊÔƠƯàáảãạèéẻẽẹìíỉĩịòóỏõọùúủũụỳýỷỹỵ]' "$WORK/out/$name.vi.all" ||
    fail "wf ${*:2}: no Vietnamese letter in: $(head -3 "$WORK/out/$name.vi.all")"
}
# header NAME: the table's header line (the first) keeps no word of any English header.
headers_en=""
header() {
  local en vi
  en=$(head -1 "$WORK/out/$1.en")
  vi=$(head -1 "$WORK/out/$1.vi")
  headers_en="$headers_en $en"
  echo "$vi" >>"$WORK/vi-headers"
}

# Help: the program's and every command's.
translated help --help
grep -q "Options:" "$WORK/out/help.vi" && fail "wf --help: the 'Options:' label is English"
commands=$(sed -n '/^Subcommands:/,$p' "$WORK/out/help.en" | awk 'NR > 1 && NF {print $1}')
[ -n "$commands" ] || fail "no command listed by wf --help"
for c in $commands; do translated "help-$c" "$c" --help; done

# The demo's cases: every case's show and history, lists, reports.
ids=$(WF_LANG=en "$WF" cases --limit 0 --json | jq -r '.[].id')
[ "$(wc -w <<<"$ids")" -ge 10 ] || fail "the demo left $(wc -w <<<"$ids") cases"
translated procedures procedures
header procedures
same procedures-json procedures --json
translated cases cases --limit 0
header cases
same cases-json cases --limit 0 --json
for id in $ids; do
  translated "show-$id" show "$id"
  same "show-json-$id" show "$id" --json
  translated "history-$id" history "$id"
  same "history-json-$id" history "$id" --json
done
translated inbox inbox --as an.nguyen
translated incidents incidents
translated report report
both report-json report --json
[ "$(jq -S 'del(.generated_at)' "$WORK/out/report-json.en")" = "$(jq -S 'del(.generated_at)' "$WORK/out/report-json.vi")" ] ||
  fail "wf report --json differs between languages (beyond generated_at)"
translated verify audit verify
translated validate validate examples/procedures/health-card-issue.yaml
# Errors a user can cause: the same exit code, the message in Vietnamese.
translated no-case show no-such-case
[ "$(cat "$WORK/out/no-case.vi.rc")" = 4 ] || fail "wf show no-such-case: exit $(cat "$WORK/out/no-case.vi.rc"), not 4"
translated no-task claim 999999 --as an.nguyen
translated bad-option cases --no-such-option
translated bad-procedure start no-such-procedure --data examples/cases/health-card-issue.json

# No English word in the Vietnamese table headers.
for word in $(tr ' ' '\n' <<<"$headers_en" | grep -v '^$' | sort -u); do
  if grep -qw -- "$word" "$WORK/vi-headers"; then
    fail "the English header word '$word' is left in a Vietnamese header: $(grep -w -- "$word" "$WORK/vi-headers" | head -1)"
  fi
done
# Dates dd/mm/yyyy HH:MM, never the ISO form, where people read them.
grep -Eq '[0-3][0-9]/[01][0-9]/20[0-9]{2} [0-2][0-9]:[0-5][0-9]' "$WORK/out/cases.vi" ||
  fail "wf cases in Vietnamese shows no dd/mm/yyyy HH:MM date"
grep -Eq '20[0-9]{2}-[01][0-9]-[0-3][0-9]' "$WORK/out/cases.vi" &&
  fail "wf cases in Vietnamese still shows an ISO date"
grep -Eq '20[0-9]{2}-[01][0-9]-[0-3][0-9]' "$WORK/out/cases.en" ||
  fail "wf cases in English lost its ISO dates"

# The report page: lang="vi" and Vietnamese text, drawn by the browser.
(cd "$ROOT" && WF_LANG=vi "$WF" report --html "$WORK/report.html") >/dev/null
grep -q '<html lang="vi"' "$WORK/report.html" || fail "the Vietnamese report page is not lang=\"vi\""
(cd "$ROOT" && WF_LANG=en "$WF" report --html "$WORK/report-en.html") >/dev/null
grep -q '<html lang="en"' "$WORK/report-en.html" || fail "the English report page is not lang=\"en\""
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "SKIP (report rendering): chromium is not installed"
else
  timeout -k 5 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --disable-extensions --user-data-dir="$WORK/profile" \
    --host-resolver-rules="MAP * ~NOTFOUND" --window-size=1280,1400 \
    --screenshot="$WORK/report.png" "file://$WORK/report.html" >/dev/null 2>"$WORK/chromium.log" ||
    { cat "$WORK/chromium.log" >&2; fail "chromium could not take a screenshot of the report"; }
  [ -s "$WORK/report.png" ] || fail "chromium wrote no screenshot"
  if ! command -v tesseract >/dev/null || ! tesseract --list-langs 2>/dev/null | grep -qx vie; then
    echo "SKIP (screenshot text): tesseract with Vietnamese (tesseract-ocr-vie) is not installed"
  else
    tesseract "$WORK/report.png" "$WORK/report-ocr" -l vie >/dev/null 2>&1
    ocr=$(tr -s ' \n' ' ' <"$WORK/report-ocr.txt")
    # Phrases of the page, diacritics included, as the browser drew them. OCR may misread one
    # (the page has small print); two misread means the text did not survive.
    phrases=("Thời gian xử lý" "thời hạn giải quyết" "ngày làm việc" "Tỷ lệ đúng hạn"
      "hồ sơ đang xử lý" "không tính")
    missing=()
    for phrase in "${phrases[@]}"; do
      grep -qF -- "$phrase" <<<"$ocr" || missing+=("$phrase")
    done
    [ ${#missing[@]} -le 1 ] ||
      fail "the screenshot of the Vietnamese report lacks: ${missing[*]} (OCR read: ${ocr:0:600})"
  fi
fi
echo "OK: $n commands in both languages on $(wc -w <<<"$ids") demo cases"
