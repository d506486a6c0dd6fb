"""policy_inference with record_path over real topics: the recording replays bit for bit."""

import array
import time

from conftest import rgb_image
import numpy as np
import pytest

pytest.importorskip('mcap.reader', reason='mcap not installed')

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402
from vision_policy.node import PolicyInferenceNode  # noqa: E402
from vision_policy.replay import replay_recording  # noqa: E402

JOINTS = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint']


def test_node_recording_replays_bit_for_bit(harness, model_path, tmp_path):
    path = tmp_path / 'node.mcap'
    node = harness.add(PolicyInferenceNode(context=harness.context, parameter_overrides=[
        Parameter('model_path', value=str(model_path)), Parameter('autostart', value=True),
        Parameter('record_path', value=str(path)),
        # Generous ages: a loaded machine must not turn this test into one about holds.
        Parameter('max_image_age', value=5.0), Parameter('max_joint_state_age', value=5.0)]))
    peer = harness.node('peer')
    image_pub = peer.create_publisher(Image, 'camera/image_raw', qos_profile_sensor_data)
    joint_pub = peer.create_publisher(JointState, 'joint_states', 10)
    estop_pub = peer.create_publisher(Bool, 'emergency_stop', 10)
    received = []
    peer.create_subscription(JointTrajectory, 'joint_trajectory_controller/joint_trajectory',
                             received.append, 100)
    assert harness.wait_for(lambda: image_pub.get_subscription_count() > 0 and
                            joint_pub.get_subscription_count() > 0 and
                            node._traj_pub.get_subscription_count() > 0)
    counters = node.stats.counters
    rng = np.random.default_rng(3)

    def feed(until, timeout=30.0):
        end = time.monotonic() + timeout
        k = 0
        while time.monotonic() < end and not until():
            img = rgb_image(160, 120, seed=k)
            msg = Image(height=120, width=160, encoding='rgb8', step=480,
                        data=array.array('B', img.tobytes()))
            msg.header.stamp = peer.get_clock().now().to_msg()
            image_pub.publish(msg)
            joints = JointState(name=JOINTS, position=rng.normal(0, 0.3, 3).tolist(),
                                velocity=rng.normal(0, 0.3, 3).tolist())
            joints.header.stamp = peer.get_clock().now().to_msg()
            joint_pub.publish(joints)
            k += 1
            time.sleep(0.03)
        return until()

    assert feed(lambda: counters.commands >= 20)
    estop_pub.publish(Bool(data=True))
    assert harness.wait_for(lambda: counters.estops == 1)
    estop_pub.publish(Bool(data=False))
    assert harness.wait_for(lambda: not node.monitor.estop)
    start = counters.commands
    assert feed(lambda: counters.commands >= start + 20)
    node.trigger_deactivate()
    node.trigger_cleanup()  # closes the recording
    assert path.stat().st_size > 0

    result = replay_recording(path)
    assert result.identical, result.summary()
    assert result.commands == counters.commands
    assert any(reason.startswith('emergency stop') for reason in result.holds)
    assert result.max_abs['command'] == 0.0


def test_unwritable_record_path_fails_configure(harness, model_path, tmp_path):
    node = harness.add(PolicyInferenceNode(context=harness.context, parameter_overrides=[
        Parameter('model_path', value=str(model_path)), Parameter('autostart', value=True),
        Parameter('record_path', value=str(tmp_path / 'missing' / 'run.mcap'))]))
    assert node._state_machine.current_state[1] == 'unconfigured'
    assert 'record_path' in node.error and 'does not exist' in node.error
    assert node._subs == [] and node.core is None
