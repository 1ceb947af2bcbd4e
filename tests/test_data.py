"""The dataset format: round trip, atomic writes, validation (through the CLI), episodes, subsample, split."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest

import bremen.data.dataset as dataset_mod
from bremen.cli import main
from bremen.data import KEYS, Dataset, concat, load_dataset, save_dataset
from bremen.errors import UserError


def make_ds(lengths, ends, obs_dim=3, act_dim=2, seed=0, metadata=None):
    """Episodes of the given lengths, each a continuous random walk; ends[i] is 'terminal', 'timeout' or None."""
    rng = np.random.default_rng(seed)
    parts = {k: [] for k in KEYS}
    for length, end in zip(lengths, ends):
        obs = np.cumsum(rng.normal(size=(length + 1, obs_dim)), axis=0).astype(np.float32)
        last = np.arange(length) == length - 1
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(rng.uniform(-1, 1, (length, act_dim)).astype(np.float32))
        parts["rewards"].append(rng.normal(size=length).astype(np.float32))
        parts["terminals"].append(last & (end == "terminal"))
        parts["timeouts"].append(last & (end == "timeout"))
    return Dataset(**{k: np.concatenate(v) for k, v in parts.items()}, metadata=dict(metadata or {}))


def rows_of(sub: Dataset, full: Dataset) -> np.ndarray:
    """Source row index of every row of ``sub`` (observations are unique in these random walks)."""
    index = {row.tobytes(): i for i, row in enumerate(full.observations)}
    return np.array([index[row.tobytes()] for row in sub.observations])


def assert_consistent(ds: Dataset):
    """No row is both terminal and timeout; within an episode the next row continues the transition."""
    assert not np.any(ds.terminals & ds.timeouts)
    for ep in ds.episodes():
        np.testing.assert_array_equal(ds.next_observations[ep][:-1], ds.observations[ep][1:])


@pytest.fixture
def ds():
    return make_ds([5, 7, 4, 6], ["terminal", "timeout", "terminal", None],
                   metadata={"task": "hopper", "source_policy": "sac", "policy_return": 1234.5, "noise": "eps1",
                             "seed": 3})


# ---------------------------------------------------------------- round trip and atomic write


def test_round_trip_keeps_every_array_and_metadata(tmp_path, ds):
    ds.metadata.update({"nested": {"a": [1, 2.5, None], "b": "x"}, "flag": True, "nothing": None,
                        "source_metadata/algorithm": "SAC", "np_scalar": np.float32(0.5), "weights": [0.2, 0.8]})
    path = tmp_path / "d.h5"
    save_dataset(ds, path)
    back = load_dataset(path)
    for k in KEYS:
        assert back.arrays()[k].dtype == ds.arrays()[k].dtype
        np.testing.assert_array_equal(back.arrays()[k], ds.arrays()[k])
    assert back.metadata.pop("bremen_version") == "0.1.0"
    created = back.metadata.pop("created")
    assert created.endswith("+00:00") and created[:4].isdigit()
    assert back.metadata == {**ds.metadata, "np_scalar": 0.5}
    with h5py.File(path) as f:  # exactly the D4RL keys, readable by any h5py user
        assert sorted(f.keys()) == sorted(KEYS)
        assert f.attrs["task"] == "hopper" and f.attrs["policy_return"] == 1234.5


def test_save_keeps_given_version_and_created(tmp_path, ds):
    ds.metadata.update({"bremen_version": "0.0.9", "created": "2020-01-01T00:00:00+00:00"})
    save_dataset(ds, tmp_path / "d.h5")
    back = load_dataset(tmp_path / "d.h5")
    assert back.metadata["bremen_version"] == "0.0.9" and back.metadata["created"].startswith("2020")


@pytest.mark.parametrize("existing", [False, True])
def test_failed_write_leaves_destination_untouched(tmp_path, ds, monkeypatch, existing):
    path = tmp_path / "d.h5"
    if existing:
        path.write_bytes(b"previous contents")

    def crash(f, metadata):  # the arrays are already in the file when this runs
        assert len(f.keys()) == len(KEYS)
        raise RuntimeError("disk full")

    monkeypatch.setattr(dataset_mod, "write_metadata", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_dataset(ds, path)
    assert os.listdir(tmp_path) == (["d.h5"] if existing else [])  # no temporary file left behind
    if existing:
        assert path.read_bytes() == b"previous contents"


def test_save_refuses_invalid_data_and_missing_folder(tmp_path, ds):
    ds.timeouts[0] = ds.terminals[0] = True
    with pytest.raises(UserError, match="both 'terminals' and 'timeouts'"):
        save_dataset(ds, tmp_path / "d.h5")
    with pytest.raises(UserError, match="does not exist"):
        save_dataset(make_ds([3], [None]), tmp_path / "no" / "d.h5")
    assert os.listdir(tmp_path) == []


def test_unserializable_metadata_is_refused(tmp_path, ds):
    ds.metadata["bad"] = object()
    with pytest.raises(TypeError, match="bad"):
        save_dataset(ds, tmp_path / "d.h5")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- validation through the command line


def write_raw(path, **overrides):
    """A valid 10-row file, with some arrays replaced (None removes the key)."""
    good = make_ds([4, 6], ["terminal", "timeout"])
    arrays = {**good.arrays(), **overrides}
    with h5py.File(path, "w") as f:
        for k, a in arrays.items():
            if a is not None:
                f.create_dataset(k, data=a)
        f.attrs["bremen_version"] = "0.1.0"
    return str(path)


def bad_cases(tmp):
    """name -> (argv after `dataset validate`, a phrase the error must contain)."""
    good = make_ds([4, 6], ["terminal", "timeout"])
    nan_act = good.actions.copy()
    nan_act[[2, 7], 0] = np.nan
    nan_act[7, 1] = np.inf
    both = good.timeouts.copy()
    both[3] = True
    (tmp / "text.h5").write_text("observations,actions\n1,2\n")
    write_raw(tmp / "full.h5")
    data = (tmp / "full.h5").read_bytes()
    (tmp / "truncated.h5").write_bytes(data[: len(data) // 2])
    return {
        "missing_file": ([str(tmp / "nope.h5")], "no such file"),
        "folder": ([str(tmp)], "is a folder"),
        "not_hdf5": ([str(tmp / "text.h5")], "not a readable HDF5 file"),
        "truncated": ([str(tmp / "truncated.h5")], "not a readable HDF5 file"),
        "missing_key": ([write_raw(tmp / "nokey.h5", next_observations=None)], "missing key 'next_observations'"),
        "lengths": ([write_raw(tmp / "len.h5", rewards=good.rewards[:-1])], "different lengths"),
        "rank": ([write_raw(tmp / "rank.h5", rewards=good.rewards[:, None])],
                 "'rewards' has shape (10, 1), expected [N]; import"),
        "dtype": ([write_raw(tmp / "f64.h5", observations=good.observations.astype(np.float64))],
                  "'observations' has dtype float64"),
        "next_obs_dims": ([write_raw(tmp / "dims.h5", next_observations=good.next_observations[:, :2])],
                          "observations have 3 dims but next_observations 2"),
        "non_finite": ([write_raw(tmp / "nan.h5", actions=nan_act)], "in 2 rows, first at row 2"),
        "task_dims": ([write_raw(tmp / "task.h5"), "--task", "hopper"],
                      "do not match task 'hopper' (obs_dim 11, act_dim 3)"),
        "both_flags": ([write_raw(tmp / "both.h5", timeouts=both)],
                       "1 row has both 'terminals' and 'timeouts' set, first at row 3"),
        "empty": ([write_raw(tmp / "empty.h5", **{k: v[:0] for k, v in good.arrays().items()})], "empty"),
    }


@pytest.fixture(scope="module")
def validate_runs(tmp_path_factory):
    """Run `bremen dataset validate` on every bad case, one process each, as many at a time as there are cores."""
    tmp = tmp_path_factory.mktemp("bad")
    cases = bad_cases(tmp)

    def run(name):
        p = subprocess.run([sys.executable, "-m", "bremen.cli", "dataset", "validate", *cases[name][0]],
                           capture_output=True, text=True, timeout=120)
        return name, (cases[name], (p.stdout, p.stderr), p.returncode)

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        return dict(pool.map(run, cases))


@pytest.mark.parametrize("name", [
    "missing_file", "folder", "not_hdf5", "truncated", "missing_key", "lengths", "rank", "dtype", "next_obs_dims",
    "non_finite", "task_dims", "both_flags", "empty"])
def test_validate_reports_one_line_naming_the_file(validate_runs, name):
    ((argv, phrase), (out, err), rc) = validate_runs[name]
    assert rc == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"bremen: error: {argv[0]}: "), lines[0]
    assert phrase in lines[0], lines[0]
    assert "Traceback" not in err


def test_validate_and_info_on_a_good_file(tmp_path, ds, capsys):
    path = str(tmp_path / "d.h5")
    save_dataset(ds, path)
    assert main(["dataset", "validate", path, "--task", "hopper"]) == 2  # 3-dim observations, not hopper's 11
    capsys.readouterr()
    assert main(["dataset", "validate", path]) == 0
    out = capsys.readouterr().out
    assert out == (f"OK: {path}: 22 transitions, 4 episodes (2 terminals, 1 timeouts), obs_dim 3, act_dim 2, "
                   f"task hopper\n")
    assert main(["dataset", "info", path]) == 0
    info = capsys.readouterr().out
    returns = ds.episode_returns()
    assert "transitions:   22" in info and "episodes:      4 (length mean 5.5, min 4, max 7)" in info
    assert f"mean {returns.mean():.2f}, min {returns.min():.2f}, max {returns.max():.2f}" in info
    assert "  source_policy: sac" in info and "  policy_return: 1234.5" in info


# ---------------------------------------------------------------- episodes


def test_episodes_end_at_flags_and_at_the_last_row(ds):
    np.testing.assert_array_equal(ds.episode_ends(), [4, 11, 15, 21])
    assert ds.episodes() == [slice(0, 5), slice(5, 12), slice(12, 16), slice(16, 22)]
    np.testing.assert_allclose(ds.episode_returns(), [ds.rewards[s].sum() for s in ds.episodes()], rtol=1e-6)
    assert len(ds) == 22 and ds.obs_dim == 3 and ds.act_dim == 2
    assert_consistent(ds)


def test_from_arrays_casts_and_validates():
    good = make_ds([3], ["terminal"])
    arrays = {**good.arrays(), "observations": good.observations.astype(np.float64),
              "terminals": good.terminals.astype(np.float32)}
    ds = Dataset.from_arrays(arrays, {"task": "x"}, "mine")
    assert ds.observations.dtype == np.float32 and ds.terminals.dtype == bool and ds.metadata == {"task": "x"}
    with pytest.raises(UserError, match="^mine: missing timeouts"):
        Dataset.from_arrays({k: v for k, v in good.arrays().items() if k != "timeouts"}, source="mine")


# ---------------------------------------------------------------- subsample


def test_prefix_takes_the_first_rows_and_cuts_the_episode(ds):
    sub = ds.subsample(8)  # row 7 is inside the second episode
    np.testing.assert_array_equal(sub.observations, ds.observations[:8])
    np.testing.assert_array_equal(sub.terminals, ds.terminals[:8])
    assert sub.timeouts.tolist() == [False] * 7 + [True]
    assert sub.metadata["subsample"] == {"n": 8, "mode": "prefix", "seed": 0, "of": 22}
    assert sub.metadata["task"] == "hopper"
    exact = ds.subsample(5)  # ends on the terminal: nothing to cut
    assert exact.terminals[-1] and not exact.timeouts.any()
    everything = ds.subsample(100)
    for k in KEYS:
        np.testing.assert_array_equal(everything.arrays()[k], ds.arrays()[k])


def test_uniform_draws_distinct_rows_in_order(ds):
    sub = ds.subsample(9, "uniform", seed=1)
    rows = rows_of(sub, ds)
    assert len(rows) == 9 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(sub.actions, ds.actions[rows])
    np.testing.assert_array_equal(sub.terminals, ds.terminals[rows])
    # a row ends an episode exactly when it did in the source or its source successor was not drawn
    source_end = ds.terminals | ds.timeouts
    source_end[-1] = True
    expected_end = source_end[rows] | np.append(rows[1:] != rows[:-1] + 1, True)
    np.testing.assert_array_equal(sub.terminals | sub.timeouts, expected_end)
    assert_consistent(sub)
    np.testing.assert_array_equal(rows_of(ds.subsample(9, "uniform", seed=1), ds), rows)
    assert not np.array_equal(rows_of(ds.subsample(9, "uniform", seed=2), ds), rows)


def test_episodes_mode_takes_whole_episodes_until_n_rows(ds):
    episodes = [tuple(range(s.start, s.stop)) for s in ds.episodes()]
    for seed in range(6):
        sub = ds.subsample(10, "episodes", seed=seed)
        rows = rows_of(sub, ds)
        taken = [tuple(rows[s]) for s in sub.episodes()]
        assert all(ep in episodes for ep in taken)
        assert 10 <= len(sub) < 10 + max(map(len, taken))
        assert np.all(np.diff(rows) > 0)
        np.testing.assert_array_equal(sub.timeouts, ds.timeouts[rows])  # whole episodes: flags unchanged
        assert_consistent(sub)


def test_subsample_rejects_bad_arguments(ds):
    with pytest.raises(UserError, match="positive"):
        ds.subsample(0)
    with pytest.raises(UserError, match="unknown subsample mode 'stratified'"):
        ds.subsample(5, "stratified")


# ---------------------------------------------------------------- split and concat


def test_ordered_split_is_the_original_85_15(ds):
    big = make_ds([400, 350, 250], ["terminal", "timeout", None])
    train, val = big.split()
    assert (len(train), len(val)) == (850, 150)
    np.testing.assert_array_equal(train.observations, big.observations[:850])
    np.testing.assert_array_equal(val.observations, big.observations[850:])
    assert train.timeouts[-1] and train.timeouts.sum() == 2  # the cut inside the third episode
    np.testing.assert_array_equal(val.timeouts, big.timeouts[850:])
    assert train.metadata["split"] == {"part": "train", "val_fraction": 0.15, "by": "order", "seed": 0}
    assert val.metadata["split"]["part"] == "validation"


def test_episode_split_keeps_whole_episodes(ds):
    many = make_ds([5, 8, 3, 9, 4, 6, 7, 2, 5, 6], ["timeout"] * 9 + ["terminal"], seed=4)
    source = {tuple(range(s.start, s.stop)) for s in many.episodes()}
    train, val = many.split(0.25, by="episodes", seed=7)
    train_rows, val_rows = rows_of(train, many), rows_of(val, many)
    assert sorted(np.concatenate([train_rows, val_rows])) == list(range(len(many)))
    for part, rows in ((train, train_rows), (val, val_rows)):
        assert {tuple(rows[s]) for s in part.episodes()} <= source
        assert_consistent(part)
    assert len(val) >= 0.25 * len(many)
    again, _ = many.split(0.25, by="episodes", seed=7)
    np.testing.assert_array_equal(again.observations, train.observations)


def test_split_rejects_what_cannot_be_split(ds):
    with pytest.raises(UserError, match="strictly between 0 and 1"):
        ds.split(1.0)
    with pytest.raises(UserError, match="one part would be empty"):
        make_ds([10], [None]).split(0.5, by="episodes")
    with pytest.raises(UserError, match="unknown split 'random'"):
        ds.split(by="random")


def test_concat_ends_every_part_and_records_the_parts():
    a = make_ds([3, 4], ["terminal", None], metadata={"task": "hopper", "source_policy": "random"})
    b = make_ds([5], [None], seed=1, metadata={"task": "hopper", "source_policy": "sac"})
    both = concat([a, b])
    assert len(both) == 12
    np.testing.assert_array_equal(both.episode_ends(), [2, 6, 11])
    assert both.timeouts[6] and not both.terminals[6]
    assert both.metadata["task"] == "hopper" and "source_policy" not in both.metadata
    assert [p["rows"] for p in both.metadata["parts"]] == [7, 5]
    assert [p["source_policy"] for p in both.metadata["parts"]] == ["random", "sac"]
    assert_consistent(both)
    with pytest.raises(UserError, match="different"):
        concat([a, make_ds([3], [None], obs_dim=4)])


def test_next_actions_follow_the_episode_and_stand_in_at_its_ends():
    ds = make_ds([3, 2, 4], ["terminal", "timeout", None])
    nxt, stood_in = ds.next_actions()
    a = ds.actions
    # rows 0,1 -> 1,2; row 2 terminal; row 3 -> 4; row 4 timeout; rows 5,6,7 -> 6,7,8; row 8 the data's end
    for i, j in {0: 1, 1: 2, 3: 4, 5: 6, 6: 7, 7: 8}.items():
        np.testing.assert_array_equal(nxt[i], a[j])
    for i in (2, 4, 8):
        np.testing.assert_array_equal(nxt[i], a[i])
    assert stood_in == 3
    # rows taken out of order (a uniform subsample) break the chain where the next row is not the next state
    sub = ds.select(np.array([0, 2, 3, 4]))
    nxt, stood_in = sub.next_actions()
    np.testing.assert_array_equal(nxt[0], sub.actions[0])
    np.testing.assert_array_equal(nxt[2], sub.actions[3])
    assert stood_in == 3
