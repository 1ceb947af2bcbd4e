"""Importers (D4RL, Minari, BRAC), format detection, `bremen dataset convert` and the d3rlpy export contract."""

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import bremen.data.importers as importers
from bremen.cli import main
from bremen.data import (KEYS, Dataset, detect_format, export_d3rlpy, import_brac, import_d4rl, import_minari,
                         load_dataset, save_dataset)
from bremen.data import tf_checkpoint
from bremen.errors import UserError

BRAC_DIR = os.path.join(os.path.dirname(__file__), "fixtures", "data", "brac_small")


def walk(rng, length, obs_dim=3):
    return np.cumsum(rng.normal(size=(length, obs_dim)), axis=0)


# ---------------------------------------------------------------- D4RL


def write_d4rl(path, n=12, next_obs=True, timeouts=True, both_at=None):
    """A D4RL-style file with every quirk: float64, [N, 1] columns, infos/ and metadata/ groups."""
    rng = np.random.default_rng(0)
    obs = walk(rng, n + 1)
    term = np.zeros(n, bool)
    term[3] = True
    tout = np.zeros(n, bool)
    tout[8] = True
    if both_at is not None:
        term[both_at] = tout[both_at] = True
    with h5py.File(path, "w") as f:
        f["observations"] = obs[:-1]  # float64
        if next_obs:
            f["next_observations"] = obs[1:]
        f["actions"] = rng.uniform(-1, 1, (n, 2))
        f["rewards"] = rng.normal(size=(n, 1))
        f["terminals"] = term[:, None].astype(np.float32)
        if timeouts:
            f["timeouts"] = tout
        f["infos/qpos"] = rng.normal(size=(n, 4))
        f["infos/action_log_probs"] = rng.normal(size=n)
        f["metadata/algorithm"] = np.bytes_("SAC")
        f["metadata/iteration"] = np.int64(750)
        f["metadata/policy/nonlinearity"] = np.bytes_("relu")
        f["metadata/policy/fc0/weight"] = rng.normal(size=(3, 4))
    with h5py.File(path) as f:
        return {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset)}


def test_d4rl_quirks_are_normalized(tmp_path):
    raw = write_d4rl(tmp_path / "d.hdf5", both_at=6)
    ds = import_d4rl(tmp_path / "d.hdf5")
    for k in ("observations", "actions", "next_observations", "rewards"):
        assert ds.arrays()[k].dtype == np.float32
    np.testing.assert_array_equal(ds.observations, raw["observations"].astype(np.float32))
    np.testing.assert_array_equal(ds.rewards, raw["rewards"][:, 0].astype(np.float32))
    assert ds.rewards.shape == (12,) and ds.terminals.dtype == bool
    assert np.flatnonzero(ds.terminals).tolist() == [3, 6]  # both flags on row 6: the terminal wins
    assert np.flatnonzero(ds.timeouts).tolist() == [8]
    np.testing.assert_array_equal(ds.episode_ends(), [3, 6, 8, 11])
    meta = ds.metadata
    assert meta["both_flags_rows"] == 1 and meta["source_format"] == "d4rl" and meta["source"] == "d.hdf5"
    assert meta["source_metadata/algorithm"] == "SAC" and meta["source_metadata/iteration"] == 750
    assert meta["source_metadata/policy/nonlinearity"] == "relu"
    assert not any("weight" in k or "infos" in k for k in meta)
    assert "timeouts_inferred_horizon" not in meta and "dropped_episode_end_rows" not in meta


def test_d4rl_without_next_observations_drops_episode_ends(tmp_path):
    raw = write_d4rl(tmp_path / "d.hdf5", next_obs=False)
    ds = import_d4rl(tmp_path / "d.hdf5")
    # episodes are rows 0-3 (terminal), 4-8 (timeout), 9-11 (end of data); their last rows have no next obs
    keep = [0, 1, 2, 4, 5, 6, 7, 9, 10]
    np.testing.assert_array_equal(ds.observations, raw["observations"][keep].astype(np.float32))
    np.testing.assert_array_equal(ds.next_observations, raw["observations"][np.add(keep, 1)].astype(np.float32))
    np.testing.assert_array_equal(ds.actions, raw["actions"][keep].astype(np.float32))
    assert not ds.terminals.any()
    assert np.flatnonzero(ds.timeouts).tolist() == [2, 6, 8]
    assert ds.metadata["dropped_episode_end_rows"] == 3


