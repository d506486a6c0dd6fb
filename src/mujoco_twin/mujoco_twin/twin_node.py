"""
mujoco_twin node: the reach arm in MuJoCo, speaking Isaac Sim's ROS 2 topics.

One thread owns the simulator: it advances physics, follows the active trajectory, and
publishes camera images, joint states, task state and /clock, all stamped with simulation
time. ROS callbacks (commands, reset) run in the executor and hand over under a lock.

The optional depth and wrist cameras render in the same simulation step as scene_camera,
so, like a hardware-synchronised rig, all frames of one step carry one stamp; a
`<camera>_stamp_delay` (settable at run time) makes one camera's stamps older, to exercise
a consumer's skew check.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import importlib
import math
import os
import sys
import threading
import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

NODE_NAME = 'mujoco_twin'
IMAGE_TOPIC = '/camera/image_raw'
CAMERA_INFO_TOPIC = '/camera/camera_info'
# The optional cameras: relative names, so a namespace moves them.
DEPTH_IMAGE_TOPIC = 'depth_camera/image_raw'
DEPTH_CAMERA_INFO_TOPIC = 'depth_camera/camera_info'
WRIST_IMAGE_TOPIC = 'wrist_camera/image_raw'
WRIST_CAMERA_INFO_TOPIC = 'wrist_camera/camera_info'
MAX_STAMP_DELAY_S = 1.0
# The only parameters a running twin takes (ros2 param set); the others are read-only.
RUNTIME_PARAMETERS = ('depth_stamp_delay', 'wrist_stamp_delay')
DEPTH_ENCODINGS = ('16UC1', '32FC1')
MAX_DEPTH_16UC1_M = 65.535
JOINT_STATES_TOPIC = '/joint_states'
TRAJECTORY_TOPIC = '/joint_trajectory_controller/joint_trajectory'
JOINT_COMMAND_TOPIC = '/joint_command'
TASK_STATE_TOPIC = '/mujoco_twin/task_state'
TASK_STATE_LAYOUT = (
    'time', 'episode', 'target_x', 'target_y', 'target_z', 'ee_x', 'ee_y', 'ee_z', 'distance')
RENDER_BACKENDS = ('', 'egl', 'osmesa', 'glfw')
# /clock goes out at least this often in simulation time, whatever the publish rates.
MAX_STEP_GROUP_S = 0.01
# Behind real time by more than this (slow renders), pacing restarts from now, no burst.
MAX_LAG_S = 0.25


class TwinParameterError(ValueError):
    """A mujoco_twin parameter has a value the twin cannot use."""


@dataclass(frozen=True)
class TwinConfig:
    """The node's parameters; see README.md for each one."""

    seed: int = 0
    image_width: int = 640
    image_height: int = 480
    camera_rate: float = 30.0
    joint_state_rate: float = 100.0
    real_time_factor: float = 1.0
    render_backend: str = ''
    sim_dt: float = 0.002
    camera_fovy: float = 0.0
    depth_camera: bool = False
    depth_encoding: str = '16UC1'
    depth_width: int = 320
    depth_height: int = 240
    depth_fovy: float = 0.0
    depth_stamp_delay: float = 0.0
    wrist_camera: bool = False
    wrist_width: int = 320
    wrist_height: int = 240
    wrist_fovy: float = 0.0
    wrist_stamp_delay: float = 0.0

    def validate(self) -> None:
        """Raise TwinParameterError naming the parameter when a value is unusable."""
        for name in RUNTIME_PARAMETERS:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and
                    math.isfinite(value) and 0.0 <= value <= MAX_STAMP_DELAY_S):
                raise TwinParameterError(
                    f'{NODE_NAME}.{name}: {value} s, expected 0..{MAX_STAMP_DELAY_S:g} s')
        if self.depth_encoding not in DEPTH_ENCODINGS:
            raise TwinParameterError(
                f'{NODE_NAME}.depth_encoding: {self.depth_encoding!r}, expected 16UC1 '
                '(millimetres) or 32FC1 (metres)')
        for name in ('image_width', 'image_height', 'depth_width', 'depth_height',
                     'wrist_width', 'wrist_height'):
            value = getattr(self, name)
            if not 1 <= value <= 4096:
                raise TwinParameterError(f'{NODE_NAME}.{name}: {value}, expected 1..4096 pixels')
        if not (math.isfinite(self.sim_dt) and 0.0 < self.sim_dt <= 0.05):
            raise TwinParameterError(
                f'{NODE_NAME}.sim_dt: {self.sim_dt} s, expected 0 < sim_dt <= 0.05')
        for name in ('camera_rate', 'joint_state_rate'):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 < value <= 1.0 / self.sim_dt):
                raise TwinParameterError(
                    f'{NODE_NAME}.{name}: {value} Hz, expected 0 < rate <= 1/sim_dt = '
                    f'{1.0 / self.sim_dt:g} Hz')
        if not math.isfinite(self.real_time_factor):
            raise TwinParameterError(
                f'{NODE_NAME}.real_time_factor: {self.real_time_factor}, expected a finite '
                'number (1.0 real time, <= 0 as fast as possible)')
        if self.render_backend not in RENDER_BACKENDS:
            raise TwinParameterError(
                f'{NODE_NAME}.render_backend: {self.render_backend!r}, expected one of '
                f'{RENDER_BACKENDS} ("" = MUJOCO_GL, else EGL with OSMesa fallback)')


