"""``bremen collect``: BRAC mixtures (sizes, order, per-block action rules), flags, determinism, kill-safety."""

import hashlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bremen.data.collect import NOISES, block_sizes, collect, run_collect
from bremen.data.dataset import load_dataset
from bremen.errors import UserError
from bremen.io.policy_io import NumpyPolicy, save_policy
from bremen.tasks import make

CONST = 0.5  # the test policy's action in every dimension


def constant_policy(obs_dim, act_dim, value=CONST):
    """A tanh-Gaussian policy whose samples are ``value`` (zero weights, bias atanh(value), σ = e^-20)."""
    layers = [{"w": np.zeros((obs_dim, 8), np.float32), "b": np.zeros(8, np.float32)},
              {"w": np.zeros((8, 2 * act_dim), np.float32),
               "b": np.concatenate([np.full(act_dim, np.arctanh(value)), np.zeros(act_dim)]).astype(np.float32)}]
    return NumpyPolicy("tanh_gaussian", layers, -1.0, 1.0, log_std_min=-20.0, log_std_max=-20.0,
                       metadata={"task": "hopper", "return": {"mean": 123.0, "episodes": 5}})


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pol") / "hopper_const"
    t = make("hopper")
    save_policy(d, constant_policy(t.obs_dim, t.act_dim))
    return d