def test_d4rl_v0_timeouts_are_inferred_from_a_step_counter(tmp_path):
    n = 2500
    rng = np.random.default_rng(0)
    term = np.zeros(n, bool)
    term[1200] = True
    with h5py.File(tmp_path / "v0.hdf5", "w") as f:
        f["observations"] = rng.normal(size=(n, 3)).astype(np.float32)
        f["actions"] = rng.normal(size=(n, 2)).astype(np.float32)
        f["rewards"] = rng.normal(size=n).astype(np.float32)
        f["terminals"] = term
    ds = import_d4rl(tmp_path / "v0.hdf5")
    # a 1000-step counter restarting after each end: timeouts at rows 999 and 2200 (1000 steps after 1200)
    ends = [999, 1200, 2200]
    assert ds.metadata["timeouts_inferred_horizon"] == 1000 and ds.metadata["dropped_episode_end_rows"] == 4
    kept_rows = np.setdiff1d(np.arange(n), ends + [n - 1])
    assert len(ds) == len(kept_rows)
    assert np.flatnonzero(ds.timeouts).tolist() == [int(np.searchsorted(kept_rows, e)) - 1 for e in ends + [n - 1]]
    short = importers.infer_timeouts(np.array([0, 0, 0, 1, 0, 0, 0, 0, 0], bool), horizon=3)
    assert np.flatnonzero(short).tolist() == [2, 6]
    with pytest.raises(UserError, match="give --horizon >= 1"):
        import_d4rl(tmp_path / "v0.hdf5", horizon=0)


def test_d4rl_errors_name_the_file(tmp_path):
    path = tmp_path / "d.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((3, 2))
        f["actions"] = np.zeros((3, 1))
    with pytest.raises(UserError, match=f"^{re.escape(str(path))}: missing key 'rewards' \\(found: actions, observations\\)"):
        import_d4rl(path)
    write_d4rl(path)
    with pytest.raises(UserError, match="do not match task 'hopper'"):
        import_d4rl(path, task="hopper")


# ---------------------------------------------------------------- Minari


def write_minari(root, episodes, obs_space=None, data_format="hdf5"):
    """The documented Minari HDF5 layout: data/metadata.json and data/main_data.hdf5 with episode_<id> groups."""
    data = root / "data"
    data.mkdir(parents=True)
    meta = {
        "dataset_id": "test/toy/simple-v0", "total_episodes": len(episodes), "data_format": data_format,
        "observation_space": json.dumps(obs_space or {"type": "Box", "dtype": "float32", "shape": [3]}),
        "action_space": json.dumps({"type": "Box", "dtype": "float32", "shape": [2]}),
        "env_spec": json.dumps({"id": "Toy-v0", "max_episode_steps": 5}), "ref_min_score": -1.5,
    }
    (data / "metadata.json").write_text(json.dumps(meta))
    with h5py.File(data / "main_data.hdf5", "w") as f:
        for i, ep in reversed(list(enumerate(episodes))):  # group order must not matter
            g = f.create_group(f"episode_{i}")
            for k, v in ep.items():
                g[k] = v
            g.create_group("infos")
    return str(root)


def toy_episodes():
    rng = np.random.default_rng(1)
    out = []
    for steps, term_at, trunc_at in ((4, 3, None), (5, None, 4), (3, 2, 2)):  # the last one has both flags
        term, trunc = np.zeros(steps, bool), np.zeros(steps, bool)
        if term_at is not None:
            term[term_at] = True
        if trunc_at is not None:
            trunc[trunc_at] = True
        out.append({"observations": walk(rng, steps + 1).astype(np.float32),
                    "actions": rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
                    "rewards": rng.normal(size=steps), "terminations": term, "truncations": trunc})
    return out


def test_minari_layout_is_read_without_minari(tmp_path):
    eps = toy_episodes()
    path = write_minari(tmp_path / "simple-v0", eps)
    for given in (path, os.path.join(path, "data"), os.path.join(path, "data", "main_data.hdf5")):
        ds = import_minari(given)
        np.testing.assert_array_equal(ds.observations, np.concatenate([e["observations"][:-1] for e in eps]))
        np.testing.assert_array_equal(ds.next_observations, np.concatenate([e["observations"][1:] for e in eps]))
        np.testing.assert_array_equal(ds.rewards, np.concatenate([e["rewards"] for e in eps]).astype(np.float32))
        assert np.flatnonzero(ds.terminals).tolist() == [3, 11]  # the step with both flags is a terminal
        assert np.flatnonzero(ds.timeouts).tolist() == [8]
    assert ds.metadata["task"] == "Toy-v0" and ds.metadata["source"] == "test/toy/simple-v0"
    assert ds.metadata["source_format"] == "minari" and ds.metadata["source_metadata/ref_min_score"] == -1.5
    assert detect_format(path) == "minari"


