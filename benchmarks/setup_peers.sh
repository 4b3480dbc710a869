#!/usr/bin/env bash
# Create the benchmark venv (.bench-venv, git-ignored) with nbtracker (editable)
# and the peers it is compared against: wandb (offline), trackio, mlflow.
# Usage: bash benchmarks/setup_peers.sh   (from anywhere; idempotent)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_VENV:-$REPO/.bench-venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
cd "$REPO"
# pip on this machine may use a global constraints file; that is fine.
"$VENV/bin/python" -m pip install --upgrade pip >/dev/null || true
# sweeps: optuna, for bench_sweeps.py (its overhead and 2-agent parts run here too)
"$VENV/bin/python" -m pip install wandb trackio mlflow psutil -e ".[sweeps]"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("nbtracker", "wandb", "trackio", "mlflow", "duckdb", "pyarrow", "pandas"):
    try:
        print(f"{name:10s} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name:10s} MISSING")
PY
echo "bench venv ready: $VENV"
