"""
mujoco_twin node: the reach arm in MuJoCo, speaking Isaac Sim's ROS 2 topics.

One thread owns the simulator: it advances physics, follows the active trajectory, and
publishes camera images, joint states, task state and /clock, all stamped with simulation
time. ROS callbacks (commands, reset) run in the executor and hand over under a lock.
"""
from __future__ import annotations

from dataclasses import dataclass
import importlib
import math
import os
import sys
import threading
import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
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
CAMERA_FRAME_ID = 'scene_camera_optical'
IMAGE_TOPIC = '/camera/image_raw'
CAMERA_INFO_TOPIC = '/camera/camera_info'
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

    def validate(self) -> None:
        """Raise TwinParameterError naming the parameter when a value is unusable."""
        for name in ('image_width', 'image_height'):
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


class MujocoTwin(Node):
    """The twin node; call start() to run the simulation thread."""

    def __init__(self, **kwargs) -> None:
        """Declare and validate parameters, load the scene, create publishers and services."""
        super().__init__(NODE_NAME, **kwargs)
        self.config = self._read_parameters()
        sim = import_sim(self.config.render_backend)
        self.sim = sim.ReachArmSim(
            sim.SimConfig(timestep=self.config.sim_dt, image_width=self.config.image_width,
                          image_height=self.config.image_height,
                          camera_fovy=self.config.camera_fovy),
            seed=self.config.seed)
        self.joint_names = sim.JOINT_NAMES
        self.rejected_trajectories = 0
        self.rejected_joint_commands = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._trajectory = None
        self._camera_info = self._make_camera_info()

        self._image_pub = self.create_publisher(Image, IMAGE_TOPIC, qos_profile_sensor_data)
        self._info_pub = self.create_publisher(
            CameraInfo, CAMERA_INFO_TOPIC, qos_profile_sensor_data)
        self._joint_pub = self.create_publisher(JointState, JOINT_STATES_TOPIC, 10)
        self._task_pub = self.create_publisher(Float64MultiArray, TASK_STATE_TOPIC, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._clock_pub = None
        if self.get_parameter('use_sim_time').value:
            self._clock_pub = self.create_publisher(Clock, '/clock', 10)
        self.create_subscription(JointTrajectory, TRAJECTORY_TOPIC, self._on_trajectory, 10)
        self.create_subscription(JointState, JOINT_COMMAND_TOPIC, self._on_joint_command, 10)
        self.create_service(Trigger, '~/reset', self._on_reset)
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
        }
        values = {}
        for name, doc in docs.items():
            default = getattr(defaults, name)
            # dynamic typing: a launch file's 30 must not be refused for want of 30.0
            descriptor = ParameterDescriptor(description=doc, dynamic_typing=True)
            value = self.declare_parameter(name, default, descriptor).value
            kind = type(default)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise TwinParameterError(
                    f'{NODE_NAME}.{name}: {value!r} ({type(value).__name__}), expected '
                    f'{kind.__name__}')
            values[name] = value
        config = TwinConfig(**values)
        config.validate()
        return config

    def _make_camera_info(self) -> CameraInfo:
        fx, fy, cx, cy = self.sim.camera_intrinsics()
        info = CameraInfo()
        info.header.frame_id = CAMERA_FRAME_ID
        info.width, info.height = self.config.image_width, self.config.image_height
        info.distortion_model = 'plumb_bob'
        info.d = [0.0] * 5
        info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

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
                    self._publish_image(self.sim.render(), stamp)
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

    def _publish_image(self, image: np.ndarray, stamp: Time) -> None:
        msg = Image()
        msg.header.stamp = stamp
        msg.header.frame_id = CAMERA_FRAME_ID
        msg.height, msg.width = image.shape[:2]
        msg.encoding = 'rgb8'
        msg.is_bigendian = 0
        msg.step = msg.width * 3
        msg.data = image.tobytes()
        self._image_pub.publish(msg)
        self._camera_info.header.stamp = stamp
        self._info_pub.publish(self._camera_info)

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
