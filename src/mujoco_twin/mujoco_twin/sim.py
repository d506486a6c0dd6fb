"""
The reach-arm scene without ROS: physics, seeded targets and offscreen camera images.

Three cameras: scene_camera (RGB, what the bundled policy sees), depth_camera (z-depth,
registered to scene_camera as one RGB-D device) and wrist_camera (RGB, on the forearm).
Each gets its GL context on its first render, so a camera never rendered costs nothing.

Training code, the demo and the tests drive this class directly; the ROS node wraps it.
Not thread-safe: use one instance from one thread (the GL context is bound to the thread
that renders first).
"""
from __future__ import annotations

import ctypes.util
from dataclasses import dataclass
import math
import os
from pathlib import Path


def _default_gl_backend() -> str:
    """Pick EGL when libEGL is installed, else OSMesa (software), else let MuJoCo try EGL."""
    if ctypes.util.find_library('EGL'):
        return 'egl'
    if ctypes.util.find_library('OSMesa'):
        return 'osmesa'
    return 'egl'


# MuJoCo chooses its GL backend once, at import; it must be set before the import below.
os.environ.setdefault('MUJOCO_GL', _default_gl_backend())

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

MODEL_PATH = Path(__file__).resolve().parent / 'models' / 'reach_arm.xml'
JOINT_NAMES = ('shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint')
HOME = (0.0, 0.3, -0.6)
CAMERA_NAME = 'scene_camera'
DEPTH_CAMERA_NAME = 'depth_camera'
WRIST_CAMERA_NAME = 'wrist_camera'
# SimConfig field prefix of each camera's size and field of view.
CAMERA_FIELDS = {CAMERA_NAME: ('image_width', 'image_height', 'camera_fovy'),
                 DEPTH_CAMERA_NAME: ('depth_width', 'depth_height', 'depth_fovy'),
                 WRIST_CAMERA_NAME: ('wrist_width', 'wrist_height', 'wrist_fovy')}
# MuJoCo maps an empty depth buffer (nothing hit) to the far clipping plane, in float32 a
# little beyond it (36.012 m for 36 m here): pixels from this fraction of far on are no return.
FAR_PLANE_FRACTION = 0.999
EE_SITE = 'ee_site'
TARGET_BODY = 'target'
# Targets are forward kinematics of joint samples from this box, kept when the end effector
# lies in front of the arm and above the table: reachable by construction, always in view.
TARGET_JOINT_LOW = (-0.8, -0.3, -1.4)
TARGET_JOINT_HIGH = (0.8, 1.3, 2.0)
TARGET_MIN_X = 0.15
TARGET_Z_RANGE = (0.05, 0.45)
TARGET_MIN_DISTANCE_FROM_HOME = 0.10
MAX_IMAGE_SIDE = 4096


class SimConfigError(ValueError):
    """A SimConfig field has a value the simulator cannot use."""


class RenderError(RuntimeError):
    """Offscreen rendering could not be set up (no EGL / OSMesa context)."""


class TargetSamplingError(RuntimeError):
    """No reachable target was found in the sampling region."""


@dataclass(frozen=True)
class SimConfig:
    """How to build the scene: model file, physics step, camera image size."""

    model_path: str = str(MODEL_PATH)
    timestep: float = 0.002
    image_width: int = 64
    image_height: int = 64
    # Vertical field of view of scene_camera in degrees; 0 = the model's (fovy 55 in
    # reach_arm.xml, what the bundled policy was trained on). camera_info follows it.
    camera_fovy: float = 0.0
    # depth_camera and wrist_camera: image size and fovy (0 = the model's: 58 and 60).
    depth_width: int = 320
    depth_height: int = 240
    depth_fovy: float = 0.0
    wrist_width: int = 320
    wrist_height: int = 240
    wrist_fovy: float = 0.0

    def validate(self) -> None:
        """Raise SimConfigError naming the field when a value is unusable."""
        if not Path(self.model_path).is_file():
            raise SimConfigError(f'SimConfig.model_path: no file at {self.model_path!r}')
        if not (math.isfinite(self.timestep) and 0.0 < self.timestep <= 0.05):
            raise SimConfigError(
                f'SimConfig.timestep: {self.timestep!r} s, expected 0 < timestep <= 0.05')
        for width, height, fovy_field in CAMERA_FIELDS.values():
            for field in (width, height):
                value = getattr(self, field)
                if not (isinstance(value, int) and 1 <= value <= MAX_IMAGE_SIDE):
                    raise SimConfigError(f'SimConfig.{field}: {value!r}, expected an int in '
                                         f'[1, {MAX_IMAGE_SIDE}]')
            fovy = getattr(self, fovy_field)
            if not (isinstance(fovy, (int, float)) and math.isfinite(fovy) and
                    (fovy == 0.0 or 1.0 <= fovy <= 170.0)):
                raise SimConfigError(f'SimConfig.{fovy_field}: {fovy!r} degrees, expected 0 '
                                     f"(the model's) or 1..170")

    def camera_size(self, camera: str) -> tuple:
        """Return (width, height) of the named camera's images."""
        width, height, _ = _camera_fields(camera)
        return getattr(self, width), getattr(self, height)


