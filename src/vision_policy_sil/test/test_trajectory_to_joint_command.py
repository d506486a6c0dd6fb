"""The adapter node for real: rclpy over DDS, trajectories in, JointState commands out."""
import math
import threading
import time

from builtin_interfaces.msg import Duration
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from vision_policy_sil.trajectory_to_joint_command import (
    command_from_trajectory, JointCommand, TrajectoryError, TrajectoryToJointCommand)

JOINTS = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint']


def _trajectory(names, *points) -> JointTrajectory:
    msg = JointTrajectory()
    msg.header.frame_id = 'base_link'
    msg.joint_names = list(names)
    for i, positions in enumerate(points):
        msg.points.append(JointTrajectoryPoint(
            positions=[float(p) for p in positions],
            time_from_start=Duration(sec=0, nanosec=50_000_000 * (i + 1))))
    return msg


@pytest.fixture
def ros():
    """Adapter and a probe node spinning in a background executor."""
    context = rclpy.Context()
    rclpy.init(context=context)
    adapter = TrajectoryToJointCommand(context=context, parameter_overrides=[
        rclpy.parameter.Parameter('input_topic', value='/sil_test/trajectory'),
        rclpy.parameter.Parameter('output_topic', value='/sil_test/joint_command')])
    probe = rclpy.create_node('sil_test_probe', context=context)
    received = []
    probe.create_subscription(JointState, '/sil_test/joint_command', received.append, 10)
    publisher = probe.create_publisher(JointTrajectory, '/sil_test/trajectory', 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(adapter)
    executor.add_node(probe)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10.0
    while (publisher.get_subscription_count() < 1
           or adapter.count_subscribers('/sil_test/joint_command') < 1):
        assert time.monotonic() < deadline, 'DDS discovery did not complete'
        time.sleep(0.05)
    yield adapter, publisher, received
    executor.shutdown()
    adapter.destroy_node()
    probe.destroy_node()
    rclpy.shutdown(context=context)
    thread.join(timeout=5.0)


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_parameters_name_the_topics(ros):
    adapter, _, _ = ros
    assert adapter.input_topic == '/sil_test/trajectory'
    assert adapter.output_topic == '/sil_test/joint_command'
    assert adapter.log_throttle_s == 5.0


def test_forwards_first_point_with_names(ros):
    adapter, publisher, received = ros
    publisher.publish(_trajectory(JOINTS, [0.1, -0.2, 0.3], [9.0, 9.0, 9.0]))
    assert _wait(lambda: len(received) == 1)
    command = received[0]
    assert list(command.name) == JOINTS
    assert list(command.position) == pytest.approx([0.1, -0.2, 0.3])
    assert list(command.velocity) == [] and list(command.effort) == []
    assert command.header.frame_id == 'base_link'
    assert adapter.forwarded_count == 1 and adapter.rejected_count == 0


def test_keeps_the_trajectory_joint_order(ros):
    _, publisher, received = ros
    publisher.publish(_trajectory(['elbow_joint', 'shoulder_pan_joint'], [1.5, -1.0]))
    assert _wait(lambda: len(received) == 1)
    assert list(received[0].name) == ['elbow_joint', 'shoulder_pan_joint']
    assert list(received[0].position) == pytest.approx([1.5, -1.0])


def test_bad_trajectories_are_counted_and_not_forwarded(ros):
    adapter, publisher, received = ros
    bad = [
        _trajectory(JOINTS, [0.1, 0.2]),                      # too few positions
        _trajectory(JOINTS, [0.1, math.nan, 0.3]),            # NaN
        _trajectory(JOINTS, [0.1, 0.2, math.inf]),            # infinite
        _trajectory(JOINTS),                                  # no point
        _trajectory([], [0.1]),                               # no names
        _trajectory(['a', 'a'], [0.1, 0.2]),                  # duplicate names
    ]
    for msg in bad:
        publisher.publish(msg)
    assert _wait(lambda: adapter.rejected_count == len(bad))
    # A good message afterwards still goes through: the node did not stop.
    publisher.publish(_trajectory(JOINTS, [0.0, 0.5, -0.5]))
    assert _wait(lambda: len(received) == 1)
    time.sleep(0.2)
    assert len(received) == 1
    assert list(received[0].position) == pytest.approx([0.0, 0.5, -0.5])
    assert adapter.forwarded_count == 1
    assert adapter.rejected_count == len(bad)
    assert 'points[0].positions' in adapter.last_error or 'joint_names' in adapter.last_error


def test_command_from_trajectory_pure():
    assert command_from_trajectory(['a', 'b'], [[1, 2], [3, 4]]) == JointCommand(
        ('a', 'b'), (1.0, 2.0))
    with pytest.raises(TrajectoryError, match='2 values for 3 joints'):
        command_from_trajectory(['a', 'b', 'c'], [[1, 2]])
    with pytest.raises(TrajectoryError, match='for b is nan'):
        command_from_trajectory(['a', 'b'], [[1, math.nan]])
    with pytest.raises(TrajectoryError, match='no points'):
        command_from_trajectory(['a'], [])
    with pytest.raises(TrajectoryError, match='empty name'):
        command_from_trajectory(['a', ''], [[1, 2]])
