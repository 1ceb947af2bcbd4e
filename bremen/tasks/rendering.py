"""Cameras that follow the robot, for videos of the built-in tasks.

gymnasium's MuJoCo envs render ``rgb_array`` frames from a free camera that stays where the episode
started, so a hopper that runs leaves the picture after a few seconds. Every gymnasium locomotion model
also defines a camera named ``track`` that follows the torso's center of mass (``mode="trackcom"``), and
dm_control's cheetah has ``side``, which does the same. bremen renders from those cameras with its own
``mujoco.Renderer``, so the robot stays in view from the first frame to the last.

``quality="fast"`` (the default) turns off shadows, reflections and multisampling: with Mesa's software
renderer that makes a frame 3 to 8 times cheaper. ``quality="high"`` keeps MuJoCo's defaults.

gymnasium's floors are finite planes (40 m half-width for half_cheetah, whose shipped policy runs ~200 m
in an episode), so the floor geom is moved under the robot in the rendered scene, by whole periods of its
checker texture: the floor looks endless and the checkers still show the robot's motion. Physics is not
touched (a plane collides as an infinite plane anyway).

``robot_mask()`` renders the same view as segmentation and marks the pixels that show a geom of the robot
(any body but the world), which is how the tests check that the robot is in the picture.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from bremen.tasks.gl import import_mujoco, make_renderer

QUALITIES = ("fast", "high")
DEFAULT_SIZE = (480, 480)  # (width, height)


class MujocoTrackingCamera:
    """Frames of a MuJoCo model from one of its cameras (or a free camera tracking ``track_body``).

    Args:
        model, data: the env's ``MjModel`` / ``MjData`` (read at every frame, never modified but for the
            offscreen buffer size and, for ``fast``, the multisampling count).
        camera: name of a model camera; when the model has no such camera, a free camera tracks body 1.
    """

    def __init__(self, model, data, width: int = 480, height: int = 480, camera: str = "track",
                 quality: str = "fast"):
        mujoco = import_mujoco()
        self._mujoco, self._model, self._data = mujoco, model, data
        vis = model.vis.global_
        vis.offwidth, vis.offheight = max(vis.offwidth, width), max(vis.offheight, height)
        if quality == "fast":
            model.vis.quality.offsamples = 0
        self._renderer = make_renderer(model, height, width)
        if quality == "fast":
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                self._renderer.scene.flags[flag] = False
        cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cam_id >= 0:
            self._camera = cam_id
        else:
            cam = mujoco.MjvCamera()
            cam.type, cam.trackbodyid = mujoco.mjtCamera.mjCAMERA_TRACKING, 1
            cam.distance, cam.elevation, cam.azimuth = 4.0, -20.0, 90.0
            self._camera = cam
        self._floors = [(g, _texture_period(model, g)) for g in range(model.ngeom)
                        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE and model.geom_bodyid[g] == 0
                        and np.all(model.geom_size[g, :2] > 0)]

    def _update_scene(self) -> None:
        self._renderer.update_scene(self._data, camera=self._camera)
        if not self._floors:
            return
        com = self._data.subtree_com[1, :2]
        scene = self._renderer.scene
        for i in range(scene.ngeom):
            geom = scene.geoms[i]
            for g, period in self._floors:
                if geom.objtype == self._mujoco.mjtObj.mjOBJ_GEOM and geom.objid == g:
                    geom.pos[:2] += np.round(com / period) * period

    def frame(self) -> np.ndarray:
        """The current state as an RGB ``uint8`` array of shape (height, width, 3)."""
        self._update_scene()
        return self._renderer.render()

    def body_ids(self) -> np.ndarray:
        """(height, width) int: the body whose geom each pixel shows (0: the world, i.e. the floor; -1: sky)."""
        self._renderer.enable_segmentation_rendering()
        try:
            self._update_scene()
            seg = self._renderer.render()
        finally:
            self._renderer.disable_segmentation_rendering()
        return _bodies(self._model, seg)

    def robot_mask(self) -> np.ndarray:
        """Boolean (height, width): pixels that show a geom of the robot (any body but the world)."""
        return self.body_ids() > 0

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _bodies(model, seg: np.ndarray) -> np.ndarray:
    """Body id per pixel of a MuJoCo segmentation image ((id, object type) per pixel); -1 where no geom."""
    mujoco = import_mujoco()

    ids, types = seg[..., 0], seg[..., 1]
    is_geom = (types == mujoco.mjtObj.mjOBJ_GEOM) & (ids >= 0)
    return np.where(is_geom, np.asarray(model.geom_bodyid)[np.where(is_geom, ids, 0)], -1)


def _texture_period(model, g: int) -> np.ndarray:
    """Length (x, y) after which the texture of plane geom ``g`` repeats (1 m when it has none)."""
    mat = model.geom_matid[g]
    if mat < 0 or np.any(model.mat_texrepeat[mat] <= 0):
        return np.ones(2)
    if model.mat_texuniform[mat]:
        return 1.0 / model.mat_texrepeat[mat]
    return 2.0 * model.geom_size[g, :2] / model.mat_texrepeat[mat]


def dm_control_camera(physics, width: int = 480, height: int = 480, camera: str = "side",
                      quality: str = "fast") -> MujocoTrackingCamera:
    """Frames of a dm_control ``Physics`` from one of its cameras (cheetah: ``side``, which tracks the COM),
    drawn with mujoco's own renderer on the physics' ``MjModel``/``MjData`` (dm_control's renderer is not
    used, so the OpenGL backend is chosen here, not when dm_control is imported)."""
    return MujocoTrackingCamera(physics.model.ptr, physics.data.ptr, width, height, camera, quality)


class GymRenderCamera:
    """Any other gymnasium env: its own ``render()`` (made with ``render_mode="rgb_array"``)."""

    def __init__(self, env):
        self._env = env

    def frame(self) -> np.ndarray:
        return np.asarray(self._env.render())

    def body_ids(self) -> Optional[np.ndarray]:
        return None

    def robot_mask(self) -> Optional[np.ndarray]:
        return None

    def close(self) -> None:
        pass


def camera_for(env, width: int = 480, height: int = 480, quality: str = "fast"):
    """The renderer a video of ``env`` uses: the task env's tracking camera, the ``track`` camera of any other
    gymnasium MuJoCo env, else the env's own ``render()`` (it must have been made with ``render_mode="rgb_array"``)."""
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES}, not {quality!r}")
    base = env.unwrapped
    if hasattr(base, "camera"):
        return base.camera(width, height, quality)
    if hasattr(base, "model") and hasattr(base, "data") and type(base.model).__module__.startswith("mujoco"):
        return MujocoTrackingCamera(base.model, base.data, width, height, "track", quality)
    return GymRenderCamera(env)
