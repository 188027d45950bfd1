#!/usr/bin/env bash
# One-shot, idempotent project set-up: system data set (apt), virtual env in
# .venv, every pinned Python dependency, and sbnn itself in editable mode.
# A second run with unchanged pins only checks a stamp and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)'; then
  echo "sbnn setup: Python >= 3.11 is required (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

key=$(cat requirements/lock.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp="$VENV/.sbnn-setup-$key"
if [ -f "$stamp" ]; then
  exit 0
fi

# System packages (Debian): Fashion-MNIST (full 60k/10k, IDX) from dataset-fashion-mnist, and Icarus
# Verilog (iverilog), the strict Verilog-2001 parser the tests read every generated .v file with.
APT_PACKAGES="dataset-fashion-mnist iverilog"
missing=""
for pkg in $APT_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "sbnn setup: installing$missing (apt)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null \
      || echo "sbnn setup: could not install$missing; Fashion-MNIST then needs --data-dir, the Verilog-2001 check is skipped" >&2
  else
    echo "sbnn setup: apt not available; install$missing yourself (Fashion-MNIST can also come from --data-dir)" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "sbnn setup: creating $VENV with $("$PY" --version)"
  "$PY" -m venv "$VENV"
fi
# pip's output (index notices, setuptools' deprecation banners) goes to a log, not into `make build > log`;
# a failure shows its tail and where the rest is.
PIP_LOG="$VENV/setup-pip.log"
: > "$PIP_LOG"
pip_install() {
  if ! "$VENV/bin/python" -m pip install -q "$@" >>"$PIP_LOG" 2>&1; then
    tail -n 30 "$PIP_LOG" >&2
    echo "sbnn setup: pip install $* failed; whole output in $PIP_LOG" >&2
    exit 1
  fi
}
echo "sbnn setup: installing pinned dependencies (requirements/lock.txt; pip's output in $PIP_LOG)"
pip_install --upgrade "pip>=24"
# torch first, alone: a CPU wheel pinned exactly, so nothing pulls a CUDA build.
pip_install "torch==2.13.0" "setuptools==80.10.2"
pip_install --no-deps -r requirements/lock.txt
pip_install --no-deps --no-build-isolation -e .
rm -f "$VENV"/.sbnn-setup-*
touch "$stamp"
echo "sbnn setup: done ($VENV)"
