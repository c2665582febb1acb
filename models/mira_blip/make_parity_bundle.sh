#!/usr/bin/env bash
# Export the blip-parity fixtures (tiny random-weight BLIP models) into a Mira bundle, then check
# the bundle against PyTorch and the fixtures' expected outputs. Used by the TypeScript parity test.
# The bundle is a build output: keep it out of git (e.g. test/artifacts/, which is ignored).
#
# usage: models/mira_blip/make_parity_bundle.sh OUT_DIR [REF_DIR] [--no-check]
set -euo pipefail
OUT=$(realpath -m "$1")
REF=$(realpath -m "${2:-/work/shared/reference/blip-parity}")
PY=${MIRA_PYTHON:-/usr/bin/python3}  # Debian's python3 carries torch; the first python3 on PATH does not
cd "$(dirname "$0")/.."

mkdir -p "$OUT"
"$PY" -m mira_blip.tokenizers parity --out "$OUT/tokenizer.json"
"$PY" -m mira_blip.export \
  --retrieval "$REF/retrieval.safetensors" --captioning "$REF/captioning.safetensors" \
  --config "$REF/config.json" --tokenizer "$OUT/tokenizer.json" --out "$OUT" \
  --name blip-parity --version 1
if [[ "${*: -1}" != "--no-check" ]]; then
  "$PY" -m mira_blip.parity_check --bundle "$OUT" --ref "$REF"
fi
