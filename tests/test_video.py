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
    assert out.stderr.strip().count("\n") == 0 and "trained on 'hopper'" in out.stderr


def save_video(*args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "save_video.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_task_comes_from_the_policy_and_each_file_is_announced(tmp_path):
    random_policy(tmp_path / "pol", T.make("hopper"))
    out = save_video("--policy", tmp_path / "pol", "--episodes", "2", "--max_steps", "3", "--width", "64",
                     "--height", "48", "--video_dir", tmp_path / "vid", "--no_progress")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [l for l in out.stdout.splitlines() if l.startswith("wrote ")]
    assert [l.split(":")[0] for l in lines] == [f"wrote {tmp_path / 'vid' / f'hopper_episode{k}.mp4'}" for k in (0, 1)]
    import imageio.v3 as iio

    assert iio.imread(tmp_path / "vid" / "hopper_episode1.mp4").shape[1:] == (48, 64, 3)
    assert not list((tmp_path / "vid").glob(".*tmp*")), "no temporary file may be left behind"


def test_the_original_checkpoint_layout_means_the_task_policy(tmp_path):
    """`--restore_path ./weights/Ant/policy.ckpt` (the original README) is bremen's weights/ant/."""
    random_policy(tmp_path / "weights" / "ant", T.make("ant"))
    out = save_video("--env", "ant", "--param_path", "configs/params_ant_offline.json", "--video_dir", "vids",
                     "--restore_path", "./weights/Ant/policy.ckpt", "--restore_policy_variables", "--n_train", "50000",
                     "--episodes", "1", "--max_steps", "2", "--no_progress", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "weights/ant" in out.stderr and (tmp_path / "vids" / "ant_episode0.mp4").is_file()
    out = save_video("--restore_path", "./weights/Hopper/policy.ckpt", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "weights/hopper" in out.stderr and "ant" not in out.stderr


def test_help_lists_the_video_options_only():
    out = save_video("--help")
    assert out.returncode == 0
    for shown in ("--policy", "--episodes", "--width", "--height", "--quality", "--video_dir"):
        assert shown in out.stdout
    for hidden in ("--onpol_iters", "--trpo_batch_size", "--ensemble_model_count", "--member_mode"):
        assert hidden not in out.stdout


@pytest.mark.parametrize("where", ["/proc/bremen_vids", "FILE/vids"])
def test_unwritable_video_dir_is_one_line_before_any_rendering(where, tmp_path):
    random_policy(tmp_path / "pol", T.make("hopper"))
    (tmp_path / "FILE").write_text("a regular file")
    where = where.replace("FILE", str(tmp_path / "FILE"))
    out = save_video("--policy", tmp_path / "pol", "--video_dir", where)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.count("\n") == 1 and "--video_dir" in out.stderr and "recording" not in out.stderr