def encode_depth(depth_m: np.ndarray, encoding: str) -> np.ndarray:
    """
    Return a z-depth image (float metres, NaN = no return) as a ROS depth encoding stores it.

    '32FC1': float32 metres, no return as NaN (what depth_image_proc's convert_metric
    gives; REP 118 would also allow +inf for "too far", which a renderer cannot tell from
    "nothing there"). '16UC1': uint16 millimetres, rounded, no return as 0, as RealSense
    and OpenNI drivers publish; a depth beyond 65.535 m does not fit and is 0 too.
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    if encoding == '32FC1':
        return np.where(np.isfinite(depth), depth, np.float32(np.nan)).astype(np.float32)
    if encoding == '16UC1':
        valid = np.isfinite(depth) & (depth >= 0.0) & (depth <= MAX_DEPTH_16UC1_M)
        mm = np.rint(np.where(valid, depth, 0.0) * 1000.0)
        return mm.astype(np.uint16)
    raise TwinParameterError(
        f'depth encoding {encoding!r}: expected one of {DEPTH_ENCODINGS}')


def import_sim(render_backend: str):
    """Import mujoco_twin.sim with MUJOCO_GL=render_backend (MuJoCo reads it once, at import)."""
    if render_backend:
        current = os.environ.get('MUJOCO_GL')
        if 'mujoco' in sys.modules and current != render_backend:
            raise TwinParameterError(
                f'{NODE_NAME}.render_backend: {render_backend!r}, but MuJoCo is already '
                f'imported in this process with MUJOCO_GL={current!r}')
        os.environ['MUJOCO_GL'] = render_backend
    return importlib.import_module('mujoco_twin.sim')


def to_time(seconds: float) -> Time:
    """Convert simulation seconds to builtin_interfaces/Time."""
    ns = int(round(seconds * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def from_time(stamp: Time) -> float:
    """Convert builtin_interfaces/Time to seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


class TrajectoryError(ValueError):
    """A JointTrajectory or JointState command is malformed for this arm."""


@dataclass(frozen=True)
class ActiveTrajectory:
    """A validated trajectory: per-joint positions at times (s) after start, incl. t=0."""

    start: float
    joints: np.ndarray
    times: np.ndarray
    positions: np.ndarray

    def sample(self, t: float) -> np.ndarray:
        """Linearly interpolated positions at simulation time t (held outside the span)."""
        s = t - self.start
        return np.array([np.interp(s, self.times, self.positions[:, j])
                         for j in range(len(self.joints))])


