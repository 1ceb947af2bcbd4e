"""Videos keep the robot in the picture for a whole episode, on every built-in task."""

import numpy as np
import pytest

import bremen.tasks as T
from bremen.io.policy_io import load_policy
from bremen.evaluation import EVAL_STREAM, derived_seed
from bremen.tasks.rendering import camera_for

TASKS = ["half_cheetah", "hopper", "walker2d", "ant", "cheetah_run"]
MIN_ROBOT_FRACTION = 0.005  # of the pixels; the robots cover 2-11 % of a 160x120 frame in view


def robot_fractions_over_an_episode(name: str, swap_camera=None) -> dict:
    """Run the shipped policy for the longest of ``save_video.py``'s first five episodes; the robot's pixel
    fraction at its first, middle and last step and at every 100th step, and how far the torso went."""
    task = T.make(name)
    policy = load_policy(f"weights/{name}")
    env = task.make_env()
    camera = camera_for(env, 160, 120)
    base = env.unwrapped
    physics = getattr(getattr(base, "_env", None), "physics", None)
    snapshot = (lambda: physics.get_state().copy()) if physics is not None else (lambda: base.sim_state)
    torso = ((lambda: physics.named.data.subtree_com["torso"][:2].copy()) if physics is not None
             else (lambda: base._env.data.subtree_com[1][:2].copy()))
    states, travelled = [], 0.0
    for k in range(5):
        obs, _ = env.reset(seed=derived_seed(0, EVAL_STREAM, 10_000, k))
        episode, start, done = [snapshot()], torso(), False
        while not done:
            obs, _, term, trunc, _ = env.step(policy.act(obs))
            episode.append(snapshot())
            done = term or trunc
        if len(episode) > len(states):
            states, travelled = episode, float(np.linalg.norm(torso() - start))
    if swap_camera is not None:
        env.reset(seed=derived_seed(0, EVAL_STREAM, 10_000, 0))
        swap_camera(camera)
    fractions, floor = {}, {}
    checks = [("first", 0), ("middle", len(states) // 2), ("last", len(states) - 1)]
    checks += [(f"step{i}", i) for i in range(100, len(states), 100)]
    for label, i in checks:
        if physics is not None:
            with physics.reset_context():
                physics.set_state(states[i])
        else:
            base._env.set_state(*states[i])
        bodies = camera.body_ids()
        fractions[label] = float(np.mean(bodies > 0))
        floor[label] = float(np.mean(bodies == 0))
    camera.close()
    env.close()
    return {"steps": len(states) - 1, "travelled": travelled, "fractions": fractions, "floor": floor}


@pytest.mark.parametrize("name", TASKS)
def test_robot_stays_in_view_from_first_to_last_frame(name):
    f = robot_fractions_over_an_episode(name)
    assert f["steps"] >= 500 and f["travelled"] > 5.0, f"the shipped {name} policy should go places ({f})"
    for label, fraction in f["fractions"].items():
        assert fraction > MIN_ROBOT_FRACTION, f"{name}: robot out of view in the {label} frame ({f})"
        assert f["floor"][label] > 0.05, f"{name}: the floor is gone in the {label} frame ({f})"


@pytest.mark.parametrize("name", ["hopper", "half_cheetah"])
def test_a_camera_that_stays_put_loses_the_robot(name):
    """The check above can fail: MuJoCo's free camera where the episode starts (gymnasium's rgb_array view)
    sees the robot at the first frame and has lost it by the middle of the episode."""
    import mujoco

    def fixed(camera):
        cam = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(camera._model, cam)
        cam.lookat[:] = camera._data.subtree_com[1]  # the torso's subtree at the reset state
        cam.distance, cam.azimuth, cam.elevation = 4.0, 90.0, -20.0
        camera._camera = cam

    f = robot_fractions_over_an_episode(name, swap_camera=fixed)["fractions"]
    assert f["first"] > MIN_ROBOT_FRACTION
    assert f["middle"] < MIN_ROBOT_FRACTION and f["last"] < MIN_ROBOT_FRACTION, f


def test_render_returns_frames_of_the_requested_size():
    env = T.make("hopper").make_env()
    env.reset(seed=0)
    cam = camera_for(env, 96, 64, quality="high")
    frame = cam.frame()
    assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8 and frame.std() > 5
    assert env.render().shape == (480, 480, 3)
    cam.close()
    env.close()
