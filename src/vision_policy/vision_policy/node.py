"""
policy_inference: the lifecycle node that runs a vision policy on a ROS 2 robot.

configure  loads and checks the model and its card, opens the subscriptions
activate   starts commanding once fresh, valid camera and joint data arrive
deactivate holds (publishes the measured positions once) and stops commanding

The node wires the pure core (core.py) to topics; it holds no numerical logic.
Whatever goes wrong with the inputs, the robot is held and the cause is counted
on /diagnostics.
"""

from __future__ import annotations

import array
import collections
import math
import signal
import sys
import time
from typing import Optional

from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from .action import SafetyLimits
from .card import CardError
from .core import InputError, JointMap, NonFiniteError, PolicyCore
from .image import ImageError, view_image
from .observation import extra_sources
from .runtime import DEFAULT_PROVIDERS, load_policy, ModelError, PolicyRuntime, RuntimeOptions


def _desc(text: str, lo: Optional[float] = None, hi: Optional[float] = None,
          integer: bool = False) -> ParameterDescriptor:
    d = ParameterDescriptor(description=text)
    if lo is not None and integer:
        d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    elif lo is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi))]
    return d


# name -> (default, description, range); every parameter the node reads.
PARAMETERS = {
    'model_path': ('', 'ONNX policy file', None),
    'card_path': ('', 'policy card YAML; empty: <model>.yaml beside the model, else the card '
                      'embedded in the ONNX metadata', None),
    'autostart': (False, 'configure and activate on start (no lifecycle manager needed)', None),
    'image_topic': ('/camera/image_raw', 'sensor_msgs/Image input', None),
    'joint_states_topic': ('/joint_states', 'sensor_msgs/JointState input', None),
    'trajectory_topic': ('/joint_trajectory_controller/joint_trajectory',
                         'trajectory_msgs/JointTrajectory output', None),
    'estop_topic': ('/emergency_stop', 'std_msgs/Bool; true holds the robot', None),
    'control_dt': (0.0, 'control period in s; 0 = the card control_dt', (0.0, 10.0)),
    'trigger': ('timer', "'timer' (fixed rate) or 'image' (one tick per new image)", None),
    'stamp_source': ('zero', "trajectory header.stamp: 'zero' (the controller starts it on "
                             "receipt) or 'image' (stamp of the image used; for tracing and "
                             'benchmarks, not for joint_trajectory_controller)', None),
    'providers': (list(DEFAULT_PROVIDERS), 'onnxruntime providers in order of preference',
                  None),
    'intra_op_threads': (1, 'onnxruntime intra-op threads', (1, 64)),
    'max_image_age': (0.2, 'hold when the latest image is older than this (s)', (0.001, 60.0)),
    'max_joint_state_age': (0.1, 'hold when the latest joint state is older than this (s)',
                            (0.001, 60.0)),
    'time_from_start': (0.0, 'time_from_start of the trajectory point in s; 0 = control period',
                        (0.0, 10.0)),
    'robot_joint_names': ([''], 'robot names of the card joints, in card order; empty = same '
                                'names', None),
    'position_lower_limits': ([-math.inf], 'per action joint (rad or m); one value = all '
                                           'joints; -inf = the card clip', None),
    'position_upper_limits': ([math.inf], 'per action joint; one value = all joints; inf = '
                                          'the card clip', None),
    'max_joint_step': ([0.1], 'largest change of a joint target per tick (rad or m)', None),
    # Extra sources, subscribed only when the card has a term that needs them (EXTRA_SOURCES).
    'imu_topic': ('/imu', 'sensor_msgs/Imu: base_ang_vel, projected_gravity', None),
    'odom_topic': ('/odom', 'nav_msgs/Odometry: base_lin_vel (twist in the body frame)', None),
    'cmd_vel_topic': ('/cmd_vel', 'geometry_msgs/Twist: velocity_commands [vx, vy, wz]', None),
    'max_extra_age': (0.2, 'hold when an IMU / odometry / cmd_vel sample is older than this '
                           '(s)', (0.001, 60.0)),
}
SAFETY_LIMITS = ('max_joint_step', 'position_lower_limits', 'position_upper_limits')
# Ranges in PARAMETERS are enforced by rclpy; these may change while the node runs.
RUNTIME_SETTABLE = ('max_image_age', 'max_joint_state_age', 'max_extra_age', *SAFETY_LIMITS)
WINDOW = 1000  # samples kept for the latency percentiles
STAGES = ('receive', 'preprocess', 'observation', 'inference', 'postprocess', 'publish')


