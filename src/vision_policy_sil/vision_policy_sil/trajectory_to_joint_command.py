"""
Adapt JointTrajectory to the JointState position command Isaac Sim's bridge subscribes to.

Isaac Sim's ROS 2 bridge has no trajectory subscriber: its ROS2SubscribeJointState node
takes sensor_msgs/JointState on /joint_command and drives an articulation controller by
joint name. The policy node publishes one JointTrajectory per control tick whose point
is the position target for the coming period. The adapter forwards the FIRST point of
each trajectory: it is the target due soonest, the articulation's PD drive starts
tracking it at once (as a position-controlled robot does), and any later point would be
replaced by the next tick's trajectory anyway.

A malformed trajectory (no names, duplicate names, wrong number of positions, NaN or
infinite values, no points) is counted, logged with throttling and dropped: nothing is
published, so the simulated robot keeps holding its previous target.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

NODE_NAME = 'trajectory_to_joint_command'


class TrajectoryError(ValueError):
    """A trajectory cannot be turned into a joint command; the message says why."""


@dataclass(frozen=True)
class JointCommand:
    """Joint names and the position targets to command now, in the same order."""

    names: tuple[str, ...]
    positions: tuple[float, ...]


def command_from_trajectory(names: Sequence[str],
                            points: Sequence[Sequence[float]]) -> JointCommand:
    """Return the command for the first point; TrajectoryError when the input is bad."""
    if not names:
        raise TrajectoryError('joint_names is empty')
    if any(not name for name in names):
        raise TrajectoryError(f'joint_names contains an empty name: {list(names)}')
    if len(set(names)) != len(names):
        raise TrajectoryError(f'joint_names has duplicates: {list(names)}')
    if not points:
        raise TrajectoryError('trajectory has no points')
    positions = [float(p) for p in points[0]]
    if len(positions) != len(names):
        raise TrajectoryError(
            f'points[0].positions has {len(positions)} values for {len(names)} joints')
    for name, value in zip(names, positions):
        if not math.isfinite(value):
            raise TrajectoryError(f'points[0].positions for {name} is {value}')
    return JointCommand(tuple(names), tuple(positions))


class TrajectoryToJointCommand(Node):
    """Subscribe JointTrajectory, publish JointState position commands."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.input_topic = self.declare_parameter(
            'input_topic', '/joint_trajectory_controller/joint_trajectory').value
        self.output_topic = self.declare_parameter('output_topic', '/joint_command').value
        self.log_throttle_s = float(self.declare_parameter('log_throttle_s', 5.0).value)
        self.forwarded_count = 0
        self.rejected_count = 0
        self.last_error = ''
        self._publisher = self.create_publisher(JointState, self.output_topic, 10)
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(JointTrajectory, self.input_topic, self._on_trajectory, 10)
        self.create_timer(1.0, self._publish_diagnostics)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            command = command_from_trajectory(
                list(msg.joint_names), [list(p.positions) for p in msg.points])
        except TrajectoryError as err:
            self.rejected_count += 1
            self.last_error = str(err)
            self.get_logger().warning(
                f'dropped trajectory on {self.input_topic} ({self.rejected_count} so far): '
                f'{err}', throttle_duration_sec=self.log_throttle_s)
            return
        out = JointState()
        out.header.stamp = self.get_clock().now().to_msg()
        out.header.frame_id = msg.header.frame_id
        out.name = list(command.names)
        out.position = list(command.positions)
        self._publisher.publish(out)
        self.forwarded_count += 1

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(
            name=f'{self.get_name()}: trajectory adapter', hardware_id='sil',
            level=DiagnosticStatus.WARN if self.rejected_count else DiagnosticStatus.OK,
            message=self.last_error or 'forwarding')
        status.values = [KeyValue(key='forwarded', value=str(self.forwarded_count)),
                         KeyValue(key='rejected', value=str(self.rejected_count))]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)


def main(args: Optional[Sequence[str]] = None) -> None:
    """Run the adapter until shut down."""
    rclpy.init(args=args)
    node = TrajectoryToJointCommand()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
