"""Every command checks where it will write before it starts working: one line, exit 2."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import one_line_error

ROOT = Path(__file__).resolve().parent.parent


def bremen(*args, script=None):
    cmd = [sys.executable, str(ROOT / script)] if script else [sys.executable, "-m", "bremen.cli"]
    t0 = time.time()
    out = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    return out, time.time() - t0


@pytest.fixture
def a_file(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("a regular file")
    return f


@pytest.mark.parametrize("where,reason", [("/proc/bremen_run", "cannot write there"),
                                          ("FILE/run", "is a file, not a directory"),
                                          ("/sys/bremen_run", "cannot write there")])
def test_offline_log_dir(where, reason, hopper_data, a_file):
    where = where.replace("FILE", str(a_file))
    out, _ = bremen("--env", "hopper", "--preset", "smoke", "--data_path", hopper_data, "--log_dir", where,
                    script="offline.py")
    one_line_error(out, "--log_dir", where, reason)


def test_collect_checks_out_before_collecting(a_file):
    # 2M transitions would take minutes: the error must come first
    out, seconds = bremen("collect", "--task", "hopper", "--noise", "random", "--n", "2000000", "--out", "/proc/x.h5")
    one_line_error(out, "--out /proc/x.h5", "cannot write in /proc")
    assert seconds < 60
    out, _ = bremen("collect", "--task", "hopper", "--noise", "random", "--n", "100", "--out", a_file / "x.h5")
    one_line_error(out, "not a directory")
    assert a_file.read_text() == "a regular file"


def test_train_behavior_and_convert(hopper_data, tmp_path):
    out, _ = bremen("train-behavior", "--task", "hopper", "--eval-target", "100", "--out", "/proc/beh")
    one_line_error(out, "--out /proc/beh")
    out, _ = bremen("dataset", "convert", hopper_data, "/sys/x.h5")
    one_line_error(out, "/sys/x.h5", "cannot write in /sys")