def _camera_fields(camera: str) -> tuple:
    try:
        return CAMERA_FIELDS[camera]
    except KeyError:
        raise SimConfigError(
            f'camera {camera!r}: expected one of {tuple(CAMERA_FIELDS)}') from None


def pinhole_intrinsics(fovy_deg: float, width: int, height: int) -> tuple:
    """
    Return (fx, fy, cx, cy) of a MuJoCo camera in the ROS / OpenCV pixel convention.

    MuJoCo's fovy is the full vertical field of view and pixels are square, so
    fx = fy = (height / 2) / tan(fovy / 2). Pixel centres lie at integer coordinates
    (pixel (0, 0) is centred on (0, 0)), so the optical axis hits
    (cx, cy) = ((width - 1) / 2, (height - 1) / 2).
    """
    f = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    return f, f, (width - 1) / 2.0, (height - 1) / 2.0


class ReachArmSim:
    """The reach arm, its position servos, a seeded target and the scene camera."""

    def __init__(self, config: SimConfig = SimConfig(), seed: int = 0) -> None:
        """Load the model, then start episode 0 with a target drawn from `seed`."""
        config.validate()
        self.config = config
        self.model = mujoco.MjModel.from_xml_path(config.model_path)
        self.model.opt.timestep = config.timestep
        # Cheap, deterministic offscreen images whatever the MJCF says.
        self.model.vis.quality.shadowsize = 0
        self.model.vis.quality.offsamples = 0
        sizes = [config.camera_size(name) for name in CAMERA_FIELDS]
        self.model.vis.global_.offwidth = max(
            self.model.vis.global_.offwidth, *(w for w, _ in sizes))
        self.model.vis.global_.offheight = max(
            self.model.vis.global_.offheight, *(h for _, h in sizes))
        self.data = mujoco.MjData(self.model)
        names = tuple(self.model.joint(i).name for i in range(self.model.njnt))
        if names != JOINT_NAMES:
            raise SimConfigError(
                f'{config.model_path}: joints {names}, expected exactly {JOINT_NAMES}')
        self._qpos_adr = np.array([self.model.joint(n).qposadr[0] for n in JOINT_NAMES])
        self._dof_adr = np.array([self.model.joint(n).dofadr[0] for n in JOINT_NAMES])
        self.joint_limits = np.array([self.model.joint(n).range for n in JOINT_NAMES])
        self._mocap_id = self.model.body(TARGET_BODY).mocapid[0]
        self._camera_id = self.model.camera(CAMERA_NAME).id
        self._depth_id = self.model.camera(DEPTH_CAMERA_NAME).id
        for name, (_, _, fovy_field) in CAMERA_FIELDS.items():
            if getattr(config, fovy_field):
                self.model.cam_fovy[self.model.camera(name).id] = getattr(config, fovy_field)
        # Nominal camera pose and light intensities, for the rehearsal perturbation hooks.
        self._camera_nominal = (self.model.cam_pos[self._camera_id].copy(),
                                self.model.cam_quat[self._camera_id].copy())
        depth_pose = (self.model.cam_pos[self._depth_id], self.model.cam_quat[self._depth_id])
        if not all(np.allclose(a, b) for a, b in zip(depth_pose, self._camera_nominal)):
            raise SimConfigError(
                f'{config.model_path}: {DEPTH_CAMERA_NAME} at {depth_pose[0].tolist()}, '
                f'quat {depth_pose[1].tolist()}; expected the pose of {CAMERA_NAME} '
                f'({self._camera_nominal[0].tolist()}, {self._camera_nominal[1].tolist()}), '
                'as the depth imager of one RGB-D device')
        self._light_nominal = (self.model.light_diffuse.copy(),
                               self.model.vis.headlight.ambient.copy(),
                               self.model.vis.headlight.diffuse.copy())
        # (camera name, depth?) -> mujoco.Renderer, each made on its first render.
        self._renderers = {}
        self._rng = np.random.default_rng(seed)
        self.episode = -1
        self.target_joint_positions = np.array(HOME)
        self.reset()

    # -- episodes and physics -------------------------------------------------------------

    def reset(self, seed: int | None = None) -> None:
        """
        Start the next episode: arm at home at rest, a new target from the seeded stream.

        With `seed`, the stream restarts from it (so reset(seed=s) always gives the same
        target); without, the next target of the current stream is drawn. Simulation time
        keeps running across episodes, as a ROS clock must.
        """
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        t = self.data.time
        mujoco.mj_resetData(self.model, self.data)
        self.data.time = t
        self.data.qpos[self._qpos_adr] = HOME
        self.data.ctrl[:] = HOME
        q_target, p_target = self._sample_target()
        self.target_joint_positions = q_target
        self.data.mocap_pos[self._mocap_id] = p_target
        mujoco.mj_forward(self.model, self.data)
        self.episode += 1

    def _sample_target(self) -> tuple:
        scratch = mujoco.MjData(self.model)
        home_ee = self.ee_position
        for _ in range(10000):
            q = self._rng.uniform(TARGET_JOINT_LOW, TARGET_JOINT_HIGH)
            scratch.qpos[self._qpos_adr] = q
            mujoco.mj_kinematics(self.model, scratch)
            p = scratch.site(EE_SITE).xpos.copy()
            if (p[0] >= TARGET_MIN_X and TARGET_Z_RANGE[0] <= p[2] <= TARGET_Z_RANGE[1]
                    and np.linalg.norm(p - home_ee) >= TARGET_MIN_DISTANCE_FROM_HOME):
                return q, p
        raise TargetSamplingError(
            f'{self.config.model_path}: no reachable target in 10000 samples of joints in '
            f'{TARGET_JOINT_LOW}..{TARGET_JOINT_HIGH}')

    def step(self, n: int = 1) -> None:
        """Advance physics by n steps of config.timestep with the current position targets."""
        if n < 0:
            raise ValueError(f'ReachArmSim.step: n={n}, expected n >= 0')
        if n:
            mujoco.mj_step(self.model, self.data, nstep=n)

    def set_position_targets(self, positions) -> None:
        """Set the servo targets (rad, model joint order); clipped to the joint limits."""
        q = np.asarray(positions, dtype=float).reshape(-1)
        if q.shape != (len(JOINT_NAMES),) or not np.all(np.isfinite(q)):
            raise ValueError(
                f'ReachArmSim.set_position_targets: got {q.tolist()}, expected '
                f'{len(JOINT_NAMES)} finite values for {JOINT_NAMES}')
        self.data.ctrl[:] = np.clip(q, self.joint_limits[:, 0], self.joint_limits[:, 1])

    # -- state ----------------------------------------------------------------------------

    @property
    def time(self) -> float:
        """Return simulation time in seconds (monotonic across episodes)."""
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        """Physics step in seconds."""
        return float(self.model.opt.timestep)

    @property
    def joint_positions(self) -> np.ndarray:
        """Joint positions (rad), model joint order."""
        return self.data.qpos[self._qpos_adr].copy()

    @property
    def joint_velocities(self) -> np.ndarray:
        """Joint velocities (rad/s), model joint order."""
        return self.data.qvel[self._dof_adr].copy()

    @property
    def position_targets(self) -> np.ndarray:
        """Return the servo targets (rad), model joint order."""
        return self.data.ctrl.copy()

    @property
    def target_position(self) -> np.ndarray:
        """World position of the target sphere's centre (m)."""
        return self.data.mocap_pos[self._mocap_id].copy()

    @property
    def ee_position(self) -> np.ndarray:
        """World position of ee_site (m), as of the last physics step."""
        return self.data.site(EE_SITE).xpos.copy()

    @property
    def ee_distance(self) -> float:
        """Distance (m) from ee_site to the target centre."""
        return float(np.linalg.norm(self.ee_position - self.target_position))

    # -- camera ---------------------------------------------------------------------------

    @property
    def camera_fovy(self) -> float:
        """Vertical field of view of scene_camera, degrees."""
        return self.fovy(CAMERA_NAME)

    def fovy(self, camera: str) -> float:
        """Vertical field of view of the named camera, degrees."""
        _camera_fields(camera)
        return float(self.model.cam_fovy[self.model.camera(camera).id])

    def camera_intrinsics(self, camera: str = CAMERA_NAME) -> tuple:
        """Return (fx, fy, cx, cy) of the named camera at its size; see pinhole_intrinsics."""
        return pinhole_intrinsics(self.fovy(camera), *self.config.camera_size(camera))

    def camera_pose(self, camera: str = CAMERA_NAME) -> tuple:
        """
        Return (position, quaternion wxyz) of the camera's ROS optical frame in the world.

        The optical frame has z forward, x right, y down: MuJoCo's camera frame
        (z backward, y up) turned half a turn about x. wrist_camera's pose is that of the
        last physics step (it moves with the forearm).
        """
        _camera_fields(camera)
        cam = self.model.camera(camera).id
        pos = self.data.cam_xpos[cam].copy()
        rot = self.data.cam_xmat[cam].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, rot.reshape(-1))
        return pos, quat

    def _renderer(self, camera: str, depth: bool):
        renderer = self._renderers.get((camera, depth))
        if renderer is None:
            width, height = self.config.camera_size(camera)
            try:
                renderer = mujoco.Renderer(self.model, height, width)
            except Exception as err:  # the GL backends raise assorted types
                raise RenderError(
                    f'offscreen rendering with MUJOCO_GL={os.environ.get("MUJOCO_GL")!r} '
                    f'failed: {err}; install libegl1 + libgl1-mesa-dri, or set '
                    f'MUJOCO_GL=osmesa (libosmesa6) before mujoco is imported') from err
            if depth:
                renderer.enable_depth_rendering()
            self._renderers[(camera, depth)] = renderer
        renderer.update_scene(self.data, camera=self.model.camera(camera).id)
        return renderer

    def render(self, camera: str = CAMERA_NAME) -> np.ndarray:
        """Render an RGB camera: a new (height, width, 3) uint8 array at its configured size."""
        _camera_fields(camera)
        return self._renderer(camera, depth=False).render()

    def render_depth(self, camera: str = DEPTH_CAMERA_NAME) -> np.ndarray:
        """
        Render z-depth: a new (height, width) float32 array, metres, NaN where nothing is hit.

        z-depth is the distance from the camera's image plane along its optical axis (what
        real depth cameras give), not the distance along each pixel's ray. MuJoCo 4's
        renderer already undoes the (reverse-Z) projection into metres; what it returns for
        an empty pixel is the far clipping plane, turned into NaN here.
        """
        _camera_fields(camera)
        depth = self._renderer(camera, depth=True).render()
        far = self.model.vis.map.zfar * self.model.stat.extent
        depth[~(depth < FAR_PLANE_FRACTION * far)] = np.nan
        return depth

    # -- perturbations (rehearsal of what a real robot does to a policy) ----------------

    def set_camera_offset(self, offset=(0.0, 0.0, 0.0), rotation_deg=(0.0, 0.0, 0.0)) -> None:
        """
        Move scene_camera (and depth_camera with it) from its nominal pose.

        offset is in metres, world frame; rotation_deg in degrees. The rotation turns the
        camera about its own x, y, z axes in that order (MuJoCo's camera frame: x right,
        y up, z backward). Zero offset and rotation restore the nominal pose.
        """
        offset = np.asarray(offset, dtype=float).reshape(-1)
        angles = np.radians(np.asarray(rotation_deg, dtype=float).reshape(-1))
        if offset.shape != (3,) or angles.shape != (3,) or not (
                np.all(np.isfinite(offset)) and np.all(np.isfinite(angles))):
            raise ValueError(f'ReachArmSim.set_camera_offset: offset {offset.tolist()}, '
                             f'rotation_deg {np.degrees(angles).tolist()}: expected 3 finite '
                             f'values each')
        pos, quat = self._camera_nominal
        turned = quat.copy()
        for axis, angle in zip(np.eye(3), angles):
            step, out = np.zeros(4), np.zeros(4)
            mujoco.mju_axisAngle2Quat(step, axis, angle)
            mujoco.mju_mulQuat(out, turned, step)
            turned = out
        self.model.cam_pos[self._camera_id] = pos + offset
        self.model.cam_quat[self._camera_id] = turned
        self._place_depth_camera()
        mujoco.mj_forward(self.model, self.data)

    def _place_depth_camera(self) -> None:
        # One RGB-D device: a bumped scene_camera moves its depth imager with it.
        self.model.cam_pos[self._depth_id] = self.model.cam_pos[self._camera_id]
        self.model.cam_quat[self._depth_id] = self.model.cam_quat[self._camera_id]

    def set_lighting(self, scale: float = 1.0) -> None:
        """Scale every light and the headlight from their nominal intensity (1.0 restores)."""
        if not (math.isfinite(scale) and scale >= 0.0):
            raise ValueError(f'ReachArmSim.set_lighting: scale {scale!r}, expected >= 0')
        diffuse, ambient, head = self._light_nominal
        self.model.light_diffuse[:] = np.clip(diffuse * scale, 0.0, 1.0)
        self.model.vis.headlight.ambient[:] = np.clip(ambient * scale, 0.0, 1.0)
        self.model.vis.headlight.diffuse[:] = np.clip(head * scale, 0.0, 1.0)

    def close(self) -> None:
        """Free the GL contexts (call from the thread that rendered)."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
