"""policy_inference over real rclpy and DDS: outputs match the pure core, holds, lifecycle."""

import array
import math
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory
from conftest import rgb_image  # noqa: I100 (test helper)
from vision_policy.action import SafetyLimits
from vision_policy.core import PolicyCore
from vision_policy.image import view_image
from vision_policy.monitor import Hold, HoldReason
from vision_policy.node import PolicyInferenceNode
from vision_policy.runtime import load_policy, PolicyRuntime, RuntimeOptions

JOINTS = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint']
TRAJ = '/joint_trajectory_controller/joint_trajectory'


class Rig:
    """The node under test plus a peer that publishes inputs and records outputs."""

    def __init__(self, harness, model_path, **params):
        values = {'model_path': str(model_path), 'autostart': True}
        values.update(params)
        self.h = harness
        self.node = harness.add(PolicyInferenceNode(
            context=harness.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]))
        self.peer = harness.node('peer')
        self.image_pub = self.peer.create_publisher(Image, '/camera/image_raw',
                                                    qos_profile_sensor_data)
        self.joint_pub = self.peer.create_publisher(JointState, '/joint_states', 10)
        self.estop_pub = self.peer.create_publisher(Bool, '/emergency_stop', 10)
        self.received = []
        self.diags = []
        self.peer.create_subscription(JointTrajectory, TRAJ, self.received.append, 100)
        self.peer.create_subscription(DiagnosticArray, '/diagnostics', self.diags.append, 10)
        if values['autostart']:
            self.wait_connected()

    def wait_connected(self):
        camera = 'image' in self.node.core.needs
        assert self.h.wait_for(lambda: (self.image_pub.get_subscription_count() > 0 or
                                        not camera) and
                               self.joint_pub.get_subscription_count() > 0 and
                               self.node._traj_pub.get_subscription_count() > 0)

    def stamp(self):
        return self.peer.get_clock().now().to_msg()

    def send_image(self, img: np.ndarray, encoding: str = 'rgb8'):
        msg = Image(height=img.shape[0], width=img.shape[1], encoding=encoding,
                    step=img.shape[1] * img.shape[2])
        msg.header.stamp = self.stamp()
        msg.data = array.array('B', img.tobytes())
        self.image_pub.publish(msg)

    def send_joints(self, pos, vel=(0.0, 0.0, 0.0), names=None):
        msg = JointState(name=list(names or ['extra_joint'] + JOINTS[::-1]))
        # Published in reversed order with an extra joint: the node maps by name.
        msg.position = [9.9] + list(pos)[::-1] if names is None else list(pos)
        msg.velocity = [0.0] + list(vel)[::-1] if names is None else list(vel)
        msg.header.stamp = self.stamp()
        self.joint_pub.publish(msg)

    def wait_for_hold(self, positions=(0.0, 0.3, -0.6)):
        """Wait until the hold message (the measured positions) has arrived."""
        assert self.h.wait_for(lambda: self.received and np.array_equal(
            self.received[-1].points[0].positions, positions)), 'no hold message'

    def counter(self, key):
        return int({kv.key: kv.value for kv in self.node.diagnostics().values}[key])


def reference_core(model_path):
    """Build the pure core as the node configures it by default."""
    session, card = load_policy(model_path, None, RuntimeOptions(('CPUExecutionProvider',)))
    limits = SafetyLimits.from_card(card, [-math.inf], [math.inf], [0.1])
    return PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs), limits)


def test_commands_match_pure_core(harness, model_path):
    # Generous ages: this test is about parity; a loaded machine must not make it hold.
    rig = Rig(harness, model_path, trigger='image', max_joint_state_age=30.0,
              max_image_age=30.0)
    core = reference_core(model_path)
    pos, vel = np.array([0.1, 0.2, -0.3]), np.array([0.5, -0.2, 0.1])
    rig.send_joints(pos, vel)
    assert harness.wait_for(lambda: rig.node.monitor.seq('joint_states') > 0)
    expected = []
    for k in range(8):
        img = rgb_image(640, 480, seed=k)
        # Best effort may drop a large frame in transport: send again until the node has it.
        for _ in range(5):
            counters = rig.node.stats.counters
            seen = counters.images_received
            rig.send_image(img)
            if harness.wait_for(lambda: counters.images_received > seen, timeout=2.0):
                break
        assert harness.wait_for(lambda: len(rig.received) == k + 1), f'no command for image {k}'
        view = view_image(img.tobytes(), 640, 480, 'rgb8', 640 * 3)
        core.set_image(view, 'rgb8')
        expected.append(core.step(pos, vel).copy())
    for msg, want in zip(rig.received, expected):
        assert msg.joint_names == JOINTS
        assert len(msg.points) == 1
        assert msg.points[0].time_from_start.nanosec == 50_000_000  # card control_dt
        np.testing.assert_allclose(msg.points[0].positions, want, atol=1e-6)
    # The last action feeds back: successive commands differ although joints did not move.
    assert not np.allclose(expected[0], expected[1])


