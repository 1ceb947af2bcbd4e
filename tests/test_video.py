"""save_video.py renders headless MP4s of an exported policy."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bremen.tasks as T
from bremen.io.policy_io import NumpyPolicy, save_policy

ROOT = Path(__file__).resolve().parent.parent


def random_policy(path, task, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [task.obs_dim, 16, 2 * task.act_dim]
    layers = [{"w": rng.normal(0, 0.3, (a, b)).astype(np.float32), "b": np.zeros(b, np.float32)}
              for a, b in zip(sizes[:-1], sizes[1:])]
    pol = NumpyPolicy("gaussian", layers, -1, 1, obs_mean=np.zeros(task.obs_dim), obs_std=np.ones(task.obs_dim))
    save_policy(path, pol, {"task": task.name})


@pytest.mark.parametrize("name", ["half_cheetah", "cheetah_run"])
def test_save_video_writes_a_readable_mp4(name, tmp_path):
    import imageio.v3 as iio

    task = T.make(name)
    random_policy(tmp_path / "pol", task)
    out = subprocess.run([sys.executable, str(ROOT / "save_video.py"), "--env", name, "--policy", str(tmp_path / "pol"),
                          "--episodes", "1", "--max_steps", "12", "--video_dir", str(tmp_path / "vid")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    frames = iio.imread(tmp_path / "vid" / f"{name}_episode0.mp4")
    assert frames.shape == (13, 480, 480, 3)
    assert frames.std() > 5, "frames should show a scene, not a blank image"


def test_save_video_rejects_a_policy_of_another_task(tmp_path):
    random_policy(tmp_path / "pol", T.make("hopper"))
    out = subprocess.run([sys.executable, str(ROOT / "save_video.py"), "--env", "half_cheetah", "--policy",
                          str(tmp_path / "pol"), "--video_dir", str(tmp_path / "vid")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "pass the matching --env" in out.stderr
