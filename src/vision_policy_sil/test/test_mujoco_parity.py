"""
Closed-loop parity: twin + policy_inference over real topics, recomputed by the pure core.

    mujoco_twin (subprocess: real MuJoCo physics and rendering, 160x120 at 20 Hz)
        /camera/image_raw, /joint_states  ->  gate (this test)
        ->  /parity/image_raw, /parity/joint_states  ->  policy_inference (in-process,
            trigger image, stamp_source image)
        ->  /joint_trajectory_controller/joint_trajectory  ->  mujoco_twin (closed loop)

Why a gate. With ``trigger: image`` the node steps once per image with the latest valid
joint state it received before that image's callback. Images and joint states travel on
different topics, and neither DDS nor the executor orders deliveries across topics, not
even with the twin in lock-step; so which joint state an image met cannot be known from
outside, only guessed. The gate makes it exact: per tick it forwards the twin's joint
state of the image's stamp, waits until the node has taken it
(``counters.joint_states_received``), then forwards the image and waits for the one
command it causes. ``stamp_source: image`` stamps that command with its image's stamp, so
the pairing is checked, not assumed. The arm still moves under the node's commands: the
twin follows them and its next images and joint states show it; the twin is reset every
50 ticks so targets and arm poses change.

Every published command must equal the pure core's recomputation from the recorded
messages within 1e-5. ``test_broken_link_is_detected`` proves the test's sensitivity:
the recomputation with one link broken (colour order, joint order, resize interpolation,
normalisation, action scale) must disagree. To watch the main test fail on a broken link,
run it with VISION_POLICY_PARITY_BREAK=<name of a link in BREAKS>.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
import math
import os
import sys
import threading
import time
from typing import Callable

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from conftest import wait_for  # noqa: I100 (test helper)
from vision_policy.action import SafetyLimits
from vision_policy.card import card_from_dict
from vision_policy.core import JointMap, PolicyCore
from vision_policy.image import view_image
from vision_policy.node import PolicyInferenceNode
from vision_policy.runtime import load_policy, PolicyRuntime, RuntimeOptions
from vision_policy_sil.mujoco_demo import bundled_model, DemoError, ManagedProcess

TICKS = 200
RESET_EVERY = 50
TOLERANCE = 1e-5
IMAGE_SIZE = (160, 120)  # larger than the card's 64x64: the resize is part of the chain
CAMERA_RATE = 20.0
REAL_TIME_FACTOR = 2.0
GATE_IMAGE_TOPIC = '/parity/image_raw'
GATE_JOINT_TOPIC = '/parity/joint_states'
TRAJECTORY_TOPIC = '/joint_trajectory_controller/joint_trajectory'
MAX_STEP = 0.1  # policy_inference's default max_joint_step
# A domain of its own (60..89: clear of the 37, 42, 44 other tests and shells use), so
# other runs on this machine cannot feed or read these topics.
DOMAIN_ID = str(60 + os.getpid() % 30)


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


@dataclass(frozen=True)
class Tick:
    """What the node used for one command, and the command it published."""

    image_stamp_ns: int
    image_data: bytes
    width: int
    height: int
    encoding: str
    step: int
    is_bigendian: bool
    joint_stamp_ns: int
    joint_names: tuple
    joint_position: tuple
    joint_velocity: tuple
    command_stamp_ns: int
    command_names: tuple
    command: tuple


@dataclass(frozen=True)
class ClosedLoop:
    """The recorded run: ticks in order, the node's counters after it, the model used."""

    ticks: tuple
    counters: dict
    model_path: str
    wall_seconds: float


def _identity(x):
    return x


def _scaled_action(card, factor: float):
    """Return the card with its action scale times factor (through the card YAML)."""
    data = card.to_dict()
    data['action']['scale'] = [factor * s for s in data['action']['scale']]
    return card_from_dict(data)


@dataclass(frozen=True)
class Break:
    """One deliberately broken link of the recomputation (identity where not broken)."""

    card: Callable = _identity     # PolicyCard -> PolicyCard
    image: Callable = _identity    # (H, W, 3) source view -> what the pipeline is fed
    joints: Callable = _identity   # positions / velocities in card order -> fed to the core