def feed_until(rig, condition, image=True, timeout=30.0):
    """Send joints (and images) every 50 ms until condition() holds; generous deadline."""
    img = rgb_image(320, 240)
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, 'condition not reached while feeding'
        rig.send_joints([0.0, 0.3, -0.6])
        if image:
            rig.send_image(img)
        time.sleep(0.05)


def test_timer_commands_then_holds_on_stale_image(harness, model_path):
    rig = Rig(harness, model_path, max_image_age=0.3)
    pos = [0.0, 0.3, -0.6]
    counters = rig.node.stats.counters
    feed_until(rig, lambda: counters.commands >= 8)
    feed_until(rig, lambda: rig.node.hold == Hold(HoldReason.INPUT_TOO_OLD, 'image'),
               image=False)  # joints stay fresh, the camera stops
    # Exactly one hold message after the commands: the measured positions.
    rig.wait_for_hold(pos)
    n_after = len(rig.received)
    harness.wait_for(lambda: False, timeout=0.3)
    assert len(rig.received) == n_after  # nothing more while held
    held = counters.commands
    feed_until(rig, lambda: counters.commands > held)  # resumes on fresh data


def test_missing_joint_holds_and_is_counted(harness, model_path):
    rig = Rig(harness, model_path)
    img = rgb_image(64, 64)
    feed_until(rig, lambda: rig.node.stats.counters.commands > 0)
    rig.send_joints([0.0, 0.3], names=JOINTS[:2])
    assert harness.wait_for(lambda: rig.node.hold == Hold(HoldReason.INVALID_JOINT_STATE))
    assert rig.counter('joint_states_rejected') >= 1
    rig.wait_for_hold()
    n = len(rig.received)
    for _ in range(4):
        rig.send_image(img)
        harness.wait_for(lambda: False, timeout=0.05)
    assert len(rig.received) == n


def test_estop_holds_until_released(harness, model_path):
    rig = Rig(harness, model_path)
    img = rgb_image(64, 64)

    def feed(n):
        for _ in range(n):
            rig.send_joints([0.0, 0.3, -0.6])
            rig.send_image(img)
            harness.wait_for(lambda: False, timeout=0.05)
    counters = rig.node.stats.counters
    feed_until(rig, lambda: counters.commands > 0)
    rig.estop_pub.publish(Bool(data=True))
    assert harness.wait_for(lambda: rig.node.hold == Hold(HoldReason.EMERGENCY_STOP))
    rig.wait_for_hold()
    n = len(rig.received)
    held = counters.commands
    feed(6)
    assert len(rig.received) == n and counters.commands == held
    rig.estop_pub.publish(Bool(data=False))
    harness.wait_for(lambda: not rig.node.monitor.estop)
    feed_until(rig, lambda: counters.commands > held)  # resumes on fresh data
    assert rig.counter('estops') == 1


def test_lifecycle_transitions(harness, model_path):
    rig = Rig(harness, model_path, autostart=False)
    state = rig.node._state_machine.current_state
    assert state[1] == 'unconfigured'
    rig.node.trigger_configure()
    assert rig.node._state_machine.current_state[1] == 'inactive'
    rig.wait_connected()
    img = rgb_image(64, 64)
    for _ in range(5):
        rig.send_joints([0.0, 0.3, -0.6])
        rig.send_image(img)
        harness.wait_for(lambda: False, timeout=0.05)
    assert rig.received == []  # inactive: no command
    rig.node.trigger_activate()
    feed_until(rig, lambda: rig.node.stats.counters.commands > 0)
    rig.node.trigger_deactivate()
    assert rig.node._state_machine.current_state[1] == 'inactive'
    rig.wait_for_hold()  # the hold is the last message, after every command
    n = len(rig.received)
    harness.wait_for(lambda: False, timeout=0.3)
    assert len(rig.received) == n
    rig.node.trigger_cleanup()
    assert rig.node._state_machine.current_state[1] == 'unconfigured'


