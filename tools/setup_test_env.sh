#!/usr/bin/env bash
# Creates .venv with CPU torch, samstream (editable, test extras) and Meta's reference package `sam2`
# (the test oracle, built without its CUDA extension, with the CPU stand-ins from ../shared/reference/oracle).
set -euo pipefail
cd "$(dirname "$0")/.."
ORACLE_DIR="${SAMSTREAM_ORACLE_DIR:-../shared/reference/oracle}"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/pip --disable-pip-version-check -q"
$PIP install torch==2.13.0 setuptools wheel
$PIP install -e '.[test]'
if ! .venv/bin/python -c "import sam2" 2>/dev/null; then
  SAM2_BUILD_CUDA=0 $PIP install --no-deps --no-build-isolation sam2==1.1.0
  $PIP install hydra-core iopath
  $PIP install --no-deps "$ORACLE_DIR/torchvision-shim"
  cp "$ORACLE_DIR/sam2_C_cpu.py" "$(.venv/bin/python -c 'import sam2, os; print(os.path.dirname(sam2.__file__))')/_C.py"
fi