BREAKS = {
    'colour_order': Break(image=lambda view: np.ascontiguousarray(view[..., ::-1])),
    'joint_order': Break(joints=lambda q: q[::-1].copy()),
    'resize_interpolation': Break(card=lambda c: replace(
        c, images=(replace(c.image, interpolation='linear'),))),
    'normalisation': Break(card=lambda c: replace(
        c, images=(replace(c.image, normalize='scale'),))),
    'action_scale': Break(card=lambda c: _scaled_action(c, 1.1)),
}


def recompute(loop: ClosedLoop, broken: Break = Break()) -> list:
    """Recompute every command from the recorded messages with the pure core."""
    session, card = load_policy(loop.model_path, None, RuntimeOptions(('CPUExecutionProvider',)))
    card = broken.card(card)
    limits = SafetyLimits.from_card(card, [-math.inf], [math.inf], [MAX_STEP])
    core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs), limits)
    joint_map = JointMap(card.joint_names, None, True)
    pos, vel = np.zeros(len(card.joint_names)), np.zeros(len(card.joint_names))
    commands = []
    for tick in loop.ticks:
        joint_map.extract(list(tick.joint_names), tick.joint_position, tick.joint_velocity,
                          pos, vel)
        view = view_image(tick.image_data, tick.width, tick.height, tick.encoding, tick.step,
                          tick.is_bigendian)
        core.set_image(broken.image(view), tick.encoding)
        commands.append(core.step(broken.joints(pos), broken.joints(vel)).copy())
    return commands


def parity_errors(loop: ClosedLoop, expected: list) -> list:
    """Describe every tick whose published command is not its recomputation within 1e-5."""
    errors = []
    for k, (tick, want) in enumerate(zip(loop.ticks, expected)):
        got = np.asarray(tick.command)
        diff = float(np.max(np.abs(got - want)))
        if not diff <= TOLERANCE:
            errors.append(f'tick {k} (image stamp {tick.image_stamp_ns * 1e-9:.3f} s): '
                          f'published {np.round(got, 6).tolist()}, recomputed '
                          f'{np.round(want, 6).tolist()}, max |diff| {diff:.3g} > {TOLERANCE:g}')
    return errors


class Gate:
    """Records the twin's outputs and feeds the node one (joint state, image) pair a tick."""

    def __init__(self, context: rclpy.Context) -> None:
        self.node = rclpy.create_node('parity_gate', context=context)
        self._lock = threading.Lock()
        self.images: list = []
        self.joints: list = []
        self.commands: list = []
        self.node.create_subscription(Image, '/camera/image_raw', self._on_image,
                                      qos_profile_sensor_data)
        self.node.create_subscription(JointState, '/joint_states', self._on_joints, 100)
        self.node.create_subscription(JointTrajectory, TRAJECTORY_TOPIC, self._on_command, 100)
        self.image_pub = self.node.create_publisher(Image, GATE_IMAGE_TOPIC,
                                                    qos_profile_sensor_data)
        self.joint_pub = self.node.create_publisher(JointState, GATE_JOINT_TOPIC, 10)
        self.reset = self.node.create_client(Trigger, '/mujoco_twin/reset')

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self.images = self.images[-4:] + [msg]

    def _on_joints(self, msg: JointState) -> None:
        with self._lock:
            self.joints = self.joints[-200:] + [msg]

    def _on_command(self, msg: JointTrajectory) -> None:
        with self._lock:
            self.commands.append(msg)

    def newest_image(self, after_ns: int):
        """Return the newest image stamped after after_ns, or None."""
        with self._lock:
            if self.images and _ns(self.images[-1].header.stamp) > after_ns:
                return self.images[-1]
        return None

    def joint_state_at(self, stamp_ns: int, exact: bool):
        """Return the joint state stamped stamp_ns (or the newest before it unless exact)."""
        with self._lock:
            older = [j for j in self.joints if _ns(j.header.stamp) <= stamp_ns]
        if older and (_ns(older[-1].header.stamp) == stamp_ns or not exact):
            return older[-1]
        return None

    def command_count(self) -> int:
        """Count the trajectories received."""
        with self._lock:
            return len(self.commands)