def arrays_hash(ds):
    h = hashlib.sha256()
    for k, a in ds.arrays().items():
        h.update(k.encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_block_sizes_follow_brac():
    assert block_sizes(1_000_000, NOISES["eps1"]) == [200_000, 400_000, 400_000]
    assert block_sizes(1001, NOISES["gaussian3"]) == [200, 400, 401]
    assert block_sizes(7, NOISES["pure"]) == [7] and block_sizes(7, NOISES["random"]) == [7]
    assert [b.name for b in NOISES["eps3"]] == ["random", "pure", "eps0.3"]
    assert [b.name for b in NOISES["gaussian1"]] == ["random", "pure", "gaussian0.1"]


@pytest.mark.parametrize("noise, param", [("eps3", 0.3), ("gaussian3", 0.3), ("eps1", 0.1)])
def test_mixture_order_and_per_block_actions(noise, param):
    task = make("hopper")
    ds = collect(task, noise, 3000, constant_policy(task.obs_dim, task.act_dim), seed=1, progress=False)
    blocks = ds.metadata["blocks"]
    assert [(b["start"], b["stop"]) for b in blocks] == [(0, 600), (600, 1800), (1800, 3000)]
    a = ds.actions
    is_policy = np.all(np.abs(a - CONST) < 1e-6, axis=1)
    assert not is_policy[:600].any()  # uniform random
    assert np.all(np.abs(a[:600]) <= 1.0) and a[:600].std() > 0.5
    assert is_policy[600:1800].all()  # pure policy samples
    noisy = a[1800:]
    if noise.startswith("eps"):
        frac = 1 - is_policy[1800:].mean()
        assert abs(frac - param) < 0.05, frac
    else:
        assert not is_policy[1800:].any()
        assert np.all(noisy <= 1 - 1e-3 + 1e-7) and np.all(noisy >= -1 + 1e-3 - 1e-7)
        dev = (noisy - CONST)[noisy < 1 - 1e-3]  # unclipped part of the Gaussian noise
        assert abs(dev.std() - param) < 0.05 and abs(dev.mean()) < 0.05
    # each block starts a fresh episode: the row before a block start is an episode end
    for b in blocks[1:]:
        assert ds.terminals[b["start"] - 1] or ds.timeouts[b["start"] - 1]


def test_flags_terminal_only_on_termination_timeout_on_limit_and_cuts():
    task = make("half_cheetah")  # never terminates: only time limits and cuts
    ds = collect(task, "eps1", 2600, constant_policy(task.obs_dim, task.act_dim), seed=0, progress=False)
    # blocks 520 / 1040 / 1040: cuts after rows 519, 1559, 2599; time limits 1000 steps into blocks 2 and 3
    assert not ds.terminals.any()
    assert list(np.flatnonzero(ds.timeouts)) == [519, 520 + 999, 1559, 1560 + 999, 2599]

    task = make("hopper")
    ds = collect(task, "pure", 1500, constant_policy(task.obs_dim, task.act_dim), seed=0, progress=False)
    term = np.asarray(task.termination_fn(ds.next_observations))
    np.testing.assert_array_equal(ds.terminals, term)
    assert ds.terminals.sum() > 5
    assert not (ds.terminals & ds.timeouts).any()
    assert ds.timeouts[-1] != ds.terminals[-1] or ds.terminals[-1]
    ends = ds.terminals | ds.timeouts
    cont = ~ends[:-1]
    np.testing.assert_array_equal(ds.next_observations[:-1][cont], ds.observations[1:][cont])


def test_same_seed_same_data_other_seed_other_data(policy_dir, tmp_path):
    created = "2026-01-01T00:00:00+00:00"
    paths = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        p = tmp_path / f"{name}.h5"
        run_collect("hopper", "gaussian1", 1200, p, policy_dir, seed=seed, created=created, progress=False)
        paths.append(p)
    a, b, c = (load_dataset(p) for p in paths)
    assert arrays_hash(a) == arrays_hash(b) != arrays_hash(c)
    assert a.metadata == b.metadata
    assert hashlib.sha256(paths[0].read_bytes()).digest() == hashlib.sha256(paths[1].read_bytes()).digest()


def test_metadata_records_provenance(policy_dir, tmp_path):
    run_collect("hopper", "eps3", 1000, tmp_path / "d.h5", policy_dir, seed=2, progress=False)
    m = load_dataset(tmp_path / "d.h5").metadata
    assert (m["task"], m["noise"], m["seed"], m["n"]) == ("hopper", "eps3", 2, 1000)
    assert m["source_policy"] == str(policy_dir) and m["policy_return"] == 123.0
    assert [(b["name"], b["start"], b["stop"]) for b in m["blocks"]] == [
        ("random", 0, 200), ("pure", 200, 600), ("eps0.3", 600, 1000)]
    assert m["bremen_version"] and m["created"] and len(m["policy_sha256"]) == 64


def test_random_needs_no_policy(tmp_path):
    run_collect("hopper", "random", 500, tmp_path / "r.h5", seed=0, progress=False)
    ds = load_dataset(tmp_path / "r.h5")
    assert ds.metadata["source_policy"] is None and len(ds) == 500


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bremen.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_user_errors(policy_dir, tmp_path):
    r = cli("collect", "--task", "Pendulum-v1", "--noise", "pure", "--n", "10", "--out", str(tmp_path / "x.h5"),
            cwd=tmp_path)
    assert r.returncode == 2 and "bremen train-behavior --task Pendulum-v1" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "exists.h5").write_text("keep")
    r = cli("collect", "--task", "hopper", "--noise", "random", "--n", "10", "--out", str(tmp_path / "exists.h5"))
    assert r.returncode == 2 and "--force" in r.stderr and (tmp_path / "exists.h5").read_text() == "keep"
    r = cli("collect", "--task", "walker2d", "--noise", "pure", "--n", "10", "--policy", str(policy_dir),
            "--out", str(tmp_path / "w.h5"))
    assert r.returncode == 2 and "give a policy trained on walker2d" in r.stderr
    r = cli("collect", "--task", "hopper", "--noise", "random", "--n", "0", "--out", str(tmp_path / "z.h5"))
    assert r.returncode == 2 and "--n must be a positive" in r.stderr
    assert not any(tmp_path.glob("[xwz].h5"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_collection_leaves_no_file(tmp_path, sig):
    out = tmp_path / "big.h5"
    # Python raises KeyboardInterrupt on SIGINT only if SIGINT was not ignored when it started, and a shell
    # starts background jobs with SIGINT ignored; install the handler so the test means the same anywhere.
    start = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "from bremen.cli import main; sys.exit(main())")
    proc = subprocess.Popen(
        [sys.executable, "-c", start, "collect", "--task", "hopper", "--noise", "random", "--n", "2000000",
         "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline and "step" not in line:  # the progress bar has started
        line = proc.stderr.read(64)
    time.sleep(1.0)
    assert proc.poll() is None, "collection finished before it could be interrupted"
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"collection did not end within 120 s of signal {sig}; its stderr ended with: {err[-1500:]!r}")
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