def test_minari_dataset_id_resolves_under_minari_datasets_path(tmp_path, monkeypatch):
    write_minari(tmp_path / "test" / "toy" / "simple-v0", toy_episodes())
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    assert len(import_minari("test/toy/simple-v0")) == 12
    with pytest.raises(UserError, match="no such file, folder or Minari dataset id"):
        import_minari("test/toy/other-v0")


@pytest.mark.parametrize("space, fmt, phrase", [
    ({"type": "Dict", "subspaces": {}}, "hdf5", "observation space is Dict, unsupported"),
    ({"type": "Tuple", "subspaces": []}, "hdf5", "observation space is Tuple, unsupported"),
    ({"type": "Box", "dtype": "uint8", "shape": [8, 8, 3]}, "hdf5", "Box of shape (8, 8, 3), unsupported"),
    (None, "zarr", "Minari data format 'zarr' is unsupported"),
])
def test_minari_unsupported_layouts_are_user_errors(tmp_path, space, fmt, phrase):
    path = write_minari(tmp_path / "x-v0", toy_episodes(), obs_space=space, data_format=fmt)
    with pytest.raises(UserError, match=f"^{re.escape(os.path.join(path, 'data'))}: .*{re.escape(phrase)}"):
        import_minari(path)


def test_minari_arrow_backend_without_pyarrow_is_a_user_error(tmp_path, monkeypatch):
    path = write_minari(tmp_path / "x-v0", toy_episodes(), data_format="arrow")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.dataset", None)
    with pytest.raises(UserError, match="uses the arrow backend, which needs pyarrow \\(not installed\\): pip install"):
        import_minari(path)


@pytest.mark.parametrize("backend", ["hdf5", "arrow", "parquet"])
def test_minari_real_dataset_from_minari_data_collector(tmp_path, monkeypatch, backend):
    minari = pytest.importorskip("minari")
    if backend != "hdf5":
        pytest.importorskip("pyarrow")
    import gymnasium as gym

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    env = minari.DataCollector(gym.make("Hopper-v5", max_episode_steps=25), record_infos=False, data_format=backend)
    env.action_space.seed(0)
    for ep in range(5):
        env.reset(seed=ep)
        for _ in range(12 if ep == 2 else 100):  # episode 2 is cut by the next reset
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minari asks for an author, a description, a code permalink
        env.create_dataset(dataset_id="test/hopper/random-v0", algorithm_name="random")
    env.close()
    episodes = list(minari.load_dataset("test/hopper/random-v0").iterate_episodes())
    assert any(e.terminations[-1] for e in episodes) and any(e.truncations[-1] for e in episodes)

    ds = import_minari(os.path.join(tmp_path, "test", "hopper", "random-v0"))
    assert ds.metadata["task"] == "Hopper-v5" and ds.metadata["source"] == "test/hopper/random-v0"
    assert len(ds.episodes()) == len(episodes)
    for sl, e in zip(ds.episodes(), episodes):
        np.testing.assert_array_equal(ds.observations[sl], e.observations[:-1].astype(np.float32))
        np.testing.assert_array_equal(ds.next_observations[sl], e.observations[1:].astype(np.float32))
        np.testing.assert_array_equal(ds.actions[sl], e.actions.astype(np.float32))
        np.testing.assert_array_equal(ds.rewards[sl], e.rewards.astype(np.float32))
        np.testing.assert_array_equal(ds.terminals[sl], e.terminations)
        np.testing.assert_array_equal(ds.timeouts[sl], e.truncations & ~e.terminations)
    assert import_minari("test/hopper/random-v0", task="hopper").metadata["task"] == "hopper"


# ---------------------------------------------------------------- BRAC


def test_brac_checkpoint_rebuilds_transitions_and_episodes():
    expected = np.load(os.path.join(BRAC_DIR, "expected.npz"))
    for given in (BRAC_DIR, os.path.join(BRAC_DIR, "data"), os.path.join(BRAC_DIR, "data.index")):
        ds = import_brac(given)
        for k in KEYS:
            np.testing.assert_array_equal(ds.arrays()[k], expected[k], err_msg=k)
    assert ds.episodes() == [slice(0, 4), slice(4, 9), slice(9, 12)]
    assert ds.metadata["brac_current_size"] == 12 and ds.metadata["brac_capacity"] == 16
    assert ds.metadata["source_format"] == "brac"
    assert detect_format(BRAC_DIR) == "brac" and detect_format(os.path.join(BRAC_DIR, "data")) == "brac"


