#!/usr/bin/env bash
# The main job: set everything up on a fresh Debian 12 machine, then run the example
# procedures. For now it validates every example against the deployment config and draws it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
WF=${WF_BUILD_DIR:-build}/cli/wf
OUT=${WF_DEMO_OUT:-build/demo}
mkdir -p "$OUT"
echo "== validating the example procedures against examples/config.yaml"
"$WF" validate --config examples/config.yaml examples/procedures/*.yaml
echo "== drawing them (mermaid and dot) into $OUT/"
for f in examples/procedures/*.yaml; do
  name=$(basename "$f" .yaml)
  "$WF" graph "$f" --format mermaid > "$OUT/$name.mmd"
  "$WF" graph "$f" --format dot > "$OUT/$name.dot"
  echo "   $OUT/$name.mmd  $OUT/$name.dot"
done
