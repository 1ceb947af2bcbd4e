import atexit
import os
import shutil
import tempfile

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# One persistent XLA compilation cache for the test session, inherited by the commands the tests start as
# subprocesses: most of the suite's time went to compiling the same smoke-size programs again in every new
# process (an offline smoke run: 35 s cold, 12 s with the cache warm). Entries are keyed by the program, the
# XLA flags and the versions, so a hit loads the executable that compiling again would have produced. Some
# CPUs reject every cached XLA:CPU executable with an error line on stderr (jax-ml/jax#38445), which the
# tests of one-line errors would read: two small processes try the cache first, and it is used only when
# both print nothing.
_PROBE = "import jax, jax.numpy as jnp; print(float(jax.jit(lambda x: jnp.sin(x) @ x)(jnp.ones((8, 8))).sum()))"


def _session_compilation_cache() -> None:
    import subprocess
    import sys

    cache = tempfile.mkdtemp(prefix="bremen-test-xla-cache-")
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
        if out.returncode != 0 or out.stderr.strip():
            return
    if os.listdir(cache):
        os.environ.update({k: env[k] for k in env if k.startswith("JAX_")})


if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _session_compilation_cache()

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
