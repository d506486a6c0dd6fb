"""Command handling without a running node: trajectory planning and parameter validation."""
import math

from builtin_interfaces.msg import Duration, Time
from mujoco_twin.twin_node import (
    plan_trajectory, to_time, TrajectoryError, TwinConfig, TwinParameterError)
import numpy as np
import pytest
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

NAMES = ('shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint')
CURRENT = np.array([0.0, 0.3, -0.6])


def trajectory(names, points, stamp=0.0) -> JointTrajectory:
    """Build a JointTrajectory from [(time_from_start, positions), ...]."""
    msg = JointTrajectory(joint_names=list(names))
    msg.header.stamp = to_time(stamp)
    for t, q in points:
        sec = math.floor(t)
        msg.points.append(JointTrajectoryPoint(
            positions=list(q),
            time_from_start=Duration(sec=sec, nanosec=int(round((t - sec) * 1e9)))))
    return msg


def test_interpolates_linearly_from_current_state_through_points():
    msg = trajectory(NAMES, [(1.0, [1.0, 0.3, -0.6]), (2.0, [1.0, 1.3, -0.6])])
    plan = plan_trajectory(msg, now=10.0, current=CURRENT, joint_names=NAMES)
    np.testing.assert_allclose(plan.sample(10.0), CURRENT)
    np.testing.assert_allclose(plan.sample(10.5), [0.5, 0.3, -0.6])
    np.testing.assert_allclose(plan.sample(11.5), [1.0, 0.8, -0.6])
    np.testing.assert_allclose(plan.sample(99.0), [1.0, 1.3, -0.6])  # holds the last point


def test_joints_by_name_in_any_order_and_subsets():
    msg = trajectory(['elbow_joint', 'shoulder_pan_joint'], [(2.0, [0.4, -1.0])])
    plan = plan_trajectory(msg, now=0.0, current=CURRENT, joint_names=NAMES)
    assert plan.joints.tolist() == [2, 0]
    np.testing.assert_allclose(plan.sample(1.0), [-0.1, -0.5])


def test_stamp_sets_the_start_and_zero_time_point_jumps():
    msg = trajectory(NAMES, [(0.0, [0.1, 0.2, 0.3])], stamp=5.0)
    plan = plan_trajectory(msg, now=4.0, current=CURRENT, joint_names=NAMES)
    assert plan.start == 5.0
    np.testing.assert_allclose(plan.sample(4.0), [0.1, 0.2, 0.3])


@pytest.mark.parametrize('names, points, message', [
    (['wrist_joint'], [(1.0, [0.0])], 'unknown joints'),
    ([], [(1.0, [])], 'no joint names'),
    (['elbow_joint', 'elbow_joint'], [(1.0, [0.0, 0.0])], 'duplicate'),
    (NAMES, [], 'no points'),
    (NAMES, [(1.0, [0.0, 0.0])], '2 positions for 3 joint names'),
    (NAMES, [(1.0, [0.0, math.nan, 0.0])], 'not finite'),
    (NAMES, [(1.0, [0.0] * 3), (1.0, [0.1] * 3)], r'points\[1\].time_from_start'),
    (NAMES, [(2.0, [0.0] * 3), (1.0, [0.1] * 3)], r'points\[1\].time_from_start'),
])
def test_malformed_trajectories_are_refused(names, points, message):
    with pytest.raises(TrajectoryError, match=message):
        plan_trajectory(trajectory(names, points), 0.0, CURRENT, NAMES)


@pytest.mark.parametrize('field, value, message', [
    ('image_width', 0, 'image_width'),
    ('camera_rate', 0.0, 'camera_rate'),
    ('joint_state_rate', 1000.0, r'1/sim_dt = 500 Hz'),
    ('sim_dt', -0.001, 'sim_dt'),
    ('real_time_factor', math.inf, 'real_time_factor'),
    ('render_backend', 'vulkan', 'render_backend'),
])
def test_bad_parameters_name_the_parameter(field, value, message):
    with pytest.raises(TwinParameterError, match=message):
        TwinConfig(**{field: value}).validate()
    TwinConfig().validate()


def test_time_conversion_round_trips():
    assert to_time(1.25) == Time(sec=1, nanosec=250_000_000)
    assert to_time(0.0) == Time(sec=0, nanosec=0)
