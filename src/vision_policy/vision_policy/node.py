"""
policy_inference: the lifecycle node that runs a vision policy on a ROS 2 robot.

configure  loads and checks the model and its card, opens the subscriptions
activate   starts commanding once fresh, valid inputs arrive
deactivate holds (publishes the measured positions once) and stops commanding

ROS wiring only: the tick is ``PolicyCore`` (core.py), freshness and holds are
``InputMonitor`` (monitor.py), parameters ``NodeParams`` (params.py), statistics
``NodeStats`` (stats.py). Whatever goes wrong with the inputs, the robot is held and the
cause is counted on /diagnostics.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
import threading
import time
from typing import Optional

from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
# np.percentile's first call (np.unique -> np.ma.is_masked) imports numpy.ma: 40-66 ms on
# the executor thread of the H200 host, at the first diagnostics with figures, which missed
# 2-4 ticks at start-up there. Loaded with the node instead.
import numpy.ma  # noqa: F401, I100
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.experimental import EventsExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from .action import ActionTermError
from .camera import camera_from_info, CameraError, FrameSizeError, needs_camera_info
from .card import actuator_text, CardError
from .core import InputError, JointMap, NonFiniteError, PolicyCore
from .encoder import EncoderRuntime
from .frame_loss import FrameLossCounter
from .frame_worker import FrameWorker
from .heap import HeapWatch, keep_freed_frames
from .image import ImageError, limit_blas_threads
from .image_cdr import parse_image
from .monitor import Ages, camera_input, ClockState, ClockWatch, Hold, HoldReason, IMAGE, \
    InputMonitor, JOINTS
from .observation import ExtraSourceError, TermError
from .params import NodeParams, ParameterError, PARAMETERS, SAFETY_LIMITS, SPECS
from .realtime import (default_scheduler, lock_memory, policy, RealtimeError, use_default,
                       use_fifo)
from .recording import camera_info_input, check_record_path, CLOCK, Recorder, RecordingInfo
from .registry import load_registry, OBSERVATION_GROUP
from .runtime import load_encoder, load_policy, ModelError, PolicyRuntime, RuntimeOptions
from .sources import get_source
from .stats import NodeStats
from .trajectory_cdr import SerializedTrajectory
from .transport import loss_hint, PROFILE_NAME, profile_path, ProfileNotFoundError


def _descriptor(spec) -> ParameterDescriptor:
    d = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.range is not None and isinstance(spec.default, int) and \
            not isinstance(spec.default, bool):
        d.integer_range = [IntegerRange(from_value=spec.range[0], to_value=spec.range[1],
                                        step=1)]
    elif spec.range is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.range[0]),
                                                     to_value=float(spec.range[1]))]
    return d


def _message_class(msg_type: str):
    """'sensor_msgs/msg/Imu' -> the message class."""
    package, kind, name = msg_type.split('/')
    return getattr(importlib.import_module(f'{package}.{kind}'), name)


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class PolicyInferenceNode(LifecycleNode):
    """Camera + joint states -> policy -> JointTrajectory, held on any doubt."""

    def __init__(self, **kwargs):
        super().__init__('policy_inference', **kwargs)
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, _descriptor(spec))
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self.params: Optional[NodeParams] = None   # read at configure
        self.core: Optional[PolicyCore] = None
        self.monitor = InputMonitor(())
        self.stats = NodeStats()
        self.error = ''
        self._active = False
        self._joint_map: Optional[JointMap] = None
        self._sources = {}            # source name -> Source, the ones the card needs
        self._subs, self._timer, self._traj_pub = [], None, None
        # Ticks and the transitions that hold (deactivate, shutdown, e-stop, clock stop) may
        # run on different executor threads (a multi-threaded executor, tests).
        self._lock = threading.RLock()
        self._recorder: Optional[Recorder] = None  # record_path: writes on its own thread
        self._pos = self._vel = self._pos_in = self._vel_in = None  # card joint order
        self._trajectory = None  # the one trajectory message, reused
        self._image_stamp_ns = {}     # camera -> stamp of the frame the core holds
        self._unused = set()          # cameras whose installed frame no tick has used yet
        # Per camera: frames the camera sent that never reached this node (stamp gaps).
        self._frame_loss = {}
        self._loss_hints = {}         # camera -> the likely cause of its lost frames, if any
        self._shipped_profile = PROFILE_NAME  # the large-image profile a hint points at
        self._frame_bytes = {}        # camera -> size of its last serialized frame
        self._heap = HeapWatch()      # gives back the memory a pile-up of frames leaves
        self._scheduling = policy()   # of the executor thread (schedule_executor_thread)
        self._memory_locked = 'no'    # lock_process_memory
        # On the timer, frames are preprocessed here, off the executor: a tick never waits
        # for a resize.
        self._worker = FrameWorker(self._install_frame, 'policy_inference_frames')
        wall = Clock(clock_type=ClockType.STEADY_TIME)
        self._clock_watch = ClockWatch(False, 2.0)
        self._clock_state = ClockState.RUNNING
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # Wall time: diagnostics and the clock watch run even when /clock is absent.
        self._diag_timer = self.create_timer(1.0, self._on_wall_timer, clock=wall)
        if self.get_parameter('autostart').value:
            self.trigger_configure()
            if self._state_machine.current_state[1] == 'inactive':
                self.trigger_activate()

    def lock_process_memory(self) -> None:
        """Lock the process's memory in RAM (mlockall) if lock_memory is true."""
        if not self.get_parameter('lock_memory').value:
            return
        try:
            self._memory_locked = f'yes, {lock_memory() / 1e6:.0f} MB at start'
        except RealtimeError as exc:
            self.get_logger().warn(f'{exc}; memory is not locked')
            return
        self.get_logger().info(f'memory locked: {self._memory_locked}')

    def schedule_executor_thread(self) -> None:
        """
        Run the calling thread, the executor's, under SCHED_FIFO if realtime_priority > 0.

        The frame worker runs one priority below: it holds the GIL and, briefly, the lock a
        tick needs, and a worker preempted there by another process would stall the tick.
        """
        priority = self.get_parameter('realtime_priority').value
        if priority:
            try:
                use_fifo(priority)
                use_fifo(max(1, priority - 1), self._worker.native_id)
            except RealtimeError as exc:
                use_default()
                self.get_logger().warn(f'realtime_priority: {exc}; the control timer runs '
                                       f'under the default scheduler')
        self._scheduling = f'{policy()} (frame worker {policy(self._worker.native_id)})'
        self.get_logger().info(f'executor thread: {self._scheduling}')

    @property
    def hold(self) -> Optional[Hold]:
        """Return why the robot is held now (None: commanding)."""
        return self.monitor.hold

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model and card, check them against each other, open the topics."""
        try:
            # A lifecycle configure runs on the executor thread: the threads it starts
            # (onnxruntime's, the recorder's) must not inherit its SCHED_FIFO.
            with default_scheduler():
                self._configure()
        except (CardError, ModelError, ParameterError, ValueError) as exc:
            self._release()
            self.error = str(exc)
            self.get_logger().error(f'configure failed: {exc}')
            return TransitionCallbackReturn.FAILURE
        self.error = ''
        p, core = self.params, self.core
        self.get_logger().info(
            f'configured {core.card.name!r}: providers {core.providers}, control_dt '
            f'{p.control_dt:.4f} s, trigger {p.trigger!r}, inputs {list(self.monitor.inputs)},'
            f' limits lower {list(core.limits.lower)} upper {list(core.limits.upper)} '
            f'max step {list(core.limits.max_step)}')
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        p = NodeParams.from_values({s.name: self.get_parameter(s.name).value
                                    for s in PARAMETERS})
        if not p.model_path:
            raise ModelError('parameter model_path is empty: give the ONNX policy file')
        if p.record_path:
            check_record_path(p.record_path)  # before any topic is opened
        # Code runs only from installed entry points and the modules the operator lists.
        registry = load_registry(p.plugin_modules)
        options = RuntimeOptions(providers=p.providers, intra_op_threads=p.intra_op_threads,
                                 cuda_graph=p.cuda_graph)
        session, card = load_policy(p.model_path, p.card_path, options)
        encoder = load_encoder(p.model_path, card, options)  # None: a one-model card
        p = p.with_card(card)
        core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs,
                                                             registry=registry),
                          p.limits(card), registry,
                          lambda inputs: EncoderRuntime(encoder, card, inputs))
        if core.velocity_joints:
            # The trajectory carries positions: a velocity target there would be obeyed as a
            # position. Refuse rather than command the wrong quantity.
            raise ModelError(f'the card commands joint velocities for '
                             f'{list(core.velocity_joints)}; policy_inference publishes '
                             f'position trajectories only')
        uses_camera = IMAGE in core.needs
        if p.trigger == 'image' and not uses_camera:
            raise ParameterError("trigger: 'image' needs a card with a camera image; "
                                 "use 'timer'")
        self._joint_map = JointMap(card.joint_names, p.robot_joint_names or None,
                                   needs_velocity='joint_vel' in core.needs)
        self._sources = {name: get_source(name, registry) for name in
                         sorted(core.needs - {IMAGE, 'joint_vel'})}
        self._log_plugins(registry, card)
        self.params, self.core = p, core
        cameras = list(core.cameras) if uses_camera else []
        self.monitor = InputMonitor([JOINTS] + [camera_input(c) for c in cameras] +
                                    list(self._sources), p.camera_skew(card))
        self._frame_loss = {c: FrameLossCounter() for c in cameras}
        self._loss_hints = dict.fromkeys(cameras)
        try:
            self._shipped_profile = profile_path()
        except ProfileNotFoundError:
            pass  # the hint names the file alone
        # The latest message is extracted into _pos_in/_vel_in; only a valid one is kept.
        self._pos_in, self._vel_in, self._pos, self._vel = np.zeros((4, len(card.joint_names)))
        tfs = p.time_from_start or p.control_dt
        robot_names = self._joint_map.robot_names
        # Kept serialized: a command only patches its stamp and positions (trajectory_cdr).
        self._trajectory = SerializedTrajectory(
            [robot_names[card.joint_names.index(j)] for j in core.action_joint_names],
            Duration(sec=int(tfs), nanosec=int(round((tfs % 1) * 1e9))))
        self._traj_pub = self.create_lifecycle_publisher(JointTrajectory, p.trajectory_topic,
                                                         10)
        best_effort = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        subs = {JOINTS: self.create_subscription(JointState, p.joint_states_topic,
                                                 self._on_joint_state, best_effort),
                'estop': self.create_subscription(Bool, p.estop_topic, self._on_estop, 10)}
        for camera in cameras:
            # A raw subscription: the CDR bytes are viewed in place (image_cdr); rclpy's
            # deserialisation would copy every pixel (3.8 ms for a 1080p frame). Depth 1:
            # only the newest frame is worth preprocessing. With the sensor-data depth of 5
            # every stall filled DDS's sample pool with frames that it then kept (1080p:
            # 24.7 MB more in use after one 0.3 s stall), and trigger image commanded on
            # each stale one in turn. A frame replaced there counts as images_lost.
            subs[camera_input(camera)] = self.create_subscription(
                Image, self._camera_topic(camera, 'image_topic', 'image_raw'),
                lambda data, c=camera: self._on_image(c, data), best_effort, raw=True)
        for source in self._sources.values():
            subs[source.name] = self._subscribe_source(source)
        self._subs = list(subs.values())
        for camera in cameras:
            if needs_camera_info(core.cameras[camera].spec, p.fov_matching, p.undistort):
                # Hold until the real camera's calibration gives the crop / depth rays.
                sub = self.create_subscription(
                    CameraInfo, self._camera_topic(camera, 'camera_info_topic', 'camera_info'),
                    lambda msg, c=camera: self._on_camera_info(c, msg), qos_profile_sensor_data)
                self._subs.append(sub)
                subs[camera_info_input(camera)] = sub  # recorded when it changes the setup
                self.monitor.set_condition(f'camera_info {camera}'.strip(), Hold(
                    HoldReason.NO_CAMERA_INFO, sub.topic_name))
        if p.record_path:
            topics = {n: sub.topic_name for n, sub in subs.items()}
            if self.get_parameter('use_sim_time').value:
                topics[CLOCK] = '/clock'  # the recorder writes the clock of every tick
            self._recorder = Recorder(p.record_path, RecordingInfo.for_core(
                core, p.model_path, topics, p.robot_joint_names,
                f'{self.get_fully_qualified_name()}/tick', vars(p)))

    def _camera_topic(self, camera: str, parameter: str, default: str) -> str:
        """Return a camera's topic: image_topic etc. for the unnamed, <name>_... for others."""
        if not camera:
            return self.get_parameter(parameter).value
        name = f'{camera}_{parameter}'
        if not self.has_parameter(name):
            self.declare_parameter(name, f'{camera}/{default}', ParameterDescriptor(
                description=f'camera {camera!r} of the card: {parameter}'))
        return self.get_parameter(name).value

    def _log_plugins(self, registry, card) -> None:
        """Log where each term not built in came from, and the training actuators."""
        for group in card.groups:
            for term in group.terms:
                if not registry.is_builtin(OBSERVATION_GROUP, term.name):
                    self.get_logger().info(f'term {group.name}/{term.name}: '
                                           f'{registry.origin(OBSERVATION_GROUP, term.name)}')
        if card.actuators:
            # A controller whose gains differ from training's is a different robot to it.
            self.get_logger().info('training actuators (match the robot controller to them): '
                                   + '; '.join(f'{j}: {actuator_text(a)}'
                                               for j, a in card.actuators.items()))

    def _stop_recording(self) -> None:
        if self._recorder is not None:
            self._recorder.close()
            if self._recorder.error or self._recorder.dropped:
                self.get_logger().warn(f'recording {self._recorder.path}: dropped '
                                       f'{self._recorder.dropped} items {self._recorder.error}')
            self._recorder = None

    def destroy_node(self) -> None:
        """Stop the frame worker, finish the recording, if any, then destroy the node."""
        self._worker.stop()
        self._stop_recording()
        super().destroy_node()

    def _subscribe_source(self, source):
        if not self.has_parameter(source.topic_parameter):
            self.declare_parameter(source.topic_parameter, source.default_topic,
                                   ParameterDescriptor(description=f'{source.msg_type}: '
                                                                   f'{source.description}'))
        topic = self.get_parameter(source.topic_parameter).value
        qos = qos_profile_sensor_data if source.qos == 'sensor_data' else 10
        return self.create_subscription(_message_class(source.msg_type), topic,
                                        lambda msg: self._on_source(source, msg), qos)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start commanding; the first command waits for fresh data."""
        with self._lock:
            self.core.reset()
            self.monitor.reset()
            for loss in self._frame_loss.values():
                loss.reset()
        self.monitor.start_hold(Hold(HoldReason.WAITING))
        self.monitor.hold_sent = False  # nothing was commanded yet: no hold message due
        self._active = True
        timer = self.params.trigger == 'timer'
        self.stats.reset_timing(self.params.control_dt if timer else None)
        if timer:
            self._timer = self.create_timer(self.params.control_dt, self._on_timer)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Hold the robot at its measured positions, then stop commanding."""
        with self._lock:
            self._hold(Hold(HoldReason.INACTIVE))
            self._stop_commanding()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Close the topics and drop the model."""
        self._release()
        return super().on_cleanup(state)

    def _release(self) -> None:
        """Close what configure opened (also after a configure that failed half-way)."""
        self._worker.clear()
        self._frame_bytes.clear()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._traj_pub is not None:
            self.destroy_lifecycle_publisher(self._traj_pub)
            self._traj_pub = None
        self._stop_recording()
        with self._lock:
            self.core = None
            self.monitor = InputMonitor(())

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Hold if active, then release everything."""
        self.shutdown_hold()
        return TransitionCallbackReturn.SUCCESS

    def shutdown_hold(self, timeout: float = 0.5) -> None:
        """Send the final hold (if commanding) and wait until subscribers have it."""
        with self._lock:
            if not self._active:
                return
            self._hold(Hold(HoldReason.SHUTDOWN))
            self._stop_commanding()
        if self._traj_pub is not None:
            self._traj_pub.wait_for_all_acked(rclpy.duration.Duration(seconds=timeout))

    def _stop_commanding(self) -> None:
        self._active = False
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    # ------------------------------------------------------------------ inputs
    def _observe_clock(self) -> int:
        """Read the node clock; a jump backwards (simulator reset) resets all policy state."""
        now = self.get_clock().now().nanoseconds
        if self.monitor.observe_clock(now):
            self.stats.counters.clock_jumps += 1
            self.core.reset()
            self.get_logger().warn('clock jumped backwards: policy state reset')
        return now

    def _reject(self, counter: str, what: str, problem: str) -> None:
        setattr(self.stats.counters, counter, getattr(self.stats.counters, counter) + 1)
        self.get_logger().warn(f'{what} rejected: {problem}', throttle_duration_sec=1.0)

    def _on_image(self, camera: str, serialized: bytes) -> None:
        """Check the frame's header; preprocess it here (trigger image) or on the worker."""
        t0 = time.perf_counter()
        self.stats.counters.images_received += 1
        self._frame_bytes[camera] = len(serialized)
        self.stats.rates['image'].add(time.monotonic())
        with self._lock:
            core = self.core
            if core is None:
                return
            self._observe_clock()
            try:
                frame = parse_image(serialized)
            except ImageError as exc:
                self._reject('images_rejected', 'image', str(exc))
                return
            self._frame_loss[camera].add(frame.stamp_ns)
            name = camera_input(camera)
            problem = self.monitor.check_stamp(name, frame.stamp_ns, self.params.max_image_age)
            if problem is not None:
                self._reject('images_rejected', name, problem)
                return
            self.stats.stages['receive'].append(time.perf_counter() - t0)
        # The serialized bytes stay alive with the frame that views them.
        item = (core, frame, serialized)
        if self.params.trigger == 'image':
            # The tick follows this frame: preprocess it here, without a thread hand-off.
            self._install_frame(camera, item)
        elif not self._worker.submit(camera, item):
            with self._lock:
                self.stats.counters.images_superseded += 1

    def _install_frame(self, camera: str, item) -> None:
        """Preprocess a frame (worker thread; trigger image: here), install it under the lock."""
        core, frame, serialized = item
        condition = f'camera_frame {camera}'.strip()
        try:
            result = core.preprocess(frame.pixels, frame.encoding, camera)
        except ImageError as exc:
            with self._lock:
                self._reject('images_rejected', camera_input(camera), str(exc))
                if isinstance(exc, FrameSizeError):  # camera_info describes another camera
                    self.monitor.set_condition(condition, Hold(HoldReason.CAMERA_INFO_INVALID,
                                                               str(exc)))
            return
        with self._lock:
            if core is not self.core:
                return  # configured again (or cleaned up) meanwhile
            runs = core.encoder.runs if core.encoder is not None else 0
            # An encoder whose terms fail on this frame leaves it unencoded: the next tick
            # retries and holds with the term's error (core.step).
            if not core.set_frame(result):
                self.stats.counters.images_unused += 1  # cropped for a camera since replaced
                return
            self.monitor.set_condition(condition, None)
            if camera in self._unused:
                self.stats.counters.images_unused += 1
            self._unused.add(camera)
            self._image_stamp_ns[camera] = frame.stamp_ns
            self.monitor.accept(camera_input(camera), frame.stamp_ns)
            if self._recorder is not None:  # when installed: the order the ticks saw
                self._recorder.add_input(camera_input(camera), serialized,
                                         self.get_clock().now().nanoseconds, reliable=False,
                                         type_name='sensor_msgs/msg/Image')
            self.stats.stages['preprocess'].append(result.seconds)
            if core.encoder is not None and core.encoder.runs > runs:
                self.stats.stages['encoder'].append(core.timing['encoder'])
            if self.params.trigger == 'image' and self._active:
                self._tick()

    def _on_camera_info(self, camera: str, msg: CameraInfo) -> None:
        with self._lock:
            if self.core is None:
                return
            roi = msg.roi
            condition = f'camera_info {camera}'.strip()
            try:
                real, warnings = camera_from_info(
                    msg.width, msg.height, msg.k, msg.d, msg.binning_x, msg.binning_y,
                    (roi.x_offset, roi.y_offset, roi.width, roi.height),
                    msg.distortion_model, self.params.undistort)
                setup = self.core.update_camera(real, self.params.fov_matching, warnings,
                                                camera)
            except CameraError as exc:
                self.stats.counters.camera_infos_rejected += 1
                self.error = str(exc)
                self.get_logger().error(f'camera_info rejected: {exc}',
                                        throttle_duration_sec=5.0)
                self.monitor.set_condition(condition, Hold(HoldReason.CAMERA_INFO_INVALID,
                                                           str(exc)))
                return
            self.monitor.set_condition(condition, None)
            if setup is not None:
                if self._recorder is not None:  # replay sets its core up from it
                    self._recorder.add_input(camera_info_input(camera), msg,
                                             self.get_clock().now().nanoseconds,
                                             reliable=False)
                # The frame held was preprocessed without this crop.
                self.monitor.forget(camera_input(camera))
                self.get_logger().info(setup.text())
                for warning in setup.warnings:
                    self.get_logger().warn(warning)

    def _on_joint_state(self, msg: JointState) -> None:
        self.stats.counters.joint_states_received += 1
        self.stats.rates['joint_states'].add(time.monotonic())
        with self._lock:  # a tick may run on the frame worker's thread
            self._take_joint_state(msg)

    def _take_joint_state(self, msg: JointState) -> None:
        if self.core is None:
            return
        now = self._observe_clock()
        stamp = _ns(msg.header.stamp)
        problem = self.monitor.check_stamp(JOINTS, stamp, self.params.max_joint_state_age)
        if problem is None:
            try:
                self._joint_map.extract(msg.name, msg.position, msg.velocity, self._pos_in,
                                        self._vel_in)
            except InputError as exc:
                problem = str(exc)
                self.monitor.joints_valid = False  # e.g. a required joint is missing: hold
        if problem is not None:
            self._reject('joint_states_rejected', 'joint_states', problem)
            return
        self._pos[:], self._vel[:] = self._pos_in, self._vel_in
        self.monitor.joints_valid = True
        self.monitor.accept(JOINTS, stamp)
        if self._recorder is not None:
            self._recorder.add_input(JOINTS, msg, now, reliable=False)

    def _on_source(self, source, msg) -> None:
        with self._lock:  # a tick may run on the frame worker's thread
            self._take_source(source, msg)

    def _take_source(self, source, msg) -> None:
        if self.core is None:
            return
        now = self._observe_clock()
        try:
            stamp = _ns(msg.header.stamp) if source.stamped else now
            problem = self.monitor.check_stamp(source.name, stamp, self.params.max_extra_age)
            if problem is None:
                values = dict(source.read(msg))
        except InputError as exc:
            problem = str(exc)
        except Exception as exc:  # noqa: B902 (a plugin source may raise anything: hold)
            problem = f'source {source.name!r} cannot use the message: ' \
                      f'{type(exc).__name__}: {exc}'
        if problem is not None:
            self._reject('extras_rejected', source.name, problem)
            return
        self.core.set_extras(values)
        self.monitor.accept(source.name, stamp)
        if self._recorder is not None:
            self._recorder.add_input(source.name, msg, now, source.qos != 'sensor_data')

    def _on_estop(self, msg: Bool) -> None:
        with self._lock:
            if msg.data and not self.monitor.estop:
                self.stats.counters.estops += 1
                self.get_logger().warn('emergency stop: holding')
            self.monitor.estop = bool(msg.data)
            if self._recorder is not None:
                self._recorder.add_input('estop', msg, self.get_clock().now().nanoseconds)
            if self.monitor.estop and self._active:
                self._hold(Hold(HoldReason.EMERGENCY_STOP))

    # ------------------------------------------------------------------ control
    def _on_timer(self) -> None:
        self.stats.ticks.add(time.perf_counter())
        self._tick()

    def _tick(self) -> None:
        # Under the lock, a transition (deactivate, shutdown) cannot slip a hold in between
        # a tick's step and its publish: the hold is always the last message.
        with self._lock:
            if self._active:
                self._step()

    def _step(self) -> None:
        self.stats.counters.ticks += 1
        now = self._observe_clock()
        p = self.params
        hold = self.monitor.decide(now, Ages(p.max_image_age, p.max_joint_state_age,
                                             p.max_extra_age))
        if hold is not None:
            held = self.monitor.hold
            if hold.reason is HoldReason.CAMERA_SKEW and (held is None or
                                                          held.reason is not hold.reason):
                self.stats.counters.camera_skew_holds += 1
            self._hold(hold)
            return
        if self.monitor.holding:
            self.core.reset()
            self.get_logger().info('fresh data: commanding resumes')
        try:
            command = self.core.step(self._pos, self._vel)
        except NonFiniteError as exc:
            counter = f'nonfinite_{exc.where}s'
            setattr(self.stats.counters, counter, getattr(self.stats.counters, counter) + 1)
            self.error = str(exc)
            self._hold(Hold(HoldReason.NONFINITE_OBSERVATION if exc.where == 'observation'
                            else HoldReason.NONFINITE_ACTION, str(exc)))
            return
        except (TermError, ExtraSourceError, ActionTermError) as exc:
            # A term (a user's plugin, or a source value it cannot use) failed: no command.
            self.stats.counters.term_failures += 1
            self.error = str(exc)
            self._hold(Hold(HoldReason.TERM_FAILED, str(exc)))
            return
        timing, stages = self.core.timing, self.stats.stages
        for stage in ('observation', 'inference', 'postprocess'):
            stages[stage].append(timing[stage])
        self._unused.clear()
        # The card's first camera dates the command (stamp_source image, latency).
        stamp_ns = self._image_stamp_ns[self.core.card.image.name] \
            if IMAGE in self.core.needs else self.monitor.stamp_ns(JOINTS)
        self._publish(command, stamp_ns if p.stamp_source == 'image' else 0)
        if self._recorder is not None:
            self._recorder.add_tick(now, self.core)  # copies core.tick, writes elsewhere
        self.monitor.commanded()
        self.stats.counters.commands += 1
        self.stats.latency.append((self.get_clock().now().nanoseconds - stamp_ns) * 1e-9)
        self.error = ''

    def _publish(self, positions: np.ndarray, stamp_ns: int) -> None:
        t0 = time.perf_counter()
        self._traj_pub.publish(self._trajectory.command(positions, stamp_ns))
        self.stats.stages['publish'].append(time.perf_counter() - t0)

    def _hold(self, hold: Hold) -> None:
        """Publish the measured positions once, then command nothing until fresh data."""
        # One hold message per hold: a failed resume (e.g. a model that keeps returning NaN)
        # does not repeat it, since nothing was commanded in between.
        due = self.monitor.start_hold(hold)
        if self._recorder is not None:  # every held tick, with its reason
            self._recorder.add_tick(self.get_clock().now().nanoseconds, self.core, str(hold))
        if not due:
            return
        self.stats.counters.holds += 1
        # Flapping inputs could log a hold per tick; the final hold is always logged (rclpy
        # ties a throttle to its call site, hence two calls).
        if hold.reason is HoldReason.SHUTDOWN:
            self.get_logger().warn(f'holding the robot: {hold}')
        else:
            self.get_logger().warn(f'holding the robot: {hold}', throttle_duration_sec=1.0)
        if self.monitor.stamp_ns(JOINTS) is not None and self._traj_pub is not None:
            self._publish(self.core.hold_command(self._pos), 0)  # stamp 0: start now

    # ------------------------------------------------------------------ parameters
    def _validate_parameters(self, params) -> SetParametersResult:
        """Judge the whole batch on its final values; no side effects (another may refuse)."""
        changes = {p.name: p.value for p in params if p.name in SPECS}
        if not changes or self.params is None:
            return SetParametersResult(successful=True)
        configured = self._state_machine.current_state[1] != 'unconfigured'
        try:
            updated = self.params.updated(changes, configured)
            if self.core is not None:
                updated.limits(self.core.card)
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params) -> None:
        """After a batch was accepted: the filter enforces what the parameters say."""
        changes = {p.name: p.value for p in params if p.name in SPECS}
        if not changes or self.params is None:
            return
        with self._lock:
            self.params = self.params.updated(changes, configured=False)
            if self.core is not None and any(name in SAFETY_LIMITS for name in changes):
                self.core.set_limits(self.params.limits(self.core.card))
            if self.core is not None:
                self.monitor.max_camera_skew = self.params.camera_skew(self.core.card)

    # ------------------------------------------------------------------ diagnostics
    def _on_wall_timer(self) -> None:
        self._clock_watch.sim_time = bool(self.get_parameter('use_sim_time').value)
        if self.params is not None:
            self._clock_watch.timeout = self.params.clock_timeout
        self._clock_state = self._clock_watch.update(self.get_clock().now().nanoseconds,
                                                     time.monotonic())
        with self._lock:
            if self._clock_state is not ClockState.RUNNING and self._active:
                self._hold(Hold(HoldReason.CLOCK_STOPPED, self._clock_state.value))
        self._heap.check(sum(self._frame_bytes.values()))
        self._check_frame_loss()
        msg = DiagnosticArray(status=[self.diagnostics()])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)

    def _check_frame_loss(self) -> None:
        """Name the likely cause of each camera's lost frames; log it when it first shows."""
        for camera, loss in self._frame_loss.items():
            hint = loss_hint(self._frame_bytes.get(camera, 0), loss.loss_fraction, os.environ,
                             self._shipped_profile)
            if hint and not self._loss_hints.get(camera):
                self.get_logger().warn(f'{camera_input(camera)}: {hint}')
            self._loss_hints[camera] = hint

    def diagnostics(self) -> DiagnosticStatus:
        """Report the node's status: state, hold, limits, rates, ages, timings, counters."""
        state = self._state_machine.current_state[1]
        now = self.get_clock().now().nanoseconds
        status = DiagnosticStatus(name=f'{self.get_fully_qualified_name()}: policy inference',
                                  hardware_id=self.core.card.name if self.core else '')
        hold = self.monitor.hold if self._active else None
        if self.error and self.core is None:
            status.level, status.message = DiagnosticStatus.ERROR, f'{state}: {self.error}'
        elif self._clock_state is not ClockState.RUNNING:
            status.level, status.message = DiagnosticStatus.WARN, self._clock_state.value
        elif hold is not None:
            # A non-finite observation or action is an error of the model or its inputs.
            nonfinite = hold.reason in (HoldReason.NONFINITE_OBSERVATION,
                                        HoldReason.NONFINITE_ACTION)
            status.level = DiagnosticStatus.ERROR if nonfinite else DiagnosticStatus.WARN
            status.message = f'holding: {hold}'
        else:
            status.level, status.message = DiagnosticStatus.OK, state
        values = [('state', state), ('hold_reason', str(hold) if hold else ''),
                  ('last_error', self.error), ('clock', self._clock_state.value)]
        for name in self.monitor.inputs:
            stamp = self.monitor.stamp_ns(name)
            if stamp is not None:
                values.append((f'{name}_age_s', f'{(now - stamp) * 1e-9:.4f}'))
        values += self.stats.values(time.monotonic())
        for camera, loss in self._frame_loss.items():
            period, prefix = loss.period_s, f'{camera}_' if camera else ''
            values += [(f'{prefix}images_lost', str(loss.lost)),
                       (f'{prefix}image_loss_fraction', f'{loss.loss_fraction:.4f}'),
                       (f'{prefix}camera_rate_hz', f'{1.0 / period:.2f}' if period else '0')]
            if self._loss_hints.get(camera):
                values.append((f'{prefix}image_loss_hint', self._loss_hints[camera]))
        if len(self._frame_loss) > 1:
            values.append(('max_camera_skew_s', f'{self.monitor.max_camera_skew:.4f}'))
        values += [('scheduling', self._scheduling), ('memory_locked', self._memory_locked)]
        if self._heap.private is not None:
            values += [('private_memory_mb', f'{self._heap.private / 1e6:.1f}'),
                       ('heap_trims', str(self._heap.trims))]
        if self._worker.failures:  # a frame whose handling raised: its camera goes stale
            values += [('frame_worker_failures', str(self._worker.failures)),
                       ('frame_worker_last_failure', self._worker.last_failure)]
        if self._recorder is not None:
            values += [('record_path', str(self._recorder.path)),
                       ('record_dropped', str(self._recorder.dropped)),
                       ('record_error', self._recorder.error)]
        if self.core is not None:
            limits = self.core.limits
            # The session's first provider runs the model; the others take what it cannot.
            values += [('provider', self.core.providers[0]),
                       ('providers', ','.join(self.core.providers)),
                       ('position_lower_limits', str(list(limits.lower))),
                       ('position_upper_limits', str(list(limits.upper))),
                       ('max_joint_step', str(list(limits.max_step)))]
            for camera, cam in self.core.cameras.items():
                if cam.setup is not None:
                    prefix = f'{camera}_' if camera else ''
                    values += [(prefix + k, v) for k, v in cam.setup.values()]
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        return status


