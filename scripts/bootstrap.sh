#!/usr/bin/env bash
# Create (or refresh) .venv with ecgjax and its test extra. Idempotent: re-runs
# only when pyproject.toml changed. Prefers Python 3.12 (jax >= 0.11 needs it);
# falls back to python3 (3.11 gets jax 0.10.x, which ecgjax also supports).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${ECGJAX_PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.12 "$HOME/.pyenv/versions/3.12.1/bin/python" python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "bootstrap: need Python >= 3.11" >&2; exit 1; }
stamp=".venv/.ecgjax-stamp"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "bootstrap: creating .venv with $("$PY" --version)" >&2
"$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "$want" > "$stamp"
.venv/bin/python -c 'import jax, flax, optax, wfdb; print("bootstrap: jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__, "wfdb", wfdb.__version__)' >&2
