"""Ctrl-C in every phase of an offline run ends with exit 130 and a checkpoint that --resume continues.

A SIGINT that lands while XLA compiles the first BC or TRPO chunk used to end in a segmentation fault
(exit 139) at interpreter teardown; the signal is sent the moment each phase starts, which is when its
step is being compiled.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PHASES = {"dynamics": "dynamics:", "bc": "behavior cloning:", "trpo": "BREMEN:"}


def start(args, log: Path):
    # the child must take SIGINT itself even when pytest runs as a background job (SIGINT ignored)
    return subprocess.Popen([sys.executable, str(ROOT / "offline.py"), *args], stdout=subprocess.DEVNULL,
                            stderr=open(log, "wb"), cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupt_when(proc, log: Path, marker: str, timeout: float = 300) -> float:
    deadline = time.time() + timeout
    while marker.encode() not in log.read_bytes():
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"{marker!r} never showed (rc {proc.poll()}): {log.read_text()[-2000:]}")
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    return time.time()


@pytest.mark.parametrize("phase", list(PHASES))
def test_sigint_exits_130_and_resume_finishes(phase, hopper_data, tmp_path):
    run = tmp_path / "run"
    args = ["--env", "hopper", "--preset", "smoke", "--seed", "0", "--data_path", str(hopper_data),
            "--log_dir", str(run)]
    log = tmp_path / "stderr.txt"
    proc = start(args, log)
    interrupt_when(proc, log, PHASES[phase])
    rc = proc.wait(timeout=300)
    err = log.read_text()
    assert rc == 130, f"exit {rc} after SIGINT in {phase}: {err[-2000:]}"
    assert "Segmentation fault" not in err and "Traceback" not in err, err[-2000:]
    assert "--resume" in err, "the user is told how to continue"
    assert not list(run.glob(".*.tmp")), "no half-written checkpoint is left"
    if phase != "dynamics":  # the model phase was finished and checkpointed before BC started
        with np.load(run / "checkpoint.npz") as z:
            meta = json.loads(bytes(z["__meta_json__"]).decode())
        assert meta["phase"] in ("model", "bc")

    resumed = subprocess.run([sys.executable, str(ROOT / "offline.py"), *args, "--resume"], capture_output=True,
                             text=True, timeout=600, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["outer_iterations"] == 2


COMPILE_THEN_INTERRUPT = """
import os, signal, sys, threading
import jax, jax.numpy as jnp
from bremen.cli import run

def work(args):
    def f(x):  # 300 unrolled matmuls: XLA compiles this for ~20 s on 2 cores
        for i in range(300):
            x = jnp.tanh(x @ x) + i
        return x
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    jax.jit(f)(jnp.ones((32, 32))).block_until_ready()

sys.exit(run(work, None))
"""


def test_sigint_during_xla_compilation_exits_130_not_139():
    """The mechanism behind the old segfault, made deterministic: Ctrl-C while XLA compiles on its own
    thread. Before the fix, interpreter teardown freed JAX's client under the compiling thread (exit 139)."""
    out = subprocess.run([sys.executable, "-c", COMPILE_THEN_INTERRUPT], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert out.returncode == 130, (out.returncode, out.stderr[-2000:])
    assert out.stderr.strip() == "bremen: interrupted"


def test_a_ctrl_c_inside_a_gc_callback_is_sent_again_not_lost_with_a_traceback():
    # Python prints "Exception ignored in: <gc callback>" and a traceback for an exception raised there, and
    # JAX runs a gc callback at every collection: the handler must recognise that frame and re-send the signal
    import gc

    from bremen import cli

    seen = []

    def callback(phase, info):
        if phase == "start":
            seen.append(cli._in_gc_callback(sys._getframe()))

    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    assert seen and all(seen)
    assert not cli._in_gc_callback(sys._getframe())

    got = []
    old = signal.signal(signal.SIGINT, lambda s, f: got.append(s))
    try:
        gc.callbacks.append(lambda phase, info: phase == "start" and not got and cli._on_sigint(signal.SIGINT,
                                                                                             sys._getframe()))
        gc.collect()  # returns normally: nothing raised inside the callback
        deadline = time.time() + 5
        while not got and time.time() < deadline:
            time.sleep(0.01)
    finally:
        gc.callbacks.pop()
        signal.signal(signal.SIGINT, old)
    assert got == [signal.SIGINT]  # the signal came again, outside the callback


WEIGHTS = ROOT / "weights" / "hopper"
LONG_COMMANDS = {  # each command, long enough to be interrupted once its first output shows
    "recursive": (["recursive.py", "--env", "hopper", "--preset", "smoke", "--deployments", "50", "--seed", "0",
                   "--log_dir", "{tmp}/rec"], "deployment 0"),
    "train-behavior": (["-m", "bremen.cli", "train-behavior", "--task", "hopper", "--eval-target", "1e9", "--steps",
                        "1000000", "--preset", "smoke", "--eval-every", "200", "--out", "{tmp}/beh"], "SAC online"),
    "evaluate": (["-m", "bremen.cli", "evaluate", str(WEIGHTS), "--episodes", "100000"], None),  # prints at the end
    "sweep": (["-m", "bremen.cli", "sweep", "--tasks", "hopper", "--algorithms", "bc", "--seeds", "0", "1", "2",
               "--script", "recursive", "--preset", "smoke", "--args", "--deployments 50", "--out", "{tmp}/sweep"],
              None),
}


@pytest.mark.parametrize("command", list(LONG_COMMANDS))
def test_ctrl_c_exits_130_with_one_line_for_every_long_command(command, tmp_path):
    """Ctrl-C in any command that trains, evaluates or sweeps: exit 130, no traceback (offline.py's phases and
    ``collect`` have their own tests above and in test_collect.py)."""
    args, marker = LONG_COMMANDS[command]
    log = tmp_path / "stderr.txt"
    proc = subprocess.Popen([sys.executable, *[a.replace("{tmp}", str(tmp_path)) for a in args]],
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"), cwd=ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if marker is None:  # no output before the end: interrupt once it has surely started working
        time.sleep(15)
        assert proc.poll() is None, f"{command} ended before it could be interrupted: {log.read_text()[-2000:]}"
        proc.send_signal(signal.SIGINT)
    else:
        interrupt_when(proc, log, marker)
    rc = proc.wait(timeout=300)
    err = log.read_text()
    assert rc == 130, f"{command}: exit {rc} after SIGINT: {err[-2000:]}"
    assert "Traceback" not in err and "Segmentation fault" not in err, err[-2000:]
