"""Several cameras: the card's images:, the core's per-camera frames, skew holds, the node."""

import array
import copy
import math
import threading

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory
from vision_policy.action import SafetyLimits
from vision_policy.card import card_from_dict, CardError
from vision_policy.core import InputError, PolicyCore
from vision_policy.frame_worker import FrameWorker
from vision_policy.monitor import Ages, camera_input, HoldReason, InputMonitor
from vision_policy.node import PolicyInferenceNode
from vision_policy.runtime import load_policy, PolicyRuntime, RuntimeOptions
import yaml

JOINTS = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint']
DEFAULT = [0.0, 0.3, -0.6]
WRIST, SCENE = 3 * 6 * 8, 4 * 4   # values of each camera's processed image
WIDTH = WRIST + SCENE + 3


def two_camera_card(skew=0.02) -> dict:
    """Return a card of a wrist RGB camera (8x6), a scene depth camera (4x4), joint_pos_rel."""
    card = {'name': 'two_cameras', 'control_dt': 0.05, 'joint_names': JOINTS,
            'default_joint_pos': DEFAULT,
            'inputs': [{'name': 'obs', 'shape': [1, WIDTH], 'group': 'policy'}],
            'images': {'wrist': {'resize': [8, 6]},
                       'scene': {'resize': [4, 4], 'data_type': 'depth'}},
            'observations': {'policy': {'terms': [
                {'name': 'image', 'params': {'camera': 'wrist'}},
                {'name': 'image', 'params': {'camera': 'scene'}},
                {'name': 'joint_pos_rel'}]}},
            'action': {'scale': 0.5, 'clip': [[-2, 2], [-1.5, 1.5], [-2.5, 2.5]]}}
    if skew is not None:
        card['max_camera_skew'] = skew
    return card


