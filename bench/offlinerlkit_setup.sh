#!/usr/bin/env bash
# Recreates bench/.offlinerlkit-venv: a CPU-only torch and numpy, apart from bremen's venv, for the PyTorch side of
# bench/mopo_speed.py (OfflineRL-Kit's MOPO), which runs as a child process in this venv.
#
#   OFFLINERLKIT_SRC=/work/offlinerlkit-src bash bench/offlinerlkit_setup.sh
#   PYTHON=/path/to/python3.11 OFFLINERLKIT_SRC=... bash bench/offlinerlkit_setup.sh
#
# OFFLINERLKIT_SRC (required): a source tree of OfflineRL-Kit (github.com/yihaosun1124/OfflineRL-Kit; not on
# PyPI), e.g. `git clone https://github.com/yihaosun1124/OfflineRL-Kit /work/offlinerlkit-src`, or from a mirror
# `git --git-dir=<mirror> archive HEAD | tar -x -C /work/offlinerlkit-src`. The benchmark was written against
# commit e3ce69793766d02660217d4dfc0af4693a5531bd (2025-07-11). Its code is never copied into this repository or
# installed into the venv: the venv gets a .pth file holding the path, and bench/mopo_speed.py imports the few
# submodules it measures by path (the package __init__s import gym, mujoco and tensorboard, which the measured
# code does not use; see the docstring of bench/mopo_speed.py).
#
# Installed: torch==2.13.0+cpu (from pip's local find-links /opt/wheels on this project's machines; elsewhere,
# TORCH_INDEX_URL may name a reachable CPU index, else PyPI's default torch==2.13.0 wheel, which pulls in the CUDA
# libraries and still runs on the CPU), numpy and torch's own dependencies, pinned to the versions installed when
# the benchmark was written. Not installed: the kit's gym<=0.24.1, d4rl, mujoco, matplotlib, pandas, tensorboard,
# tqdm (the measured modules need none of them).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${OFFLINERLKIT_VENV:-$HERE/.offlinerlkit-venv}"  # OFFLINERLKIT_VENV: another location (for testing this script)
SRC="${OFFLINERLKIT_SRC:?set OFFLINERLKIT_SRC to an OfflineRL-Kit source tree (see the comment at the top)}"
SRC="$(cd "$SRC" && pwd)"
for f in dynamics/ensemble_dynamics.py modules/dynamics_module.py policy/model_based/mopo.py \
         policy/model_free/sac.py buffer/buffer.py utils/termination_fns.py; do
    [[ -f "$SRC/offlinerlkit/$f" ]] || { echo "$SRC is not an OfflineRL-Kit tree: no offlinerlkit/$f" >&2; exit 1; }
done
case "$SRC/" in
    "$(cd "$HERE/.." && pwd)/"*) echo "OFFLINERLKIT_SRC must lie outside this repository" >&2; exit 1 ;;
esac

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' || {
    echo "need Python 3.11 (set PYTHON=...)" >&2; exit 1; }

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --no-input --disable-pip-version-check -q)

PINS=(
    numpy==2.4.6
    filelock==4.3.1
    typing_extensions==4.16.0
    setuptools==84.2.1
    sympy==1.14.0
    mpmath==1.3.0
    networkx==3.6.1
    Jinja2==3.1.6
    MarkupSafe==3.0.4
    fsspec==2026.9.0
)

# shellcheck source=bench/torch_cpu_install.sh
source "$HERE/torch_cpu_install.sh"
install_torch_cpu "${PINS[@]}"

# The source tree on the venv's path (not installed, not copied): a .pth file in site-packages.
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$SRC" > "$SITE/offlinerlkit_src.pth"

COMMIT="$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo "not a git checkout")"
"$VENV/bin/python" - "$SRC" "$COMMIT" <<'EOF'
import sys, numpy, torch
src, commit = sys.argv[1:]
print(f"{sys.prefix}: torch {torch.__version__} (cuda build: {torch.version.cuda}), numpy {numpy.__version__}, "
      f"OfflineRL-Kit source {src} ({commit})")
EOF
