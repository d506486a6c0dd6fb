"""The node's pre-serialized trajectory against rclpy's own serializer and deserializer."""

from builtin_interfaces.msg import Duration
from hypothesis import given, settings, strategies as st
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vision_policy.trajectory_cdr import SerializedTrajectory

names = st.lists(st.text('abcdefghij_', min_size=1, max_size=11), min_size=1, max_size=9,
                 unique=True)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None)
@given(names=names, data=st.data(), stamp_ns=st.integers(0, 2**31 * 10**9 - 1),
       tfs=st.tuples(st.integers(0, 5), st.integers(0, 999_999_999)))
def test_patched_bytes_are_the_message_rclpy_would_serialize(names, data, stamp_ns, tfs):
    positions = np.array(data.draw(st.lists(finite, min_size=len(names),
                                            max_size=len(names))))
    duration = Duration(sec=tfs[0], nanosec=tfs[1])
    trajectory = SerializedTrajectory(names, duration)
    patched = trajectory.command(positions, stamp_ns)

    expected = JointTrajectory(joint_names=names, points=[JointTrajectoryPoint(
        positions=positions.tolist(), time_from_start=duration)])
    expected.header.stamp.sec, expected.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    assert patched == serialize_message(expected)
    back = deserialize_message(patched, JointTrajectory)
    assert list(back.points[0].positions) == positions.tolist()
    assert back.joint_names == names


def test_each_command_overwrites_the_last():
    trajectory = SerializedTrajectory(['a', 'bb', 'ccc'], Duration(nanosec=20_000_000))
    trajectory.command(np.array([1.0, 2.0, 3.0]), 5 * 10**9 + 7)
    back = deserialize_message(trajectory.command(np.array([-0.5, 0.0, 0.25]), 0),
                               JointTrajectory)
    assert list(back.points[0].positions) == [-0.5, 0.0, 0.25]
    assert (back.header.stamp.sec, back.header.stamp.nanosec) == (0, 0)
    assert back.points[0].time_from_start.nanosec == 20_000_000
    assert back.header.frame_id == '' and len(back.points) == 1