@pytest.mark.parametrize('path, words', [
    ('does/not/exist.onnx', 'model file not found'),
    ('card', 'not a loadable ONNX model'),
])
def test_bad_model_fails_configure_and_node_stays_up(harness, model_path, path, words,
                                                     tmp_path):
    if path == 'card':
        path = tmp_path / 'bad.onnx'
        path.write_bytes(b'this is not onnx')
    rig = Rig(harness, path, autostart=False)
    rig.node.trigger_configure()
    assert rig.node._state_machine.current_state[1] == 'unconfigured'
    assert words in rig.node.error
    status = rig.node.diagnostics()
    assert status.level == status.ERROR and words in status.message
    assert harness.wait_for(lambda: len(rig.diags) > 0, timeout=3)


def test_runtime_parameter_validation(harness, model_path):
    rig = Rig(harness, model_path)
    ok = rig.node.set_parameters([Parameter('max_joint_step', value=[0.05])])[0]
    assert ok.successful
    np.testing.assert_allclose(rig.node.core.limits.max_step, [0.05] * 3)
    bad = rig.node.set_parameters([Parameter('max_joint_step', value=[-1.0])])[0]
    assert not bad.successful and 'max_joint_step' in bad.reason
    frozen = rig.node.set_parameters([Parameter('model_path', value='other.onnx')])[0]
    assert not frozen.successful and 'configure' in frozen.reason
    age = rig.node.set_parameters([Parameter('max_image_age', value=1000.0)])[0]
    assert not age.successful


def linear_policy(tmp_path, name, weights, terms):
    """Write a camera-less policy (actions = obs @ weights) and its card of these terms."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    import yaml
    width = weights.shape[0]
    graph = helper.make_graph(
        [helper.make_node('MatMul', ['obs', 'W'], ['actions'])], name,
        [helper.make_tensor_value_info('obs', TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info('actions', TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(weights, 'W')])
    path = tmp_path / f'{name}.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), path)
    card = {'name': name, 'control_dt': 0.05, 'joint_names': JOINTS,
            'default_joint_pos': [0.0, 0.3, -0.6],
            'inputs': [{'name': 'obs', 'shape': [1, width], 'group': 'policy'}],
            'observations': {'policy': {'terms': terms}},
            'action': {'scale': 0.5, 'clip': [[-2, 2], [-1.5, 1.5], [-2.5, 2.5]]}}
    path.with_suffix('.yaml').write_text(yaml.safe_dump(card))
    return path


def proprio_model(tmp_path):
    """Build a camera-less policy of joint_pos_rel + joint_vel; returns (path, weights)."""
    weights = np.random.default_rng(5).standard_normal((6, 3)).astype(np.float32) * 0.1
    path = linear_policy(tmp_path, 'proprio', weights,
                         [{'name': 'joint_pos_rel'}, {'name': 'joint_vel'}])
    return path, weights


def test_camera_less_card_runs_on_joint_states_alone(harness, tmp_path):
    path, weights = proprio_model(tmp_path)
    rig = Rig(harness, path, max_joint_state_age=1.0)
    assert 'image' not in rig.node.core.needs
    pos, vel = np.array([0.05, 0.25, -0.55]), np.array([0.1, 0.0, -0.1])
    for _ in range(10):
        rig.send_joints(pos, vel)
        harness.wait_for(lambda: False, timeout=0.05)
    assert harness.wait_for(lambda: len(rig.received) > 0)
    obs = np.concatenate([pos - [0.0, 0.3, -0.6], vel]).astype(np.float32)
    target = (obs @ weights) * 0.5 + np.array([0.0, 0.3, -0.6])
    # The first command is step-limited (0.1 rad) from the measured position.
    want = np.clip(target, pos - 0.1, pos + 0.1)
    np.testing.assert_allclose(rig.received[0].points[0].positions, want, atol=1e-6)
