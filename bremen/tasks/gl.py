"""OpenGL for MuJoCo, chosen when the first renderer is made, never at import.

``import mujoco`` (and dm_control's ``suite``) picks an OpenGL backend from ``MUJOCO_GL`` as it is
imported, so with ``MUJOCO_GL=egl`` even a command that never draws a frame needs libGL and libEGL, and
fails at import on a machine without them. bremen imports both with OpenGL turned off
(:func:`import_mujoco`, :func:`import_dm_control_suite`) and loads the backend the first time a renderer
is made (:func:`make_renderer`): ``MUJOCO_GL`` if set (``egl``, ``osmesa`` or ``glfw``), else ``egl``,
which runs headless, on Mesa's software rasterizer where there is no GPU. Where the backend's libraries are
missing, making a renderer raises a :class:`~bremen.errors.UserError` that names the Debian packages.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys

from bremen.errors import UserError

DEFAULT_BACKEND = "egl"
OFF = ("disable", "disabled", "off", "false", "0")
# The Debian 12 / Ubuntu 22.04-24.04 packages each backend loads, found on a bare Debian 12 image: EGL needs
# libEGL with Mesa's vendor library, libOpenGL (PyOpenGL's GL entry points) and Mesa's DRI drivers (the
# llvmpipe software rasterizer it falls back to without a GPU); OSMesa is one library; GLFW needs a display.
PACKAGES = {
    "egl": ("libegl1", "libopengl0", "libegl-mesa0", "libgl1-mesa-dri"),
    "osmesa": ("libosmesa6",),
    "glfw": ("libgl1", "libglx-mesa0", "libgl1-mesa-dri"),
}


def requested_backend() -> str:
    """The backend a renderer will use: ``MUJOCO_GL`` (lower case) or ``egl`` when it is unset or empty."""
    return os.environ.get("MUJOCO_GL", "").strip().lower() or DEFAULT_BACKEND


@contextlib.contextmanager
def _opengl_off():
    """``MUJOCO_GL=disable`` for the duration of an import; the caller's value is put back after."""
    before = os.environ.get("MUJOCO_GL")
    os.environ["MUJOCO_GL"] = "disable"
    try:
        yield
    finally:
        if before is None:
            del os.environ["MUJOCO_GL"]
        else:
            os.environ["MUJOCO_GL"] = before


def import_mujoco():
    """``mujoco``, imported without an OpenGL backend unless something imported it before."""
    if "mujoco" not in sys.modules:
        with _opengl_off():
            import mujoco  # noqa: F401
    return sys.modules["mujoco"]


def import_dm_control_suite():
    """``dm_control.suite``, imported without an OpenGL backend (bremen renders dm_control with mujoco's
    own renderer; dm_control's would pick, and need, a backend at import)."""
    import_mujoco()
    if "dm_control.suite" not in sys.modules:
        with _opengl_off():
            from dm_control import suite  # noqa: F401
    return sys.modules["dm_control.suite"]


def _install_packages_hint(backend: str) -> str:
    pkgs = " ".join(PACKAGES.get(backend, PACKAGES[DEFAULT_BACKEND]))
    return f"install them with: apt-get install {pkgs} (or run bash .ci/setup)"


def _load_gl_context():
    """Give mujoco's renderer the requested backend's GLContext class (a no-op once it has it; a mujoco
    imported before bremen with MUJOCO_GL unset holds GLFW's, which needs a display, and gets EGL's); returns
    mujoco's ``gl_context`` module."""
    import_mujoco()
    gl_context = importlib.import_module("mujoco.rendering.classic.gl_context")
    backend = requested_backend()
    current = getattr(gl_context, "GLContext", None)
    if current is not None and current.__module__.split(".")[:2] == ["mujoco", backend]:
        return gl_context
    if backend in OFF:
        raise UserError(f"rendering needs OpenGL, and MUJOCO_GL={os.environ['MUJOCO_GL']} turns it off; "
                        f"unset MUJOCO_GL or set it to egl, osmesa or glfw")
    if backend not in PACKAGES:
        raise UserError(f"MUJOCO_GL={os.environ['MUJOCO_GL']} is not a backend bremen can render with; "
                        f"set it to egl (headless, the default), osmesa (software) or glfw (a display)")
    try:
        module = importlib.import_module(f"mujoco.{backend}")
        cls = module.GLContext
    except Exception as e:  # ImportError, OSError or ctypes errors from PyOpenGL when a library is missing
        raise UserError(f"rendering with MUJOCO_GL={backend} needs OpenGL libraries this machine lacks "
                        f"({_short(e)}); {_install_packages_hint(backend)}") from None
    gl_context.GLContext = cls
    return gl_context


def check_rendering() -> None:
    """Load the backend and make (and free) a small OpenGL context: a command that will render calls this
    before it writes anything, so a machine without the libraries gets its one line first."""
    # Mesa prints its own warnings (a driver it cannot open) before the error below says the same in one line;
    # its log level is read once, at its first message. EGL_LOG_LEVEL=debug set by the user still shows them.
    os.environ.setdefault("EGL_LOG_LEVEL", "fatal")
    gl_context = _load_gl_context()
    try:
        context = gl_context.GLContext(16, 16)
        context.make_current()
        context.free()
    except Exception as e:
        _context_failed(e)


def _context_failed(e: Exception):
    backend = requested_backend()
    raise UserError(f"could not make an OpenGL context with MUJOCO_GL={backend} ({_short(e)}); "
                    f"{_install_packages_hint(backend)}") from None


def make_renderer(model, height: int, width: int):
    """A ``mujoco.Renderer`` of ``model``, loading the OpenGL backend first if no renderer was made yet."""
    _load_gl_context()
    mujoco = import_mujoco()
    try:
        return mujoco.Renderer(model, height, width)
    except ValueError:  # a size larger than the model's offscreen buffer: the caller's mistake, not GL's
        raise
    except Exception as e:  # e.g. EGL without a driver: "Cannot initialize a EGL device display"
        _context_failed(e)


def _short(e: Exception) -> str:
    """The exception's type and first sentence, on one line."""
    text = " ".join(str(e).split())
    first = text.split(". ")[0].rstrip(".")
    return f"{type(e).__name__}: {first[:200]}" if first else type(e).__name__