def joint_indices(names, joint_names: tuple, what: str) -> np.ndarray:
    """Map command joint names to model indices; raise TrajectoryError on empty/dup/unknown."""
    names = list(names)
    if not names:
        raise TrajectoryError(f'{what}: no joint names')
    if len(set(names)) != len(names):
        raise TrajectoryError(f'{what}: duplicate joint names {names}')
    unknown = [n for n in names if n not in joint_names]
    if unknown:
        raise TrajectoryError(f'{what}: unknown joints {unknown}, this arm has {joint_names}')
    return np.array([joint_names.index(n) for n in names])


def plan_trajectory(msg: JointTrajectory, now: float, current: np.ndarray,
                    joint_names: tuple) -> ActiveTrajectory:
    """
    Validate msg and plan it from the current joint state, as joint_trajectory_controller.

    The trajectory starts at header.stamp (simulation time), or now if the stamp is zero,
    and begins from the current positions of the named joints at `now`.
    """
    what = f'{TRAJECTORY_TOPIC}'
    joints = joint_indices(msg.joint_names, joint_names, what)
    if not msg.points:
        raise TrajectoryError(f'{what}: no points')
    times, rows = [0.0], [current[joints]]
    for i, point in enumerate(msg.points):
        t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
        if len(point.positions) != len(joints):
            raise TrajectoryError(
                f'{what}: points[{i}] has {len(point.positions)} positions for '
                f'{len(joints)} joint names')
        q = np.asarray(point.positions, dtype=float)
        if not np.all(np.isfinite(q)):
            raise TrajectoryError(f'{what}: points[{i}].positions {q.tolist()} not finite')
        if t < times[-1] or (i > 0 and t == times[-1]):
            raise TrajectoryError(
                f'{what}: points[{i}].time_from_start {t:g} s not after the previous point')
        if t == 0.0:
            rows[0] = q  # a point at time 0 is the start: jump there
            continue
        times.append(t)
        rows.append(q)
    stamp = from_time(msg.header.stamp)
    start = stamp if stamp > 0.0 else now
    return ActiveTrajectory(start, joints, np.array(times), np.array(rows))


@dataclass(frozen=True)
class CameraStream:
    """One published camera: what to render, where it goes, which parameter delays its stamp."""

    camera: str
    depth: bool
    image_pub: object
    info_pub: object
    info: CameraInfo
    delay_parameter: str  # a TwinConfig field; '' = stamped at its step


