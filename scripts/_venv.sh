# Shared by scripts/run and scripts/test: a project virtualenv with the pinned dependencies.
# Usage: source scripts/_venv.sh [extras]   (extras: "" for the app, "dev,clickhouse" for the tests)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "error: Python 3.11 is required (found: $("$PYTHON" --version 2>&1))" >&2; exit 1; }
extras="${1:-}"
spec="."
[ -n "$extras" ] && spec=".[$extras]"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=".venv/.installed-${extras:-app}"
digest="$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "==> installing dependencies ($spec, pinned by requirements.lock)" >&2
  log=.venv/install.log
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --disable-pip-version-check \
           -c requirements.lock -e "$spec"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "error: dependency installation failed (full log: $log)" >&2
    exit 1
  fi
  echo "$digest" > "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