def write_policy(tmp_path, weights) -> str:
    """Write actions = obs @ weights as ONNX with the two-camera card beside it."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    graph = helper.make_graph(
        [helper.make_node('MatMul', ['obs', 'W'], ['actions'])], 'two_cameras',
        [helper.make_tensor_value_info('obs', TensorProto.FLOAT, [1, WIDTH])],
        [helper.make_tensor_value_info('actions', TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(weights, 'W')])
    path = tmp_path / 'two_cameras.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), path)
    path.with_suffix('.yaml').write_text(yaml.safe_dump(two_camera_card(), sort_keys=False))
    return str(path)


@pytest.fixture
def weights():
    return np.random.default_rng(3).standard_normal((WIDTH, 3)).astype(np.float32) * 0.05


# ---------------------------------------------------------------------------- card
def test_card_reads_named_cameras_and_round_trips():
    card = card_from_dict(two_camera_card())
    assert [c.name for c in card.images] == ['wrist', 'scene']
    assert card.image is card.camera('wrist')
    assert card.camera('scene').data_type == 'depth'
    assert card.max_camera_skew == 0.02
    assert card_from_dict(card.to_dict()) == card


@pytest.mark.parametrize('change, message', [
    (lambda c: c.update(image={'resize': [8, 8]}), 'give one camera as image or several'),
    (lambda c: c['images'].update({'bad-name': {'resize': [4, 4]}}),
     "camera names are identifiers (they name topics and parameters), found 'bad-name'"),
    (lambda c: c['observations']['policy']['terms'][1]['params'].update(camera='side'),
     "terms[1].params.camera: expected one of ['wrist', 'scene'], found 'side'"),
    (lambda c: c['observations']['policy']['terms'][0].pop('params'),
     "terms[0].params.camera: expected one of ['wrist', 'scene'], found ''"),
    (lambda c: c['images'].update(side={'resize': [4, 4]}), "camera(s) ['side'] feed no image"),
    (lambda c: c['images']['scene'].update(resize=[4]), 'images.scene.resize: expected [width'),
    (lambda c: c.update(max_camera_skew=-1.0), 'max_camera_skew: seconds > 0'),
])
def test_bad_several_camera_cards_name_the_field(change, message):
    data = copy.deepcopy(two_camera_card())
    change(data)
    with pytest.raises(CardError) as err:
        card_from_dict(data)
    assert message in str(err.value)


def test_skew_only_with_several_cameras():
    data = two_camera_card(skew=None)
    data['images'].pop('scene')
    data['observations']['policy']['terms'].pop(1)
    data['max_camera_skew'] = 0.01
    with pytest.raises(CardError, match='for a card with several cameras; found 0.01 with 1'):
        card_from_dict(data)


# ---------------------------------------------------------------------------- core
def make_core(tmp_path, weights):
    session, card = load_policy(write_policy(tmp_path, weights), None,
                                RuntimeOptions(('CPUExecutionProvider',)))
    limits = SafetyLimits.from_card(card, [-math.inf], [math.inf], [0.1])
    return PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs), limits)


def test_core_feeds_each_camera_into_its_own_slice(tmp_path, weights):
    core = make_core(tmp_path, weights)
    pos, vel = np.array([0.1, 0.2, -0.5]), np.zeros(3)
    core.set_image(np.full((48, 64, 3), 51, np.uint8), 'rgb8', 'wrist')
    with pytest.raises(InputError, match=r"no frame yet from camera\(s\) \['scene'\]"):
        core.step(pos, vel)
    core.set_image(np.full((40, 40, 1), 1.5, np.float32), '32FC1', 'scene')
    core.step(pos, vel)
    # By hand: rgb 51 / 255 = 0.2 everywhere, depth 1.5 m (no normalisation), then the
    # joint positions relative to the defaults.
    want = np.concatenate([np.full(WRIST, 0.2), np.full(SCENE, 1.5), pos - DEFAULT])
    np.testing.assert_allclose(core.tick.inputs['obs'][0], want, rtol=1e-6)
    np.testing.assert_allclose(core.tick.raw, want.astype(np.float32) @ weights, rtol=1e-5)


def test_frame_made_before_a_new_camera_info_is_not_installed(tmp_path, weights):
    from vision_policy.camera import Intrinsics
    core = make_core(tmp_path, weights)
    frame = core.preprocess(np.full((40, 40, 1), 2.0, np.float32), '32FC1', 'scene')
    core.update_camera(Intrinsics(40, 40, 30.0, 30.0, 19.5, 19.5), False, camera='scene')
    assert core.set_frame(frame) is False      # cropped for the camera before
    assert not core.cameras['scene'].has_frame
    assert core.set_frame(core.preprocess(np.full((40, 40, 1), 2.0, np.float32), '32FC1',
                                          'scene'))


# ---------------------------------------------------------------------------- monitor
def test_skew_hold_by_hand():
    cams = [camera_input('wrist'), camera_input('scene')]
    assert cams == ['image/wrist', 'image/scene']
    monitor = InputMonitor(['joint_states'] + cams, max_camera_skew=0.02)
    monitor.joints_valid = True
    now = 10_000_000_000
    ages = Ages(1.0, 1.0, 1.0)
    monitor.accept('joint_states', now)
    monitor.accept('image/wrist', now - 5_000_000)
    monitor.accept('image/scene', now - 35_000_000)   # 30 ms behind the wrist frame
    hold = monitor.decide(now, ages)
    assert hold.reason is HoldReason.CAMERA_SKEW
    assert hold.detail == ('image/wrist, image/scene stamped 30.0 ms apart, max_camera_skew '
                           '20.0 ms')
    monitor.max_camera_skew = 0.031
    assert monitor.decide(now, ages) is None
    # A stale camera is reported as such, before any skew.
    assert monitor.decide(now + 1_020_000_000, ages).reason is HoldReason.INPUT_TOO_OLD


# ---------------------------------------------------------------------------- worker
def test_worker_handles_only_the_newest_pending_item_per_key():
    started, release, handled = threading.Event(), threading.Event(), []

    def handle(key, item):
        started.set()
        release.wait(10.0)
        handled.append((key, item))

    worker = FrameWorker(handle)
    try:
        assert worker.submit('a', 1)
        assert started.wait(10.0)             # 1 is being handled
        assert worker.submit('a', 2)
        assert not worker.submit('a', 3)      # 2 replaced before the worker took it
        assert worker.submit('b', 1)
        release.set()
        assert worker.wait_idle(10.0)
        assert handled == [('a', 1), ('a', 3), ('b', 1)]
        assert worker.superseded == 1
    finally:
        worker.stop()


def test_worker_survives_a_failing_handler():
    handled = []

    def handle(key, item):
        if item == 'bad':
            raise ValueError('broken frame')
        handled.append(item)

    worker = FrameWorker(handle)
    try:
        worker.submit('a', 'bad')
        assert worker.wait_idle(10.0)
        worker.submit('a', 'good')
        assert worker.wait_idle(10.0)
        assert handled == ['good']
        assert (worker.failures, worker.last_failure) == (1, 'ValueError: broken frame')
    finally:
        worker.stop()


# ---------------------------------------------------------------------------- node
def test_node_commands_from_both_cameras_and_holds_on_skew(harness, tmp_path, weights):
    params = {'model_path': write_policy(tmp_path, weights), 'autostart': True,
              'max_image_age': 5.0, 'max_joint_state_age': 5.0,
              'scene_image_topic': 'depth/image'}
    node = harness.add(PolicyInferenceNode(
        context=harness.context,
        parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]))
    assert node.monitor.inputs == ('joint_states', 'image/wrist', 'image/scene')
    peer = harness.node('peer')
    wrist = peer.create_publisher(Image, '/wrist/image_raw', qos_profile_sensor_data)
    scene = peer.create_publisher(Image, '/depth/image', qos_profile_sensor_data)
    joints = peer.create_publisher(JointState, '/joint_states', 10)
    received, diags = [], []
    peer.create_subscription(JointTrajectory, '/joint_trajectory_controller/joint_trajectory',
                             received.append, 100)
    peer.create_subscription(DiagnosticArray, '/diagnostics', diags.append, 10)
    assert harness.wait_for(lambda: wrist.get_subscription_count() and
                            scene.get_subscription_count() and
                            joints.get_subscription_count() and
                            node._traj_pub.get_subscription_count())

    def image(pixels, encoding, stamp):
        msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                    step=pixels.strides[0])
        msg.header.stamp = stamp.to_msg()
        msg.data = array.array('B', pixels.tobytes())
        return msg

    rgb, depth = np.full((48, 64, 3), 51, np.uint8), np.full((40, 40, 1), 1.5, np.float32)

    def feed_until(condition, scene_lag_ns=0):
        def step():
            now = peer.get_clock().now()
            msg = JointState(name=JOINTS, position=[0.1, 0.2, -0.5], velocity=[0.0] * 3)
            msg.header.stamp = now.to_msg()
            joints.publish(msg)
            wrist.publish(image(rgb, 'rgb8', now))
            scene.publish(image(depth, '32FC1', now - rclpy_duration(scene_lag_ns)))
            return condition()
        return harness.wait_for(step, timeout=60.0, period=0.03)

    assert feed_until(lambda: len(received) >= 3), 'no command from two cameras'
    # A tick between the two frames of a pair sees them one period apart (30 ms here,
    # max_camera_skew 20 ms): it holds until the pair is complete again.
    assert feed_until(lambda: node.hold is None)
    want = np.concatenate([np.full(WRIST, 0.2), np.full(SCENE, 1.5),
                           np.array([0.1, 0.2, -0.5]) - DEFAULT])
    np.testing.assert_allclose(node.core.tick.inputs['obs'][0], want, rtol=1e-6)
    # The scene camera's frames now lag the wrist camera's by 100 ms: max_camera_skew 20 ms.
    assert feed_until(lambda: node.hold is not None and
                      node.hold.reason is HoldReason.CAMERA_SKEW, scene_lag_ns=100_000_000)
    assert node.stats.counters.camera_skew_holds >= 1
    assert harness.wait_for(lambda: any(
        kv.key == 'camera_skew_holds' and int(kv.value) >= 1
        for d in diags for s in d.status for kv in s.values), timeout=10.0)
    values = {kv.key: kv.value for kv in node.diagnostics().values}
    assert 'image/scene' in values['hold_reason']
    assert {'wrist_images_lost', 'scene_images_lost', 'max_camera_skew_s'} <= set(values)
    # In step again: commanding resumes.
    assert feed_until(lambda: node.hold is None)


def rclpy_duration(ns):
    from rclpy.duration import Duration
    return Duration(nanoseconds=ns)
