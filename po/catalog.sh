#!/usr/bin/env bash
# The Vietnamese catalog against the sources (po/README.md).
#   bash po/catalog.sh check    every marked message has a translation; vi.po compiles (CTest)
#   bash po/catalog.sh update   merges new messages into vi.po (msgmerge), to be translated
#   bash po/catalog.sh pot FILE writes the template of every marked message to FILE
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

extract() {
  find cli engine workflows adapters server \( -name '*.cpp' -o -name '*.hpp' \) | LC_ALL=C sort \
    >"$work/files"
  xgettext --language=C++ --from-code=UTF-8 --package-name=wf --no-wrap --sort-by-file \
    --add-comments=TRANSLATORS: --keyword= --keyword=Tr --keyword=TrFormat \
    --keyword=TrN:1,2 --keyword=TrFormatN:1,2 --keyword=TrNoop \
    --files-from="$work/files" -o "$1"
}

case "${1:-check}" in
  pot)
    extract "$2"
    ;;
  update)
    extract "$work/wf.pot"
    msgmerge --quiet --update --backup=none --no-wrap --no-fuzzy-matching po/vi.po "$work/wf.pot"
    echo "po/vi.po: $(msgattrib --untranslated po/vi.po | grep -c '^msgid ' || true) untranslated"
    ;;
  check)
    extract "$work/wf.pot"
    msgfmt --check -o /dev/null po/vi.po
    # msgcmp fails on a message of the sources that vi.po lacks or leaves untranslated.
    msgcmp po/vi.po "$work/wf.pot"
    fuzzy=$(msgattrib --only-fuzzy --no-obsolete po/vi.po | grep -c '^msgid ' || true)
    if [ "$fuzzy" -gt 0 ]; then
      echo "po/vi.po: $fuzzy fuzzy translations; review them and remove the fuzzy mark" >&2
      exit 1
    fi
    total=$(grep -c '^msgid ' "$work/wf.pot" || true)
    echo "po/vi.po: every one of $((total - 1)) messages is translated, and the catalog compiles"
    ;;
  *)
    echo "usage: bash po/catalog.sh check|update|pot FILE" >&2
    exit 2
    ;;
esac
