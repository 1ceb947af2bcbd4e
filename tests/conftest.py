import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def one_line_error(out, *fragments):
    """A command's user-error exit: status 2 and one ``bremen: error:`` line naming every fragment."""
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    err = out.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("bremen: error: "), err
    for f in fragments:
        assert f in err, (f, err)


def make_hopper_data(path) -> None:
    """Write 6,000 random-action hopper transitions in bremen's format to ``path`` (deterministic)."""
    import bremen.tasks as T
    from bremen.data import Dataset, save_dataset

    task = T.make("hopper")
    env, rng = task.make_env(seed=0), np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    rows = []
    while len(rows) < 6000:
        a = rng.uniform(-1, 1, 3).astype(np.float32)
        nxt, r, te, tr, _ = env.step(a)
        rows.append((obs, a, r, nxt, te, tr))
        obs = env.reset()[0] if te or tr else nxt
    o, a, r, n, te, tr = (np.array(x) for x in zip(*rows))
    tr[-1] = not te[-1]
    ds = Dataset.from_arrays(dict(observations=o, actions=a, rewards=r, next_observations=n, terminals=te, timeouts=tr),
                             metadata={"task": "hopper", "noise": "random"})
    save_dataset(ds, str(path))


@pytest.fixture(scope="session")
def hopper_data(tmp_path_factory):
    """6,000 random-action hopper transitions in bremen's format."""
    path = tmp_path_factory.mktemp("data") / "hopper_random.h5"
    make_hopper_data(path)
    return path