def test_tensor_bundle_reads_every_variable():
    bundle = tf_checkpoint.TensorBundle(os.path.join(BRAC_DIR, "data"))
    assert {k for k in bundle.entries if k.startswith("data/")} == {
        f"data/{v}/.ATTRIBUTES/VARIABLE_VALUE"
        for v in ("_s1", "_s2", "_a1", "_a2", "_reward", "_discount", "_current_size", "_current_idx", "_capacity")}
    s1 = bundle.read("data/_s1/.ATTRIBUTES/VARIABLE_VALUE")
    assert s1.shape == (16, 3) and s1.dtype == np.float32 and not s1[12:].any()
    assert bundle.read("data/_capacity/.ATTRIBUTES/VARIABLE_VALUE").dtype == np.int32
    with pytest.raises(tf_checkpoint.Unsupported, match="dtype 7"):
        bundle.read("_CHECKPOINTABLE_OBJECT_GRAPH")  # a string tensor


def test_brac_damaged_or_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no checkpoint index"):
        import_brac(tmp_path)
    shutil.copytree(BRAC_DIR, tmp_path / "cut")
    index = tmp_path / "cut" / "data.index"
    index.write_bytes(index.read_bytes()[:-20])
    with pytest.raises(UserError, match="not a readable TensorFlow checkpoint"):
        import_brac(tmp_path / "cut")
    shutil.copytree(BRAC_DIR, tmp_path / "short")
    shard = tmp_path / "short" / "data.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:300])
    with pytest.raises(UserError, match="truncated"):
        import_brac(tmp_path / "short")


def test_unsupported_checkpoint_without_tensorflow_asks_for_the_extra(monkeypatch):
    def unsupported(self, name):
        raise tf_checkpoint.Unsupported("compressed index block (type 1)")

    monkeypatch.setattr(tf_checkpoint.TensorBundle, "read", unsupported)
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow fails
    with pytest.raises(UserError, match=r"install the brac extra: pip install 'bremen\[brac\]'"):
        import_brac(BRAC_DIR)


def test_unsupported_checkpoint_falls_back_to_tensorflow(monkeypatch):
    pytest.importorskip("tensorflow")
    expected = import_brac(BRAC_DIR)

    def unsupported(self, name):
        raise tf_checkpoint.Unsupported("forced")

    monkeypatch.setattr(tf_checkpoint.TensorBundle, "read", unsupported)
    ds = import_brac(BRAC_DIR)
    for k in KEYS:
        np.testing.assert_array_equal(ds.arrays()[k], expected.arrays()[k])


# ---------------------------------------------------------------- d3rlpy export


def d3rlpy_transitions(observations, actions, rewards, terminals, timeouts):
    """What d3rlpy 2.x builds from these arrays (EpisodeGenerator + BasicTransitionPicker):
    episodes cut after each flag, the next observation is the next row, a terminated episode's last row gets a
    zero next observation, a timed-out episode's last row is no transition. Rows after the last flag are lost."""
    assert not np.any(np.logical_and(terminals, timeouts)) and (terminals.sum() + timeouts.sum()) > 0
    out, start = [], 0
    for i in range(len(terminals)):
        if terminals[i] or timeouts[i]:
            end = i + 1
            count = end - start if terminals[i] else end - start - 1
            for t in range(start, start + count):
                last_terminal = bool(terminals[i]) and t == end - 1
                nxt = np.zeros_like(observations[t]) if last_terminal else observations[t + 1]
                out.append((observations[t], actions[t], rewards[t], nxt, float(last_terminal)))
            start = end
    assert start == len(terminals), "rows after the last flag would be dropped"
    return out


def test_d3rlpy_export_yields_exactly_the_dataset_transitions(tmp_path):
    rng = np.random.default_rng(0)
    obs = walk(rng, 15).astype(np.float32)
    next_obs = obs[1:].copy()
    next_obs[9] = 99.0  # a row whose successor does not continue it (e.g. after a uniform subsample)
    ds = Dataset.from_arrays({
        "observations": obs[:-1], "next_observations": next_obs, "actions": rng.normal(size=(14, 2)),
        "rewards": rng.normal(size=14), "terminals": np.isin(np.arange(14), [3]),
        "timeouts": np.isin(np.arange(14), [6])})  # ends: 3 terminal, 6 timeout, 9 cut, 13 end of data
    path = tmp_path / "out.npz"
    export_d3rlpy(ds, path)
    assert os.listdir(tmp_path) == ["out.npz"]
    arrays = dict(np.load(path))
    assert sorted(arrays) == ["actions", "observations", "rewards", "terminals", "timeouts"]
    assert len(arrays["observations"]) == 14 + 3  # one extra row after each episode that was cut
    assert arrays["observations"].dtype == np.float32 and arrays["terminals"].dtype == bool
    got = d3rlpy_transitions(**arrays)
    assert len(got) == len(ds)
    for t, (o, a, r, n, term) in enumerate(got):
        np.testing.assert_array_equal(o, ds.observations[t])
        np.testing.assert_array_equal(a, ds.actions[t])
        assert r == ds.rewards[t] and term == float(ds.terminals[t])
        np.testing.assert_array_equal(n, np.zeros(3) if ds.terminals[t] else ds.next_observations[t])