class MujocoTwin(Node):
    """The twin node; call start() to run the simulation thread."""

    def __init__(self, **kwargs) -> None:
        """Declare and validate parameters, load the scene, create publishers and services."""
        super().__init__(NODE_NAME, **kwargs)
        self.config = self._read_parameters()
        sim = import_sim(self.config.render_backend)
        cfg = self.config
        self.sim = sim.ReachArmSim(
            sim.SimConfig(timestep=cfg.sim_dt, image_width=cfg.image_width,
                          image_height=cfg.image_height, camera_fovy=cfg.camera_fovy,
                          depth_width=cfg.depth_width, depth_height=cfg.depth_height,
                          depth_fovy=cfg.depth_fovy, wrist_width=cfg.wrist_width,
                          wrist_height=cfg.wrist_height, wrist_fovy=cfg.wrist_fovy),
            seed=cfg.seed)
        self.joint_names = sim.JOINT_NAMES
        self.rejected_trajectories = 0
        self.rejected_joint_commands = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._trajectory = None
        # Rendered in this order, every one in the same simulation step.
        self._cameras = [self._make_stream(sim.CAMERA_NAME, False, IMAGE_TOPIC,
                                           CAMERA_INFO_TOPIC, '')]
        if cfg.depth_camera:
            self._cameras.append(self._make_stream(
                sim.DEPTH_CAMERA_NAME, True, DEPTH_IMAGE_TOPIC, DEPTH_CAMERA_INFO_TOPIC,
                'depth_stamp_delay'))
        if cfg.wrist_camera:
            self._cameras.append(self._make_stream(
                sim.WRIST_CAMERA_NAME, False, WRIST_IMAGE_TOPIC, WRIST_CAMERA_INFO_TOPIC,
                'wrist_stamp_delay'))
        self._joint_pub = self.create_publisher(JointState, JOINT_STATES_TOPIC, 10)
        self._task_pub = self.create_publisher(Float64MultiArray, TASK_STATE_TOPIC, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._clock_pub = None
        if self.get_parameter('use_sim_time').value:
            self._clock_pub = self.create_publisher(Clock, '/clock', 10)
        self.create_subscription(JointTrajectory, TRAJECTORY_TOPIC, self._on_trajectory, 10)
        self.create_subscription(JointState, JOINT_COMMAND_TOPIC, self._on_joint_command, 10)
        self.create_service(Trigger, '~/reset', self._on_reset)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f'{self.config}; MUJOCO_GL={os.environ.get("MUJOCO_GL")}; episode 0 target '
            f'{np.round(self.sim.target_position, 3).tolist()}')

    def _read_parameters(self) -> TwinConfig:
        defaults = TwinConfig()
        docs = {
            'seed': 'seed of the target stream: episode k has the same target for the same seed',
            'image_width': 'camera image width, pixels',
            'image_height': 'camera image height, pixels',
            'camera_rate': 'image + camera_info rate, Hz of simulation time',
            'joint_state_rate': 'joint_states + task_state rate, Hz of simulation time',
            'real_time_factor': 'simulation speed: 1.0 real time, <= 0 as fast as possible',
            'render_backend': 'MUJOCO_GL backend: "" (env or egl, else osmesa), egl, osmesa',
            'sim_dt': 'physics step, s',
            'camera_fovy': "scene_camera vertical field of view, degrees; 0 = the model's "
                           '(55); camera_info follows it',
            'depth_camera': 'publish depth_camera (z-depth, registered to scene_camera)',
            'depth_encoding': '16UC1 (millimetres, 0 = no return) or 32FC1 (metres, NaN)',
            'depth_width': 'depth image width, pixels',
            'depth_height': 'depth image height, pixels',
            'depth_fovy': "depth_camera vertical field of view, degrees; 0 = the model's (58)",
            'depth_stamp_delay': 'depth frames stamped this much before their step, s',
            'wrist_camera': 'publish wrist_camera (RGB, on the forearm)',
            'wrist_width': 'wrist image width, pixels',
            'wrist_height': 'wrist image height, pixels',
            'wrist_fovy': "wrist_camera vertical field of view, degrees; 0 = the model's (60)",
            'wrist_stamp_delay': 'wrist frames stamped this much before their step, s',
        }
        values = {}
        for name, doc in docs.items():
            default = getattr(defaults, name)
            # dynamic typing: a launch file's 30 must not be refused for want of 30.0
            descriptor = ParameterDescriptor(description=doc, dynamic_typing=True,
                                             read_only=name not in RUNTIME_PARAMETERS)
            value = self.declare_parameter(name, default, descriptor).value
            kind = type(default)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise TwinParameterError(
                    f'{NODE_NAME}.{name}: {value!r} ({type(value).__name__}), expected '
                    f'{kind.__name__}')
            values[name] = value
        config = TwinConfig(**values)
        config.validate()
        return config

    def _make_stream(self, camera: str, depth: bool, image_topic: str, info_topic: str,
                     delay_parameter: str) -> CameraStream:
        return CameraStream(
            camera, depth,
            self.create_publisher(Image, image_topic, qos_profile_sensor_data),
            self.create_publisher(CameraInfo, info_topic, qos_profile_sensor_data),
            self._make_camera_info(camera), delay_parameter)

    def _make_camera_info(self, camera: str) -> CameraInfo:
        fx, fy, cx, cy = self.sim.camera_intrinsics(camera)
        info = CameraInfo()
        info.header.frame_id = f'{camera}_optical'
        info.width, info.height = self.sim.config.camera_size(camera)
        info.distortion_model = 'plumb_bob'
        info.d = [0.0] * 5
        info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        # Read-only parameters never reach here; use_sim_time and the like pass through.
        changes = {p.name: p.value for p in parameters if p.name in RUNTIME_PARAMETERS}
        changes = {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                   for k, v in changes.items()}
        with self._lock:
            config = replace(self.config, **changes)
            try:
                config.validate()
            except TwinParameterError as err:
                return SetParametersResult(successful=False, reason=str(err))
            self.config = config  # the simulation thread reads it under the lock
        return SetParametersResult(successful=True)

    # -- commands and reset (executor thread) -----------------------------------------------

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        with self._lock:
            try:
                self._trajectory = plan_trajectory(
                    msg, self.sim.time, self.sim.joint_positions, self.joint_names)
            except TrajectoryError as err:
                self.rejected_trajectories += 1
                self.get_logger().warning(
                    f'rejected trajectory #{self.rejected_trajectories}: {err}')

    def _on_joint_command(self, msg: JointState) -> None:
        with self._lock:
            try:
                joints = joint_indices(msg.name, self.joint_names, JOINT_COMMAND_TOPIC)
                q = np.asarray(msg.position, dtype=float)
                if q.shape != (len(joints),) or not np.all(np.isfinite(q)):
                    raise TrajectoryError(
                        f'{JOINT_COMMAND_TOPIC}: position {q.tolist()}, expected '
                        f'{len(joints)} finite values for {list(msg.name)}')
            except TrajectoryError as err:
                self.rejected_joint_commands += 1
                self.get_logger().warning(
                    f'rejected joint command #{self.rejected_joint_commands}: {err}')
                return
            # A direct position command overrides any trajectory, as in Isaac Sim.
            self._trajectory = None
            targets = self.sim.position_targets
            targets[joints] = q
            self.sim.set_position_targets(targets)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        with self._lock:
            self._trajectory = None
            self.sim.reset()
            response.success = True
            response.message = (
                f'episode {self.sim.episode}, target '
                f'{np.round(self.sim.target_position, 4).tolist()}')
        self.get_logger().info(f'reset: {response.message}')
        return response

    # -- simulation thread ----------------------------------------------------------------

    def start(self) -> None:
        """Start the simulation thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name='mujoco_twin_sim', daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the simulation thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def destroy_node(self) -> None:
        """Stop the simulation, then destroy the node."""
        self.stop()
        super().destroy_node()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as err:
            if not self.context.ok():
                return  # shut down (Ctrl-C, SIGTERM) while publishing: not an error
            self.get_logger().fatal(f'simulation thread stopped: {type(err).__name__}: {err}')
            raise
        finally:
            self.sim.close()  # GL context belongs to this thread

    def _loop(self) -> None:
        cfg = self.config
        dt = self.sim.timestep
        joint_period, image_period = 1.0 / cfg.joint_state_rate, 1.0 / cfg.camera_rate
        with self._lock:
            now = self.sim.time
        next_joint, next_image = now, now
        anchor_wall, anchor_sim = time.monotonic(), now
        diag_wall, diag_sim = anchor_wall, now
        while not self._stop.is_set():
            with self._lock:
                # Step to the next publication (rates need not be multiples of dt: the
                # schedule keeps the average rate exact, each sample within dt / 2).
                group_end = min(next_joint, next_image, now + MAX_STEP_GROUP_S)
                steps = max(1, round((group_end - now) / dt))
                if self._trajectory is None:
                    self.sim.step(steps)
                for _ in range(steps if self._trajectory is not None else 0):
                    self._apply_trajectory()
                    self.sim.step(1)
                now = self.sim.time
                stamp = to_time(now)
                if self._clock_pub is not None:
                    self._clock_pub.publish(Clock(clock=stamp))
                if now >= next_joint - dt / 2:
                    self._publish_state(stamp, now)
                    next_joint = max(next_joint + joint_period, now)
                if now >= next_image - dt / 2:
                    for stream in self._cameras:
                        self._publish_camera(stream, now)
                    next_image = max(next_image + image_period, now)
                wall = time.monotonic()
                if wall - diag_wall >= 1.0:
                    self._publish_diagnostics((now - diag_sim) / (wall - diag_wall))
                    diag_wall, diag_sim = wall, now
            if cfg.real_time_factor > 0.0:
                ahead = anchor_wall + (now - anchor_sim) / cfg.real_time_factor - wall
                if ahead > 0.0:
                    self._stop.wait(ahead)
                elif ahead < -MAX_LAG_S:
                    anchor_wall, anchor_sim = wall, now
            else:
                time.sleep(0)  # let the executor thread take the GIL for commands

    def _apply_trajectory(self) -> None:
        if self._trajectory is None:
            return
        targets = self.sim.position_targets
        targets[self._trajectory.joints] = self._trajectory.sample(self.sim.time)
        self.sim.set_position_targets(targets)

    def _publish_state(self, stamp: Time, now: float) -> None:
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = list(self.joint_names)
        msg.position = self.sim.joint_positions.tolist()
        msg.velocity = self.sim.joint_velocities.tolist()
        self._joint_pub.publish(msg)
        task = Float64MultiArray()
        task.layout.dim = [MultiArrayDimension(
            label=','.join(TASK_STATE_LAYOUT), size=len(TASK_STATE_LAYOUT),
            stride=len(TASK_STATE_LAYOUT))]
        task.data = [now, float(self.sim.episode), *self.sim.target_position.tolist(),
                     *self.sim.ee_position.tolist(), self.sim.ee_distance]
        self._task_pub.publish(task)

    def _publish_camera(self, stream: CameraStream, now: float) -> None:
        if stream.depth:
            image = encode_depth(self.sim.render_depth(stream.camera),
                                 self.config.depth_encoding)
            encoding = self.config.depth_encoding
        else:
            image, encoding = self.sim.render(stream.camera), 'rgb8'
        # A delayed camera's first frames would be stamped before time 0: clamp to 0.
        delay = getattr(self.config, stream.delay_parameter) if stream.delay_parameter else 0.0
        stamp = to_time(max(0.0, now - delay))
        msg = Image()
        msg.header.stamp = stamp
        msg.header.frame_id = stream.info.header.frame_id
        msg.height, msg.width = image.shape[:2]
        msg.encoding = encoding
        msg.is_bigendian = int(sys.byteorder == 'big')
        msg.step = msg.width * image.itemsize * (image.shape[2] if image.ndim == 3 else 1)
        msg.data = image.tobytes()
        stream.image_pub.publish(msg)
        stream.info.header.stamp = stamp
        stream.info_pub.publish(stream.info)

    def _publish_diagnostics(self, achieved_rtf: float) -> None:
        status = DiagnosticStatus(
            level=DiagnosticStatus.OK, name=f'{NODE_NAME}: simulation', hardware_id=NODE_NAME,
            message='running')
        if self.rejected_trajectories or self.rejected_joint_commands:
            status.level, status.message = DiagnosticStatus.WARN, 'rejected commands'
        values = {
            'episode': self.sim.episode,
            'sim_time': f'{self.sim.time:.3f}',
            'real_time_factor_achieved': f'{achieved_rtf:.2f}',
            'rejected_trajectories': self.rejected_trajectories,
            'rejected_joint_commands': self.rejected_joint_commands,
        }
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = to_time(self.sim.time)
        self._diag_pub.publish(msg)


def main(args=None) -> None:
    """Run the twin until shut down."""
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = MujocoTwin()
        except ValueError as err:  # TwinParameterError, SimConfigError: a bad parameter
            rclpy.logging.get_logger(NODE_NAME).fatal(str(err))
            raise SystemExit(2) from err
        node.start()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise  # a signal's shutdown can surface as an RCLError in spin: not an error
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
