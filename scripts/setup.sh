#!/usr/bin/env bash
# One-time setup on a fresh Debian machine (or any machine with Python >= 3.10 and pip).
#   - Debian data packages when apt is available: Fashion-MNIST, the WordNet 3.0 database and two emoji fonts.
#   - A virtual environment .venv with torch==2.14.1 / torchvision==0.29.1 (see docs/ARCHITECTURE.md §4: never
#     the CPU-only torch 2.13 file with a CUDA torchvision) and t2wlib with its extras, installed by uv (PyPI's
#     `uv`, pinned below): the same pinned versions as pip's, unpacked in parallel, about 3x faster from a
#     cold cache (benchmarks/results/bench_setup.json).
#   - With --test: also Debian's chromium and chromium-driver, for the demo page's browser test
#     (tests/test_demo_browser.py).
# Idempotent: finished steps are skipped, so a second run costs seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_PINS=("torch==2.14.1" "torchvision==0.29.1")
UV_PIN="uv==0.13.10"
APT_PACKAGES=(dataset-fashion-mnist wordnet-base fonts-noto-color-emoji fonts-symbola)
BROWSER_PACKAGES=(chromium chromium-driver)
WITH_BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_BROWSER=1 ;;
    *) echo "[setup] unknown option $arg; allowed: --test" >&2; exit 2 ;;
  esac
done

log() { printf '[setup] %s\n' "$*"; }

# 1. Debian data packages (optional: without them Fashion-MNIST falls back to a torchvision download),
#    and with --test the browser the demo page's test drives.
missing=()
wanted=("${APT_PACKAGES[@]}")
[ "$WITH_BROWSER" = 1 ] && wanted+=("${BROWSER_PACKAGES[@]}")
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } \
      || log "WARNING: could not install ${missing[*]}; without the data packages Fashion-MNIST will need a download, T2W-NL falls back to the project's own descriptions and the emoji datasets are unavailable; without chromium the demo page's browser test fails"
  fi
else
  log "Debian data packages present"
fi

# 2. Virtual environment with pinned torch. The installers' own output goes to a log file, named if a step fails.
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
LOG="$VENV/t2w-setup.log"
if [ ! -x "$VENV/bin/uv" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$UV_PIN" >>"$LOG" 2>&1 \
    || { log "ERROR: pip install $UV_PIN failed; its output is in $LOG"; exit 1; }
fi
venv_install() {
  # --compile-bytecode: pip's default, not uv's; without .pyc files (and with PYTHONDONTWRITEBYTECODE set, as on
  # some machines) every notebook kernel and job compiles torch's Python again, seconds each.
  "$VENV/bin/uv" pip install -q --compile-bytecode --python "$VENV/bin/python" "$@" >>"$LOG" 2>&1 \
    || { log "ERROR: uv pip install $* failed; its output is in $LOG"; exit 1; }
}
if ! "$VENV/bin/python" -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1')))" 2>/dev/null; then
  log "installing ${TORCH_PINS[*]} (CUDA build from PyPI; it also runs on CPU)"
  venv_install "${TORCH_PINS[@]}"
fi

# 3. t2wlib and its extras, pinned by constraints.txt (a tested `pip freeze`).
stamp="$VENV/.t2w-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  log "installing t2wlib[notebooks,test]"
  venv_install -c constraints.txt -e ".[notebooks,test]"
  # A kernel spec inside the venv, so papermill and JupyterLab run notebooks with this interpreter.
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
  touch "$stamp"
else
  log "t2wlib already installed"
fi
log "done"