# ---------------------------------------------------------------- bremen dataset convert


def test_convert_detects_formats_and_refuses_to_overwrite(tmp_path, capsys):
    write_d4rl(tmp_path / "d4rl.hdf5", both_at=6)
    out = tmp_path / "out.h5"
    assert main(["dataset", "convert", str(tmp_path / "d4rl.hdf5"), str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} (bremen): 12 transitions, 4 episodes")
    first = out.read_bytes()
    assert detect_format(out) == "bremen"
    assert main(["dataset", "convert", BRAC_DIR, str(out)]) == 2
    assert capsys.readouterr().err == (f"bremen: error: {out}: already exists; pass --force to overwrite it or "
                                       f"choose another name\n")
    assert out.read_bytes() == first
    assert main(["dataset", "convert", BRAC_DIR, str(out), "--force"]) == 0
    assert load_dataset(out).metadata["source_format"] == "brac"
    npz = tmp_path / "out.npz"
    assert main(["dataset", "convert", str(out), str(npz), "--to", "d3rlpy"]) == 0
    assert len(np.load(npz)["observations"]) == 12 + 2  # two episodes of the BRAC fixture end in a cut


def test_convert_with_wrong_task_writes_nothing(tmp_path, capsys):
    write_d4rl(tmp_path / "d4rl.hdf5")
    assert main(["dataset", "convert", str(tmp_path / "d4rl.hdf5"), str(tmp_path / "o.h5"), "--task", "ant"]) == 2
    assert "do not match task 'ant' (obs_dim 27, act_dim 8)" in capsys.readouterr().err
    assert not (tmp_path / "o.h5").exists()
    assert main(["dataset", "convert", str(tmp_path / "nothing.hdf5"), str(tmp_path / "o.h5")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_repairing_a_file_with_both_flags_through_the_d4rl_importer(tmp_path):
    write_d4rl(tmp_path / "src.hdf5")
    good = import_d4rl(tmp_path / "src.hdf5")
    good.timeouts[3] = True  # row 3 is terminal: now both
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        for k, a in good.arrays().items():
            f[k] = a
        f.attrs["task"] = "x"
    with pytest.raises(UserError, match="both"):
        load_dataset(tmp_path / "bad.h5")
    fixed = import_d4rl(tmp_path / "bad.h5")
    save_dataset(fixed, tmp_path / "fixed.h5")
    back = load_dataset(tmp_path / "fixed.h5")
    assert back.terminals[3] and not back.timeouts[3] and back.metadata["task"] == "x"


def d4rl_from(ds, path):
    """A D4RL-layout copy of a bremen dataset: float64 arrays, [N, 1] columns, an infos/ group, no
    next_observations and no timeouts (a v0 file)."""
    term = ds.terminals.copy()
    with h5py.File(path, "w") as f:
        f["observations"] = ds.observations.astype(np.float64)
        f["actions"] = ds.actions.astype(np.float64)
        f["rewards"] = ds.rewards.astype(np.float64)[:, None]
        f["terminals"] = term[:, None]
        f["infos/qpos"] = np.zeros((len(ds), 2))
        f["metadata/algorithm"] = np.bytes_("SAC")


def test_a_d4rl_file_is_read_directly_by_offline_and_dataset_info(hopper_data, tmp_path):
    ds = load_dataset(hopper_data)
    d4rl_from(ds, tmp_path / "hopper-d4rl.hdf5")
    info = subprocess.run([sys.executable, "-m", "bremen.cli", "dataset", "info", str(tmp_path / "hopper-d4rl.hdf5"),
                           "--task", "hopper"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "read as a d4rl file" in info.stderr and "actions, observations, rewards cast to float32" in info.stderr
    assert "no next_observations" in info.stderr and "source_format: d4rl" in info.stdout
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "offline.py"), "--env", "hopper", "--preset", "smoke", "--seed",
                          "0", "--data_path", str(tmp_path / "hopper-d4rl.hdf5"), "--log_dir", str(tmp_path / "run"),
                          "--algorithm", "bc"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "read as a d4rl file" in out.stderr and "bremen dataset convert" in out.stderr
    assert (tmp_path / "run" / "summary.json").is_file()