class Counters:
    """Counts reported on /diagnostics; every dropped or rejected input lands in one."""

    NAMES = ('images_received', 'images_rejected', 'images_unused', 'joint_states_received',
             'joint_states_rejected', 'ticks', 'commands', 'holds', 'nonfinite_observations',
             'nonfinite_actions', 'clock_jumps', 'estops', 'extras_rejected')

    def __init__(self):
        for name in self.NAMES:
            setattr(self, name, 0)

    def items(self):
        """(name, value) pairs in a fixed order."""
        return [(n, getattr(self, n)) for n in self.NAMES]


class PolicyInferenceNode(LifecycleNode):
    """Camera + joint states -> policy -> JointTrajectory, held on any doubt."""

    def __init__(self, **kwargs):
        super().__init__('policy_inference', **kwargs)
        for name, (default, text, rng) in PARAMETERS.items():
            desc = _desc(text, *(rng or (None, None)), integer=isinstance(default, int) and
                         not isinstance(default, bool))
            self.declare_parameter(name, default, desc)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.counters = Counters()
        self.core: Optional[PolicyCore] = None
        self.error = ''
        self.hold_reason = 'inactive'
        self._reset_io_state()
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics)
        self._subs, self._timer, self._traj_pub = [], None, None
        self._active = False
        if self.get_parameter('autostart').value:
            self.trigger_configure()
            if self._state_machine.current_state[1] == 'inactive':
                self.trigger_activate()

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model and card, check them against each other, open the topics."""
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        try:
            self._configure(p)
        except (CardError, ModelError, ValueError) as exc:
            self.error = str(exc)
            self.core = None
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.error = ''
        self.get_logger().info(
            f'configured {self.core.card.name!r}: providers {self.core.runtime.providers}, '
            f'control_dt {self.control_dt:.4f} s, trigger {self.trigger!r}')
        return TransitionCallbackReturn.SUCCESS

    def _configure(self, p: dict) -> None:
        if not p['model_path']:
            raise ModelError('parameter model_path is empty: give the ONNX policy file')
        if p['trigger'] not in ('timer', 'image'):
            raise ValueError(f"trigger: expected 'timer' or 'image', found {p['trigger']!r}")
        if p['stamp_source'] not in ('zero', 'image'):
            raise ValueError(f"stamp_source: expected 'zero' or 'image', found "
                             f"{p['stamp_source']!r}")
        self.stamp_image = p['stamp_source'] == 'image'
        options = RuntimeOptions(providers=tuple(p['providers']),
                                 intra_op_threads=p['intra_op_threads'])
        session, card = load_policy(p['model_path'], p['card_path'], options)
        self.uses_camera = card.image is not None
        if p['trigger'] == 'image' and not self.uses_camera:
            raise ValueError("trigger: 'image' needs a card with a camera image; use 'timer'")
        limits = self._limits(card, p)
        robot_names = [n for n in p['robot_joint_names'] if n]
        needs_vel = any(t.name.startswith('joint_vel') for g in card.groups for t in g.terms)
        self.joint_map = JointMap(card.joint_names, robot_names or None, needs_vel)
        self.core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs),
                               limits)
        self.control_dt = p['control_dt'] or card.control_dt
        self.trigger = p['trigger']
        idx = [card.joint_names.index(j) for j in card.action.joint_names]
        self.command_names = [self.joint_map.robot_names[i] for i in idx]
        # Latest message is extracted into _pos_in/_vel_in; only a valid one is kept.
        self._pos_in, self._vel_in = np.zeros(len(card.joint_names)), np.zeros(
            len(card.joint_names))
        self._pos, self._vel = np.zeros_like(self._pos_in), np.zeros_like(self._vel_in)
        tfs = p['time_from_start'] or self.control_dt
        self._msg = JointTrajectory(joint_names=self.command_names)
        self._point = JointTrajectoryPoint(
            time_from_start=Duration(sec=int(tfs), nanosec=int(round((tfs % 1) * 1e9))))
        self._msg.points = [self._point]
        self._traj_pub = self.create_lifecycle_publisher(JointTrajectory,
                                                         p['trajectory_topic'], 10)
        self._subs = [
            self.create_subscription(JointState, p['joint_states_topic'], self._on_joint_state,
                                     QoSProfile(depth=1,
                                                reliability=ReliabilityPolicy.BEST_EFFORT)),
            self.create_subscription(Bool, p['estop_topic'], self._on_estop, 10),
        ]
        if self.uses_camera:
            self._subs.append(self.create_subscription(Image, p['image_topic'], self._on_image,
                                                       qos_profile_sensor_data))
        self._subs += self._extra_subscriptions(card, p)

    def _limits(self, card, p: dict) -> SafetyLimits:
        n = len(card.action.joint_names)
        lower, upper = list(p['position_lower_limits']), list(p['position_upper_limits'])
        if card.action.clip is not None:
            lower = [c[0] if math.isinf(v) else v for v, c in
                     zip(lower * n if len(lower) == 1 else lower, card.action.clip)]
            upper = [c[1] if math.isinf(v) else v for v, c in
                     zip(upper * n if len(upper) == 1 else upper, card.action.clip)]
        limits = SafetyLimits.build(n, lower, upper, p['max_joint_step'])
        if any(math.isinf(v) for v in limits.lower + limits.upper):
            raise ValueError('position limits: set position_lower_limits and '
                             'position_upper_limits (the card has no action clip to use)')
        return limits

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start commanding; the first command waits for fresh data."""
        self.core.reset()
        self._reset_io_state()
        self._active = True
        self.hold_reason = 'waiting for fresh data'
        if self.trigger == 'timer':
            self._timer = self.create_timer(self.control_dt, self._on_timer)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Hold the robot at its measured positions, then stop commanding."""
        self._hold('inactive')
        self._active = False
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Close the topics and drop the model."""
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._traj_pub is not None:
            self.destroy_lifecycle_publisher(self._traj_pub)
            self._traj_pub = None
        self.core = None
        self.hold_reason = 'inactive'
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Hold if active, then release everything."""
        if self._active:
            self._hold('shutdown')
            self._active = False
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ inputs
    def _reset_io_state(self) -> None:
        self._image = None          # (view, encoding, stamp_ns, receive seq)
        self._image_seq = 0
        self._joint_stamp = None
        self._joint_ok = False
        self._joint_seq = 0
        self._estop = False
        self._holding = False
        self._hold_sent = False
        self._resume_after = (0, 0)  # (image seq, joint seq) that must be exceeded
        self._last_now = None
        self._image_used = True
        self._rates = {'image': collections.deque(maxlen=50),
                       'joint_states': collections.deque(maxlen=200)}
        self._latency = collections.deque(maxlen=WINDOW)
        # Seconds per stage of the last WINDOW ticks, and the timer's tick intervals.
        self._stages = {name: collections.deque(maxlen=WINDOW) for name in STAGES}
        self._tick_times = collections.deque(maxlen=WINDOW)
        self.missed_ticks = 0

    def _now_ns(self) -> int:
        """Read the node clock; a jump backwards (simulator reset) resets all policy state."""
        now = self.get_clock().now().nanoseconds
        if self._last_now is not None and now < self._last_now:
            self.counters.clock_jumps += 1
            self.core.reset()
            self._image, self._joint_stamp = None, None
            self._extra_stamps = dict.fromkeys(self._extra_stamps)
            self.get_logger().warn('clock jumped backwards: policy state reset')
        self._last_now = now
        return now

    def _stamp_ok(self, stamp, last_ns: Optional[int], max_age: float) -> Optional[str]:
        ns = stamp.sec * 1_000_000_000 + stamp.nanosec
        now = self._last_now
        if ns <= 0:
            return 'zero stamp'
        if ns - now > max_age * 1e9:
            return 'stamp in the future'
        if last_ns is not None and ns < last_ns:
            return 'stamp going backwards'
        return None

    def _on_image(self, msg: Image) -> None:
        t0 = time.perf_counter()
        self.counters.images_received += 1
        self._rates['image'].append(time.monotonic())
        if self.core is None:
            return
        self._now_ns()
        last = self._image[2] if self._image else None
        problem = self._stamp_ok(msg.header.stamp, last, self._param('max_image_age'))
        view = None
        if problem is None:
            try:
                view = view_image(msg.data, msg.width, msg.height, msg.encoding, msg.step,
                                  bool(msg.is_bigendian))
                self.core.pipeline.check_source(msg.encoding, msg.width, msg.height)
            except ImageError as exc:
                problem = str(exc)
        if problem is not None:
            self.counters.images_rejected += 1
            self.get_logger().warn(f'image rejected: {problem}', throttle_duration_sec=1.0)
            return
        if not self._image_used:
            self.counters.images_unused += 1
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self._image_seq += 1
        self._image = (view, msg.encoding, stamp_ns, self._image_seq)
        self._image_used = False
        self._stages['receive'].append(time.perf_counter() - t0)
        if self.trigger == 'image' and self._active:
            self._tick()

    def _on_joint_state(self, msg: JointState) -> None:
        self.counters.joint_states_received += 1
        self._rates['joint_states'].append(time.monotonic())
        if self.core is None:
            return
        self._now_ns()
        problem = self._stamp_ok(msg.header.stamp, self._joint_stamp,
                                 self._param('max_joint_state_age'))
        if problem is None:
            try:
                self.joint_map.extract(msg.name, msg.position, msg.velocity, self._pos_in,
                                       self._vel_in)
            except InputError as exc:
                problem = str(exc)
                self._joint_ok = False  # e.g. a required joint is missing: hold
        if problem is not None:
            self.counters.joint_states_rejected += 1
            self.get_logger().warn(f'joint_states rejected: {problem}',
                                   throttle_duration_sec=1.0)
            return
        self._pos[:], self._vel[:] = self._pos_in, self._vel_in
        self._joint_ok = True
        self._joint_stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self._joint_seq += 1

    def _on_estop(self, msg: Bool) -> None:
        if msg.data and not self._estop:
            self.counters.estops += 1
            self.get_logger().warn('emergency stop: holding')
        self._estop = bool(msg.data)
        if self._estop and self._active:
            self._hold('emergency stop')

    # ------------------------------------------------------------------ control
    def _on_timer(self) -> None:
        now = time.perf_counter()
        if self._tick_times:
            interval = now - self._tick_times[-1]
            if interval > 1.5 * self.control_dt:
                self.missed_ticks += int(interval / self.control_dt + 0.5) - 1
        self._tick_times.append(now)
        self._tick()

    def _param(self, name: str):
        return self.get_parameter(name).value

    def _hold_reason(self, now_ns: int) -> Optional[str]:
        if self._estop:
            return 'emergency stop'
        if self.uses_camera and self._image is None:
            return 'no valid image'
        if self._joint_stamp is None:
            return 'no valid joint state'
        if not self._joint_ok:
            return 'invalid joint state'
        if self.uses_camera and (now_ns - self._image[2]) * 1e-9 > self._param('max_image_age'):
            return 'image too old'
        if (now_ns - self._joint_stamp) * 1e-9 > self._param('max_joint_state_age'):
            return 'joint state too old'
        reason = self._extra_hold_reason(now_ns)
        if reason is not None:
            return reason
        if self._holding and (self.uses_camera and self._image_seq <= self._resume_after[0] or
                              self._joint_seq <= self._resume_after[1]):
            return self.hold_reason  # stay held until data newer than the hold arrives
        return None

    # ------------------------------------------------------------------ extra sources
    # IMU / odometry / velocity command, for cards imported from Isaac Lab (observation.py
    # TERM_SOURCES). Values go straight into the core's Sample.extras; a missing or stale
    # source holds the robot like a stale joint state.
    def _extra_subscriptions(self, card, p: dict) -> list:
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import Imu
        sources = extra_sources(card)
        self._extra_stamps = dict.fromkeys(sources)
        table = {'imu': (Imu, 'imu_topic', self._on_imu, qos_profile_sensor_data),
                 'odom': (Odometry, 'odom_topic', self._on_odom, qos_profile_sensor_data),
                 'cmd_vel': (Twist, 'cmd_vel_topic', self._on_cmd_vel, 10)}
        return [self.create_subscription(table[s][0], p[table[s][1]], table[s][2], table[s][3])
                for s in sources]

    def _extra_stamp(self, source: str, stamp) -> bool:
        self._now_ns()
        problem = self._stamp_ok(stamp, self._extra_stamps.get(source),
                                 self._param('max_extra_age'))
        if problem is not None:
            self.counters.extras_rejected += 1
            self.get_logger().warn(f'{source} rejected: {problem}', throttle_duration_sec=1.0)
            return False
        self._extra_stamps[source] = stamp.sec * 1_000_000_000 + stamp.nanosec
        return True

    def _on_imu(self, msg) -> None:
        if self.core is None or not self._extra_stamp('imu', msg.header.stamp):
            return
        o, w = msg.orientation, msg.angular_velocity
        self.core.sample.extras['imu_orientation'] = np.array([o.x, o.y, o.z, o.w])
        self.core.sample.extras['imu_angular_velocity'] = np.array([w.x, w.y, w.z])

    def _on_odom(self, msg) -> None:
        if self.core is None or not self._extra_stamp('odom', msg.header.stamp):
            return
        v = msg.twist.twist.linear
        self.core.sample.extras['base_lin_vel'] = np.array([v.x, v.y, v.z])

    def _on_cmd_vel(self, msg) -> None:
        if self.core is None:
            return
        # Twist has no header: its age is counted from reception.
        self._extra_stamps['cmd_vel'] = self.get_clock().now().nanoseconds
        self.core.sample.extras['velocity_command'] = np.array(
            [msg.linear.x, msg.linear.y, msg.angular.z])

    def _extra_hold_reason(self, now_ns: int) -> Optional[str]:
        for source, stamp in getattr(self, '_extra_stamps', {}).items():
            if stamp is None:
                return f'no valid {source}'
            if abs(now_ns - stamp) * 1e-9 > self._param('max_extra_age'):
                return f'{source} too old'
        return None

    def _tick(self) -> None:
        self.counters.ticks += 1
        now_ns = self._now_ns()
        reason = self._hold_reason(now_ns)
        if reason is not None:
            self._hold(reason)
            return
        if self._holding:
            self._holding = False
            self.core.reset()
            self.get_logger().info('fresh data: commanding resumes')
        t0 = time.perf_counter()
        try:
            if self.uses_camera:
                view, encoding, stamp_ns, _ = self._image
                image = self.core.pipeline.process(view, encoding)
            else:
                image, stamp_ns = None, self._joint_stamp
            t1 = time.perf_counter()
            command = self.core.step(self._pos, self._vel, image)
        except NonFiniteError as exc:
            if 'observation' in str(exc):
                self.counters.nonfinite_observations += 1
            else:
                self.counters.nonfinite_actions += 1
            self.error = str(exc)
            self._hold(str(exc))
            return
        stages = self._stages
        stages['preprocess'].append(t1 - t0)
        stages['observation'].append(self.core.timing[0])
        stages['inference'].append(self.core.timing[1])
        stages['postprocess'].append(self.core.timing[2])
        self._image_used = True
        self._point.positions = array.array('d', command)
        if self.stamp_image:
            stamp = self._msg.header.stamp
            stamp.sec, stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        t2 = time.perf_counter()
        self._traj_pub.publish(self._msg)
        self._hold_sent = False
        stages['publish'].append(time.perf_counter() - t2)
        self.counters.commands += 1
        self._latency.append((self.get_clock().now().nanoseconds - stamp_ns) * 1e-9)
        self.hold_reason = self.error = ''

    def _hold(self, reason: str) -> None:
        """Publish the measured positions once, then command nothing until fresh data."""
        self._holding = True
        # One hold message per hold: a failed resume (e.g. a model that keeps returning NaN)
        # does not repeat it, since nothing was commanded in between.
        if not self._hold_sent:
            self._hold_sent = True
            self.counters.holds += 1
            self.get_logger().warn(f'holding the robot: {reason}', throttle_duration_sec=1.0)
            if self._joint_stamp is not None and self._traj_pub is not None and self.core:
                held = self._pos[self.core.action_index]
                held = np.clip(held, self.core.safety.lower, self.core.safety.upper)
                self._point.positions = array.array('d', held)
                self._msg.header.stamp.sec = self._msg.header.stamp.nanosec = 0  # start now
                self._traj_pub.publish(self._msg)
        self.hold_reason = reason
        self._resume_after = (self._image_seq, self._joint_seq)

    # ------------------------------------------------------------------ parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        configured = self._state_machine.current_state[1] != 'unconfigured'
        for param in params:
            if configured and param.name not in RUNTIME_SETTABLE and param.name != 'use_sim_time':
                return SetParametersResult(
                    successful=False, reason=f'{param.name} takes effect at configure: '
                                             f'deactivate and clean up the node first')
            if self.core is not None and param.name in SAFETY_LIMITS:
                values = {n: self.get_parameter(n).value for n in SAFETY_LIMITS}
                values[param.name] = param.value
                try:
                    limits = self._limits(self.core.card, values)
                except ValueError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
                safety = self.core.safety
                safety.lower[:], safety.upper[:] = limits.lower, limits.upper
                safety.max_step[:] = limits.max_step
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ diagnostics
    def _rate(self, key: str) -> float:
        stamps = self._rates[key]
        if len(stamps) < 2 or time.monotonic() - stamps[-1] > 2.0:
            return 0.0
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    def diagnostics(self) -> DiagnosticStatus:
        """Report the node's status: state, rates, ages, timings and counters."""
        state = self._state_machine.current_state[1]
        now = self.get_clock().now().nanoseconds
        status = DiagnosticStatus(name=f'{self.get_name()}: policy inference',
                                  hardware_id=self.core.card.name if self.core else '')
        if self.error and self.core is None:
            status.level, status.message = DiagnosticStatus.ERROR, f'{state}: {self.error}'
        elif state == 'active' and self.hold_reason:
            # A non-finite observation or action is an error of the model or its inputs.
            status.level = DiagnosticStatus.ERROR if self.error else DiagnosticStatus.WARN
            status.message = f'holding: {self.hold_reason}'
        else:
            status.level, status.message = DiagnosticStatus.OK, state
        values = [('state', state), ('hold_reason', self.hold_reason), ('last_error', self.error),
                  ('image_rate_hz', f'{self._rate("image"):.1f}'),
                  ('joint_state_rate_hz', f'{self._rate("joint_states"):.1f}')]
        if self._image is not None:
            values.append(('image_age_s', f'{(now - self._image[2]) * 1e-9:.4f}'))
        if self._joint_stamp is not None:
            values.append(('joint_state_age_s', f'{(now - self._joint_stamp) * 1e-9:.4f}'))
        series = [('latency_ms', self._latency)] + [
            (f'{name}_ms', data) for name, data in self._stages.items()]
        if len(self._tick_times) > 1:
            jitter = np.abs(np.diff(np.asarray(self._tick_times)) - self.control_dt)
            series.append(('tick_jitter_ms', jitter))
            values.append(('missed_ticks', str(self.missed_ticks)))
        for label, data in series:
            if len(data):
                p50, p90, p99 = np.percentile(np.asarray(data) * 1e3, (50, 90, 99))
                values += [(f'{label}_p50', f'{p50:.3f}'), (f'{label}_p90', f'{p90:.3f}'),
                           (f'{label}_p99', f'{p99:.3f}')]
        values += [(k, str(v)) for k, v in self.counters.items()]
        if self.core is not None:
            values.append(('providers', ','.join(self.core.runtime.providers)))
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        return status

    def _publish_diagnostics(self) -> None:
        msg = DiagnosticArray(status=[self.diagnostics()])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def main(args: Optional[list] = None) -> int:
    """Run the node until interrupted."""
    # rclpy's own SIGINT handler would invalidate the context before the node could
    # send its final hold; handle Ctrl-C here instead.
    rclpy.init(args=args, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    node = PolicyInferenceNode()
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        if node._active:
            node._hold('shutdown')
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
