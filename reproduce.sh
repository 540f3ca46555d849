#!/usr/bin/env bash
# Set up the environment once (a venv in .venv with this package), then:
#   ./reproduce.sh [--profile quick|smoke|paper|...] [--datasets a,b] [--techniques ...] [--jobs N]
#       runs the experiment grid with papermill and writes results/<profile>/ (tables, figures)
#   ./reproduce.sh test [pytest args]
#       runs the test suite (unit tests, nbval notebooks, reported-metrics check)
#   ./reproduce.sh docs
#       builds the documentation site into docs/_build/html (Sphinx, warnings are errors) and checks
#       it in headless Chromium (scripts/check_site.py; screenshots in docs/_build/screenshots)
#   ./reproduce.sh lock
#       regenerates requirements/lock.txt (uv pip compile, from pyproject.toml + requirements/pins.txt)
#
# Which environment (T5VAE_ENV):
#   locked  (default) every package at the version and hash of requirements/lock.txt: the
#           environment the committed references were computed in (Linux x86_64, CPython 3.11;
#           torch's CPU build). Elsewhere it falls back to `ranges` and says so.
#   ranges  a fresh .venv from pyproject.toml's ranges (newest releases that fit)
#   current no venv: install this package into the running Python's environment with its ranges,
#           keeping the torch that is there (Colab, a CUDA machine)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
MODE="${T5VAE_ENV:-locked}"
LOCK=requirements/lock.txt
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

case "$MODE" in
  locked|ranges|current) ;;
  *) echo "error: T5VAE_ENV=$MODE: expected locked, ranges or current" >&2; exit 2 ;;
esac

if [ "${1:-}" = "lock" ]; then
  # uv resolves for the lock's platform whatever machine runs it, and writes a plain pip
  # requirements file with hashes (installing needs only pip); it is installed on demand.
  "$PYTHON" -m pip install --quiet --target .cache/uv uv
  where=(--extra-index-url "$TORCH_CPU_INDEX" --index-strategy unsafe-best-match)
  [ -n "${PIP_FIND_LINKS:-}" ] && where=(--find-links "$PIP_FIND_LINKS")  # a local torch wheel
  PYTHONPATH=.cache/uv "$PYTHON" -m uv pip compile pyproject.toml --extra test --extra docs \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
    --constraints requirements/pins.txt "${where[@]}" --no-header --quiet --output-file "$LOCK.new"
  { echo "# The locked environment (Linux x86_64, CPython 3.11): ./reproduce.sh lock regenerates it."
    echo "# Installed by ./reproduce.sh (T5VAE_ENV=locked, the default) with pip --require-hashes."
    cat "$LOCK.new"; } >"$LOCK"
  rm "$LOCK.new"
  echo "wrote $LOCK ($(grep -c '^[a-z0-9].*==' "$LOCK") packages)"
  exit 0
fi

if [ "$MODE" = locked ]; then
  here=$("$PYTHON" -c 'import platform, sys; print(sys.implementation.name, "%d.%d" % sys.version_info[:2], platform.system(), platform.machine())')
  if [ "$here" != "cpython 3.11 Linux x86_64" ]; then
    echo "[reproduce.sh] the locked environment is for CPython 3.11 on Linux x86_64, this is $here:" >&2
    echo "[reproduce.sh] installing from pyproject.toml's ranges (results compare as another environment; T5VAE_ENV=ranges says so quietly)" >&2
    MODE=ranges
  fi
fi

if [ "$MODE" = current ]; then
  VENV=$("$PYTHON" -c 'import sys; print(sys.prefix)')
  WANT="current $(sha256sum pyproject.toml | cut -c1-16)"
else
  VENV="${T5VAE_VENV:-.venv}"
  if [ "$MODE" = locked ]; then WANT="locked $(sha256sum "$LOCK" | cut -c1-16)"
  else WANT="ranges $(sha256sum pyproject.toml | cut -c1-16)"; fi
fi
STAMP="$VENV/.t5vae-installed"
PIP=("$VENV/bin/python" -m pip install --quiet)
if [ "$MODE" = current ]; then PIP=("$PYTHON" -m pip install --quiet); fi

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "[reproduce.sh] setting up $VENV ($MODE environment)" >&2
  if [ "$MODE" != current ]; then
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  fi
  if [ "$MODE" = locked ]; then
    # every package exactly as locked; torch's CPU build comes from pip's configured indexes or
    # local wheels, else from PyTorch's CPU index
    "${PIP[@]}" --require-hashes --no-deps -r "$LOCK" \
      || "${PIP[@]}" --require-hashes --no-deps -r "$LOCK" --extra-index-url "$TORCH_CPU_INDEX"
    "${PIP[@]}" --no-deps -e .
  else
    # the ranges of pyproject.toml (a torch already installed that fits is kept)
    "${PIP[@]}" -e ".[test,docs]"
  fi
  # a "python3" Jupyter kernel inside the environment, used by papermill and nbval
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (t5vae)" >/dev/null
  echo "$WANT" >"$STAMP"
fi
VENV="$(cd "$VENV" && pwd)"
export PATH="$VENV/bin:$PATH"

if [ "${1:-}" = "test" ]; then
  shift
  exec "$VENV/bin/python" -m pytest "$@"
fi
if [ "${1:-}" = "docs" ]; then
  "$VENV/bin/python" -m sphinx -b html -W --keep-going docs docs/_build/html
  exec "$VENV/bin/python" scripts/check_site.py docs/_build/html
fi
exec "$VENV/bin/python" -m t5vae.grid.reproduce "$@"
