#!/usr/bin/env bash
# Install pyspacer 0.14.0 (CoralNet's engine) beside quadrat.
#
#   bash tests/data/pyspacer/install.sh [DIR]
#     For the parity test tests/extractors/test_pyspacer_parity.py: pyspacer pins torch<2.9
#     and numpy<2.4, stricter than it needs, so it goes into its own --target directory
#     with --no-deps and runs on quadrat's interpreter (its torch, torchvision, numpy,
#     Pillow, scikit-learn) with PYTHONPATH=DIR. boto3 and fire are imported at start even
#     for local files; they and their own dependencies go there too. Nothing is installed
#     into quadrat's environment. Takes about 5 s from a PyPI mirror. The interpreter is
#     $PYTHON, else the repository's .venv/bin/python; without either it stops with an
#     error (a bare system python3 lacks Pillow and torch).
#
#   bash tests/data/pyspacer/install.sh --venv DIR
#     For benchmarks/compare_pyspacer.py: a virtualenv of pyspacer's own, with the
#     dependencies it pins (torch 2.8, torchvision 0.23, scikit-learn 1.5.2, numpy < 2.4),
#     as CoralNet runs it. On x86_64 Linux, PyPI's torch 2.8 is a CUDA build: about 2.5 GB
#     downloaded, 6.8 GB on disk, 2-3 minutes here. The benchmark finds it at
#     ../pyspacer-venv (or $QUADRAT_PYSPACER_PYTHON).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

if [ "${1:-}" = "--venv" ]; then
  venv=${2:-$repo/../pyspacer-venv}
  base=${PYTHON_FOR_VENV:-python3}
  command -v "$base" >/dev/null || { echo "error: $base not found (set PYTHON_FOR_VENV)" >&2; exit 2; }
  "$base" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet pyspacer==0.14.0 fire==0.7.1
  "$venv/bin/python" -c "import spacer.tasks, spacer.extractors" \
    && echo "pyspacer 0.14.0 installed with its own dependencies in the virtualenv $venv"
  exit 0
fi

target=${1:-${QUADRAT_PYSPACER_PATH:-$repo/../pyspacer-env}}
python=${PYTHON:-$repo/.venv/bin/python}
if [ ! -x "$python" ]; then
  echo "error: no Python environment for pyspacer: $python does not exist." >&2
  echo "Create quadrat's (python3 -m venv .venv && .venv/bin/pip install -e '.[test]')," >&2
  echo "set PYTHON to an interpreter with torch, torchvision, Pillow and scikit-learn," >&2
  echo "or give pyspacer its own virtualenv: bash $0 --venv DIR" >&2
  exit 2
fi
if ! "$python" -c "import PIL, numpy, torch, torchvision, sklearn" 2>/dev/null; then
  echo "error: $python lacks one of Pillow, numpy, torch, torchvision, scikit-learn," >&2
  echo "which pyspacer imports; install quadrat's test extras there (pip install -e '.[test]')" >&2
  echo "or give pyspacer its own virtualenv: bash $0 --venv DIR" >&2
  exit 2
fi
mkdir -p "$target" && target=$(cd "$target" && pwd)

"$python" -m pip install --quiet --upgrade --no-deps --target "$target" pyspacer==0.14.0
"$python" -m pip install --quiet --upgrade --target "$target" boto3==1.44.5 fire==0.7.1
PYTHONPATH=$target "$python" -c "import spacer.tasks, spacer.extractors" \
  && echo "pyspacer 0.14.0 installed in $target (set QUADRAT_PYSPACER_PATH=$target if not the default)"