def wait_for_quietly(predicate, timeout: float) -> bool:
    """Poll predicate until true or timeout; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.0005)
    return bool(predicate())


def _start_twin(log_dir) -> ManagedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    argv = [sys.executable, '-m', 'mujoco_twin.twin_node', '--ros-args',
            '-p', 'use_sim_time:=true', '-p', 'seed:=7',
            '-p', f'real_time_factor:={REAL_TIME_FACTOR}',
            '-p', f'image_width:={IMAGE_SIZE[0]}', '-p', f'image_height:={IMAGE_SIZE[1]}',
            '-p', f'camera_rate:={CAMERA_RATE}', '-p', 'joint_state_rate:=100.0']
    return ManagedProcess('mujoco_twin', argv, log_dir / 'mujoco_twin.log', env)


def _check_twin(twin: ManagedProcess) -> None:
    try:
        twin.check()
    except DemoError as err:
        if 'RenderError' in str(err) or 'rendering' in twin.tail(40).lower():
            pytest.skip(f'no offscreen rendering for the twin: {err}')
        raise


def _run_closed_loop(log_dir) -> ClosedLoop:
    model = str(bundled_model())
    twin = _start_twin(log_dir)
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    executor = SingleThreadedExecutor(context=context)
    stop = threading.Event()
    node = gate = None

    def spin():
        while not stop.is_set() and context.ok():
            executor.spin_once(timeout_sec=0.02)
    thread = threading.Thread(target=spin, daemon=True)
    try:
        gate = Gate(context)
        params = {'model_path': model, 'autostart': True, 'use_sim_time': True,
                  'trigger': 'image', 'stamp_source': 'image',
                  'image_topic': GATE_IMAGE_TOPIC, 'joint_states_topic': GATE_JOINT_TOPIC,
                  'trajectory_topic': TRAJECTORY_TOPIC,
                  'providers': ['CPUExecutionProvider'],
                  # The gate adds wall latency; ages are not under test here, and a hold
                  # would not be a command to compare (it is asserted absent below).
                  'max_image_age': 10.0, 'max_joint_state_age': 10.0}
        node = PolicyInferenceNode(context=context, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        assert node._state_machine.current_state[1] == 'active', node.error
        executor.add_node(gate.node)
        executor.add_node(node)
        thread.start()

        def check():
            _check_twin(twin)
        wait_for(lambda: gate.newest_image(-1) is not None and
                 node.get_clock().now().nanoseconds > 0, 60.0,
                 'twin images and /clock at the node', check)
        wait_for(lambda: gate.image_pub.get_subscription_count() > 0 and
                 gate.joint_pub.get_subscription_count() > 0 and
                 gate.node.count_subscribers(TRAJECTORY_TOPIC) >= 2, 20.0,
                 'gate <-> node <-> twin connections', check)
        # Images stamped before the twin's first joint state have no joint state to pair
        # with: start after it.
        first = wait_for(lambda: gate.joint_state_at(2**62, exact=False), 20.0,
                         'twin joint states', check)
        ticks, last = [], _ns(first.header.stamp)
        start = time.monotonic()
        for k in range(TICKS):
            if k and k % RESET_EVERY == 0:
                future = gate.reset.call_async(Trigger.Request())
                wait_for(future.done, 10.0, 'twin reset', check)
                assert future.result().success
            image = wait_for(lambda: gate.newest_image(last), 10.0, f'tick {k}: twin image',
                             check)
            stamp = _ns(image.header.stamp)
            joint = None
            end = time.monotonic() + 0.5
            while joint is None and time.monotonic() < end:
                joint = gate.joint_state_at(stamp, exact=True)
                time.sleep(0.0005)
            joint = joint or gate.joint_state_at(stamp, exact=False)
            assert joint is not None, f'tick {k}: no joint state at or before {stamp} ns'
            counters = node.stats.counters
            taken, rejected = counters.joint_states_received, counters.joint_states_rejected
            gate.joint_pub.publish(joint)
            if not wait_for_quietly(lambda: counters.joint_states_received > taken, 1.0):
                gate.joint_pub.publish(joint)  # best effort: one retry of the same sample
                wait_for(lambda: counters.joint_states_received > taken, 5.0,
                         f'tick {k}: node taking the joint state', check)
            assert counters.joint_states_rejected == rejected, node.diagnostics().message
            sent = gate.command_count()
            gate.image_pub.publish(image)
            wait_for(lambda: gate.command_count() > sent, 10.0,
                     f'tick {k}: command for image {stamp} ns (node: '
                     f'{node.diagnostics().message})', check)
            command = gate.commands[sent]
            ticks.append(Tick(
                image_stamp_ns=stamp, image_data=bytes(image.data), width=image.width,
                height=image.height, encoding=image.encoding, step=image.step,
                is_bigendian=bool(image.is_bigendian), joint_stamp_ns=_ns(joint.header.stamp),
                joint_names=tuple(joint.name), joint_position=tuple(joint.position),
                joint_velocity=tuple(joint.velocity),
                command_stamp_ns=_ns(command.header.stamp),
                command_names=tuple(command.joint_names),
                command=tuple(command.points[0].positions)))
            last = stamp
        wall = time.monotonic() - start
        time.sleep(0.1)  # a stray extra command would land now
        assert gate.command_count() == TICKS, 'more commands than images forwarded'
        return ClosedLoop(tuple(ticks), dict(node.stats.counters.items()), model, wall)
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=5.0)
        for n in (node, gate.node if gate else None):
            if n is not None:
                executor.remove_node(n)
                n.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown(context=context)
        twin.stop()


@pytest.fixture(scope='module')
def closed_loop(tmp_path_factory) -> ClosedLoop:
    """Run the twin and the node in closed loop for TICKS commands, once per module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('ROS_DOMAIN_ID', DOMAIN_ID)
        patch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        patch.setenv('MUJOCO_GL', os.environ.get('MUJOCO_GL', 'egl'))
        return _run_closed_loop(tmp_path_factory.mktemp('parity'))


