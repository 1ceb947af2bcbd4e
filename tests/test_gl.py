"""OpenGL is loaded when the first frame is drawn, never at import: a command that renders nothing runs on a
machine without libGL/libEGL even with MUJOCO_GL=egl set, and one that renders gets one line naming the
Debian packages. A machine without the libraries is simulated by refusing to load any OpenGL shared library
(the docker check runs the same commands on an image that really lacks them)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bremen.tasks.gl import PACKAGES
from conftest import one_line_error

ROOT = Path(__file__).resolve().parent.parent

# Run a script as if libGL, libEGL, libOpenGL and libOSMesa were not installed: ctypes fails to load them
# with the loader's own message, as it does on such a machine.
NO_GL_LIBRARIES = textwrap.dedent("""
    import ctypes, re, runpy, sys
    _init = ctypes.CDLL.__init__
    def _refuse(self, name, *a, **k):
        if name and re.search(r"lib(E?GL|OpenGL|OSMesa)\\b", str(name)):
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        _init(self, name, *a, **k)
    ctypes.CDLL.__init__ = _refuse
    import ctypes.util
    _find = ctypes.util.find_library
    ctypes.util.find_library = lambda n: None if re.fullmatch(r"E?GL|OpenGL|OSMesa", n) else _find(n)
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
""")


def without_gl(script, *args, mujoco_gl="egl", tmp_path=None):
    env = dict(os.environ, MUJOCO_GL=mujoco_gl)
    env.pop("PYOPENGL_PLATFORM", None)
    return subprocess.run([sys.executable, "-c", NO_GL_LIBRARIES, str(ROOT / script), *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path or ROOT)


@pytest.mark.parametrize("task", ["hopper", "cheetah_run"])
def test_a_command_that_renders_nothing_needs_no_gl_library(task, tmp_path):
    out = without_gl("bremen/cli/__main__.py", "collect", "--task", task, "--noise", "random", "--n", "300",
                     "--out", tmp_path / "d.h5", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "d.h5").exists()


@pytest.mark.parametrize("backend", ["egl", "osmesa"])
def test_a_video_without_gl_libraries_is_one_line_naming_the_packages(backend, tmp_path):
    out = without_gl("save_video.py", "--policy", ROOT / "weights" / "hopper", "--episodes", "1", "--max_steps", "3",
                     "--video_dir", tmp_path / "vid", mujoco_gl=backend, tmp_path=tmp_path)
    one_line_error(out, f"MUJOCO_GL={backend}", "apt-get install " + " ".join(PACKAGES[backend]))
    assert not (tmp_path / "vid").exists() or not any((tmp_path / "vid").iterdir())


def test_rendering_turned_off_or_an_unknown_backend_is_one_line(tmp_path):
    for value, fragment in [("disable", "turns it off"), ("vulkan", "not a backend")]:
        out = subprocess.run([sys.executable, str(ROOT / "save_video.py"), "--policy", ROOT / "weights" / "hopper",
                              "--episodes", "1", "--max_steps", "2", "--video_dir", tmp_path / "vid"],
                             capture_output=True, text=True, timeout=300, env=dict(os.environ, MUJOCO_GL=value))
        one_line_error(out, f"MUJOCO_GL={value}", fragment)


def test_importing_and_stepping_every_task_loads_no_opengl():
    code = textwrap.dedent("""
        import sys
        import bremen.tasks as T
        for name in T.BUILTIN:
            env = T.make(name).make_env(seed=0)
            env.reset(seed=0)
            env.step(env.action_space.sample())
            env.close()
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "OpenGL" or m in ("mujoco.egl", "mujoco.osmesa"))
        print(loaded)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env=dict(os.environ, MUJOCO_GL="egl"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_mujoco_imported_before_bremen_renders_with_the_requested_backend():
    """mujoco imported first with MUJOCO_GL unset holds GLFW's context class (needs a display); bremen's camera
    still renders headless with EGL, the documented default."""
    code = textwrap.dedent("""
        import mujoco
        from mujoco.rendering.classic import gl_context
        before = gl_context.GLContext.__module__
        import bremen.tasks as T
        from bremen.tasks.rendering import camera_for
        env = T.make("hopper").make_env(seed=0)
        env.reset(seed=0)
        camera = camera_for(env, 64, 48)
        frame = camera.frame()
        camera.close()
        env.close()
        print(before, gl_context.GLContext.__module__, frame.shape, float(frame.std()) > 5)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["mujoco.glfw", "mujoco.egl", "(48,", "64,", "3)", "True"]
