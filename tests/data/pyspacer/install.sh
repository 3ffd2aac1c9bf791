#!/usr/bin/env bash
# Install pyspacer 0.14.0 (CoralNet's engine) beside quadrat, for the parity test
# tests/extractors/test_pyspacer_parity.py. Usage: bash tests/data/pyspacer/install.sh [DIR]
#
# pyspacer pins torch<2.9 and numpy<2.4, stricter than it needs, so it goes into its own
# --target directory with --no-deps and runs on quadrat's interpreter (its torch,
# torchvision, numpy, Pillow, scikit-learn) with PYTHONPATH=DIR. boto3 and fire are
# imported at start even for local files; they and their own dependencies go there too.
# Nothing is installed into quadrat's environment. Takes about 5 s from a PyPI mirror.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
target=${1:-${QUADRAT_PYSPACER_PATH:-$repo/../pyspacer-env}}
mkdir -p "$target" && target=$(cd "$target" && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
[ -x "$python" ] || python=python3

"$python" -m pip install --quiet --upgrade --no-deps --target "$target" pyspacer==0.14.0
"$python" -m pip install --quiet --upgrade --target "$target" boto3==1.44.5 fire==0.7.1
PYTHONPATH=$target "$python" -c "import spacer.tasks, spacer.extractors" \
  && echo "pyspacer 0.14.0 installed in $target (set QUADRAT_PYSPACER_PATH=$target if not the default)"
