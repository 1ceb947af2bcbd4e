#!/usr/bin/env bash
# Recreates bench/.d3rlpy-venv: d3rlpy 2.8.1 on a CPU-only torch, apart from bremen's venv (d3rlpy and torch are
# never dependencies of bremen). Used only by bench/baselines_vs_d3rlpy.py, which runs its d3rlpy side as a child
# process in this venv.
#
#   bash bench/d3rlpy_setup.sh            # (re)creates bench/.d3rlpy-venv
#   PYTHON=/path/to/python3.11 bash bench/d3rlpy_setup.sh
#
# torch: the CPU-only wheel torch==2.13.0+cpu. On this project's machines it lies in pip's local find-links
# (/opt/wheels); download.pytorch.org's CPU index is not reachable from here, so elsewhere the script falls back
# to PyPI's default torch==2.13.0 wheel (which on Linux x86_64 pulls in the CUDA libraries; it still runs on the
# CPU) unless TORCH_INDEX_URL names a reachable CPU index. Every other package is pinned to the versions
# installed when the benchmark was written (d3rlpy pins gymnasium==1.0.0 itself).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${D3RLPY_VENV:-$HERE/.d3rlpy-venv}"  # D3RLPY_VENV: another location (for testing this script)
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' || {
    echo "need Python 3.11 (set PYTHON=...)" >&2; exit 1; }

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --no-input --disable-pip-version-check)

PINS=(
    d3rlpy==2.8.1
    gymnasium==1.0.0
    gym==0.26.2
    numpy==2.4.6
    scipy==1.17.1
    scikit-learn==1.9.1
    h5py==3.16.0
    tqdm==4.70.1
    click==8.5.1
    structlog==26.1.0
    colorama==0.4.6
    dataclasses-json==0.6.7
    marshmallow==3.26.2
    typing-inspect==0.9.0
    mypy_extensions==1.2.0
    typing_extensions==4.16.0
    cloudpickle==3.1.3
    Farama-Notifications==0.0.6
    gym-notices==0.1.0
    joblib==1.6.0
    threadpoolctl==3.8.0
    narwhals==2.29.0
    packaging==26.4
    filelock==4.3.1
    fsspec==2026.9.0
    Jinja2==3.1.6
    MarkupSafe==3.0.4
    networkx==3.6.1
    sympy==1.14.0
    mpmath==1.3.0
)

# shellcheck source=bench/torch_cpu_install.sh
source "$HERE/torch_cpu_install.sh"
install_torch_cpu "${PINS[@]}"

"$VENV/bin/python" - <<'EOF'
import d3rlpy, gymnasium, torch
print(f"bench/.d3rlpy-venv: d3rlpy {d3rlpy.__version__}, torch {torch.__version__} "
      f"(cuda build: {torch.version.cuda}), gymnasium {gymnasium.__version__}")
EOF
