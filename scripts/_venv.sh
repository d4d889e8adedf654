# Sourced by scripts/demo.sh and scripts/test.sh: make .venv with Orderbridge installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Orderbridge needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.orderbridge-$1
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  if [ "$1" = test ]; then
    # The tests run on the locked (and audited) versions; pip check fails when the lock
    # lacks a dependency pyproject.toml asks for (regenerate it: see requirements.lock).
    .venv/bin/python -m pip install --quiet -r requirements.lock
    .venv/bin/python -m pip install --quiet --no-deps -e '.[test]'
    .venv/bin/python -m pip check
  else
    .venv/bin/python -m pip install --quiet -e .
  fi
  touch "$stamp"
fi