def test_closed_loop_parity(closed_loop):
    loop = closed_loop
    assert len(loop.ticks) >= 200
    c = loop.counters
    assert c['commands'] == len(loop.ticks) and c['ticks'] == len(loop.ticks), c
    for key in ('holds', 'images_rejected', 'joint_states_rejected', 'clock_jumps',
                'nonfinite_observations', 'nonfinite_actions'):
        assert c[key] == 0, f'{key} = {c[key]}: {c}'
    for k, tick in enumerate(loop.ticks):
        # stamp_source image: the command names the image it was computed from.
        assert tick.command_stamp_ns == tick.image_stamp_ns, f'tick {k}: paired wrongly'
        assert tick.command_names == ('shoulder_pan_joint', 'shoulder_lift_joint',
                                      'elbow_joint')
        assert tick.joint_stamp_ns <= tick.image_stamp_ns
    # A real closed loop, not a still picture: 4 episodes with different targets and poses.
    assert len({t.image_data for t in loop.ticks}) > 20
    stamps = np.array([t.image_stamp_ns for t in loop.ticks])
    assert np.all(np.diff(stamps) > 0)
    positions = np.array([t.joint_position for t in loop.ticks])
    assert np.ptp(positions, axis=0).max() > 0.01
    broken = os.environ.get('VISION_POLICY_PARITY_BREAK', '')
    expected = recompute(loop, BREAKS[broken] if broken else Break())
    errors = parity_errors(loop, expected)
    assert not errors, (f'{len(errors)} of {len(loop.ticks)} commands differ from the pure '
                        f'core' + (f' (recompute broken on purpose: {broken})' if broken
                                   else '') + ':\n' + '\n'.join(errors[:5]))
    worst = max(float(np.max(np.abs(np.asarray(t.command) - e)))
                for t, e in zip(loop.ticks, expected))
    same = sum(t.joint_stamp_ns == t.image_stamp_ns for t in loop.ticks)
    print(f'parity: {len(loop.ticks)} ticks in {loop.wall_seconds:.1f} s wall, worst '
          f'|diff| {worst:.2e}; joint state of the image stamp on {same} ticks')


@pytest.mark.parametrize('link', sorted(BREAKS))
def test_broken_link_is_detected(closed_loop, link):
    errors = parity_errors(closed_loop, recompute(closed_loop, BREAKS[link]))
    assert errors, f'breaking {link} went unnoticed: the parity test is blind to it'
    print(f'{link}: {len(errors)}/{len(closed_loop.ticks)} ticks differ; first: {errors[0]}')
