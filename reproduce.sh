#!/usr/bin/env bash
# Set up the environment once (a venv in .venv with this package), then:
#   ./reproduce.sh [--profile quick|smoke|paper|...] [--datasets a,b] [--techniques ...] [--jobs N]
#       runs the experiment grid with papermill and writes results/<profile>/ (tables, figures)
#   ./reproduce.sh test [pytest args]
#       runs the test suite (unit tests, nbval notebooks, reported-metrics check)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${T5VAE_VENV:-.venv}"
STAMP="$VENV/.t5vae-installed"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ] || [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  echo "[reproduce.sh] setting up $VENV (first run or pyproject.toml changed)" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # torch: the range in pyproject.toml (a torch already installed that fits is kept); this project's
  # CPU machines pin their local CPU build through PIP_CONSTRAINT=.ci/constraints.txt (.ci/run)
  "$VENV/bin/python" -m pip install --quiet -e ".[test]"
  # a "python3" Jupyter kernel inside the venv, used by papermill and nbval
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (t5vae)" >/dev/null
  touch "$STAMP"
fi
export PATH="$PWD/$VENV/bin:$PATH"

if [ "${1:-}" = "test" ]; then
  shift
  exec "$VENV/bin/python" -m pytest "$@"
fi
exec "$VENV/bin/python" -m t5vae.reproduce "$@"
