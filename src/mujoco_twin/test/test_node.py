"""The twin node alone, in-process over real DDS: rates, images, commands, reset."""
import subprocess
import sys
import time

from builtin_interfaces.msg import Duration
import numpy as np
import pytest
from ros_probe import TwinUnderTest
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

NAMES = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint']
CAMERA_RATE, JOINT_STATE_RATE = 10.0, 50.0


@pytest.fixture(scope='module')
def ros(rendering):
    under_test = TwinUnderTest(
        seed=7, image_width=160, image_height=120, camera_rate=CAMERA_RATE,
        joint_state_rate=JOINT_STATE_RATE, use_sim_time=True)
    assert under_test.probe.wait_for(lambda: under_test.probe.images, 10.0), 'no image'
    yield under_test
    under_test.close()


def latest_positions(ros) -> np.ndarray:
    return np.array(ros.probe.joints[-1].position)


def test_publishes_at_configured_rates_in_real_time(ros):
    probe = ros.probe
    counts = len(probe.images), len(probe.joints), probe.clocks[-1].clock
    time.sleep(3.0)
    images, joints = len(probe.images) - counts[0], len(probe.joints) - counts[1]
    sim_elapsed = (probe.clocks[-1].clock.sec - counts[2].sec
                   + (probe.clocks[-1].clock.nanosec - counts[2].nanosec) * 1e-9)
    # A shared 2-core machine: rates within +-50 %, not a timing benchmark.
    assert 0.5 * CAMERA_RATE * 3 <= images <= 1.5 * CAMERA_RATE * 3
    assert 0.5 * JOINT_STATE_RATE * 3 <= joints <= 1.5 * JOINT_STATE_RATE * 3
    assert 1.5 <= sim_elapsed <= 4.5
    # In simulation time the schedule is exact to a physics step.
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in probe.images[-5:]]
    np.testing.assert_allclose(np.diff(stamps), 1.0 / CAMERA_RATE, atol=0.0021)
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in probe.joints[-5:]]
    np.testing.assert_allclose(np.diff(stamps), 1.0 / JOINT_STATE_RATE, atol=0.0021)


def test_images_and_camera_info(ros):
    image, info = ros.probe.images[-1], ros.probe.infos[-1]
    assert (image.width, image.height, image.encoding) == (160, 120, 'rgb8')
    assert image.step == 480 and len(image.data) == 480 * 120
    assert image.header.frame_id == info.header.frame_id == 'scene_camera_optical'
    pixels = np.frombuffer(bytes(image.data), np.uint8).reshape(120, 160, 3).astype(int)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert red.sum() >= 10
    fy = 60.0 / np.tan(np.radians(55.0) / 2.0)
    np.testing.assert_allclose(info.k, [fy, 0, 79.5, 0, fy, 59.5, 0, 0, 1])
    assert (info.width, info.height) == (160, 120)


def test_optional_cameras_are_off_by_default(ros):
    for topic in ('/depth_camera/image_raw', '/depth_camera/camera_info',
                  '/wrist_camera/image_raw', '/wrist_camera/camera_info'):
        assert ros.probe.count_publishers(topic) == 0, topic
    assert ros.probe.depth_images == [] and ros.probe.wrist_images == []


def test_joint_states_and_task_state(ros):
    joints = ros.probe.joints[-1]
    assert list(joints.name) == NAMES
    assert len(joints.velocity) == 3
    task = np.array(ros.probe.tasks[-1].data)
    assert ros.probe.tasks[-1].layout.dim[0].label.split(',') == [
        'time', 'episode', 'target_x', 'target_y', 'target_z', 'ee_x', 'ee_y', 'ee_z',
        'distance']
    assert task.shape == (9,)
    assert task[8] == pytest.approx(np.linalg.norm(task[2:5] - task[5:8]))


def test_trajectory_step_command_converges(ros):
    goal = ros.twin.sim.target_joint_positions
    msg = JointTrajectory(joint_names=list(reversed(NAMES)))
    msg.points = [JointTrajectoryPoint(
        positions=goal[::-1].tolist(), time_from_start=Duration(sec=0, nanosec=500_000_000))]
    assert ros.probe.wait_for(lambda: ros.probe.trajectory_pub.get_subscription_count(), 5.0)
    ros.probe.trajectory_pub.publish(msg)
    assert ros.probe.wait_for(
        lambda: np.max(np.abs(latest_positions(ros) - goal)) < 5e-3, 8.0), \
        f'joints {latest_positions(ros)} did not reach {goal}'
    assert ros.probe.wait_for(lambda: ros.probe.tasks[-1].data[8] < 0.01, 2.0)


def test_joint_command_moves_a_subset(ros):
    before = latest_positions(ros)
    assert ros.probe.wait_for(lambda: ros.probe.command_pub.get_subscription_count(), 5.0)
    ros.probe.command_pub.publish(JointState(name=['elbow_joint'], position=[0.9]))
    expected = np.array([before[0], before[1], 0.9])
    assert ros.probe.wait_for(
        lambda: np.max(np.abs(latest_positions(ros) - expected)) < 5e-3, 8.0), \
        f'joints {latest_positions(ros)}, expected {expected}'


def test_bad_commands_are_rejected_counted_and_ignored(ros):
    held = ros.twin.sim.position_targets
    rejected = ros.twin.rejected_trajectories, ros.twin.rejected_joint_commands
    unknown = JointTrajectory(joint_names=['wrist_joint'])
    unknown.points = [JointTrajectoryPoint(positions=[0.0], time_from_start=Duration(sec=1))]
    backwards = JointTrajectory(joint_names=NAMES)
    backwards.points = [
        JointTrajectoryPoint(positions=[0.5] * 3, time_from_start=Duration(sec=2)),
        JointTrajectoryPoint(positions=[0.6] * 3, time_from_start=Duration(sec=1))]
    ros.probe.trajectory_pub.publish(unknown)
    ros.probe.trajectory_pub.publish(backwards)
    ros.probe.command_pub.publish(JointState(name=['elbow_joint'], position=[]))
    assert ros.probe.wait_for(
        lambda: (ros.twin.rejected_trajectories, ros.twin.rejected_joint_commands)
        == (rejected[0] + 2, rejected[1] + 1), 5.0), \
        f'counts {ros.twin.rejected_trajectories}, {ros.twin.rejected_joint_commands}'
    time.sleep(0.2)
    np.testing.assert_allclose(ros.twin.sim.position_targets, held)


def test_reset_starts_a_new_episode_with_a_new_target(ros):
    before = ros.probe.tasks[-1].data
    response = ros.probe.reset()
    assert response.success and response.message.startswith(f'episode {int(before[1]) + 1}')
    assert ros.probe.wait_for(lambda: ros.probe.tasks[-1].data[1] == before[1] + 1, 5.0)
    after = ros.probe.tasks[-1].data
    assert np.linalg.norm(np.subtract(after[2:5], before[2:5])) > 1e-3
    assert after[0] > before[0]  # simulation time keeps running
    np.testing.assert_allclose(latest_positions(ros), [0.0, 0.3, -0.6], atol=0.02)


def test_bad_parameter_exits_with_a_clear_error():
    result = subprocess.run(
        [sys.executable, '-m', 'mujoco_twin.twin_node', '--ros-args', '-p', 'camera_rate:=-1.0'],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert 'mujoco_twin.camera_rate: -1.0 Hz' in result.stderr