def main(args: Optional[list] = None) -> int:
    """Run the node until Ctrl-C or SIGTERM, then send the final hold."""
    # rclpy's own SIGINT handler would invalidate the context before the node could send
    # its final hold; handle Ctrl-C here instead.
    rclpy.init(args=args, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    # Both signals, explicitly: a process started with SIGINT ignored (a background job of a
    # script) would otherwise ignore Ctrl-C and ros2 launch's shutdown. The handler only
    # asks the loop below to stop: an exception raised inside a callback would pass through
    # the executor's C++ as an error instead.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # The image resize's small matrix products run best on one thread; idle OpenBLAS
    # threads would spin on every core at camera rate.
    limit_blas_threads(1)
    # The frame worker preprocesses while the control timer waits: a thread waiting for the
    # GIL gets it after at most the switch interval (5 ms by default, longer than a tick's
    # slack at 50 Hz); 1 ms bounds the wait the timer can see.
    sys.setswitchinterval(0.001)
    # A freed camera frame's pages serve the next frame (glibc gave them back at once: 4500
    # page faults per 1080p frame when one callback took, preprocessed and freed it).
    keep_freed_frames()
    node = PolicyInferenceNode()
    # The objects of the imports and of the node (48k) leave the garbage collector's scans:
    # a full collection over them took 8 ms, a missed tick at 1080p60; now 0.01 ms.
    gc.freeze()
    node.lock_process_memory()
    # Before the executor exists: its threads inherit the policy. DDS's threads, started
    # with the node, keep the default scheduler.
    node.schedule_executor_thread()
    # rclpy's events executor dispatches in C++: rclpy's Python executor rebuilds its wait
    # set on every wake-up, which cost 0.17 ms of each frame's latency (p50, VGA) and a
    # third of the node's CPU at 30 Hz on the 2-core VM (vision_policy_bench).
    executor = EventsExecutor()
    executor.add_node(node)
    try:
        # A bounded wait: Python runs its signal handlers only between waits, and with
        # use_sim_time every control timer sleeps while /clock is stopped.
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
    except rclpy.executors.ExternalShutdownException:
        pass
    finally:
        node.shutdown_hold()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
