"""
Sources: the topics, besides the camera and the joint states, that feed observation terms.

A term names the sources it needs (``Term.needs``); the node subscribes to exactly those,
hands each message to ``Source.read`` and gives the values to the core. A source that is
missing or older than ``max_extra_age`` holds the robot like a stale joint state. No ROS
imports here: a source names its message type as a string, the node imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np


class InputError(ValueError):
    """A sensor message cannot be used; the node counts it and holds the robot."""


@dataclass(frozen=True)
class Source:
    """A topic that feeds observation terms with values in ``Sample.extras``."""

    name: str            # the node's parameter '<name>_topic' names its topic
    msg_type: str        # 'sensor_msgs/msg/Imu'
    default_topic: str   # relative, so a namespace moves it
    read: Callable[[Any], Mapping[str, np.ndarray]]  # msg -> {extras key: values}
    stamped: bool = True  # age from header.stamp; False: from the time of receipt
    qos: str = 'sensor_data'  # 'sensor_data' (best effort, depth 5) or 'reliable'
    description: str = ''

    @property
    def topic_parameter(self) -> str:
        """Return the name of the node parameter that holds this source's topic."""
        return f'{self.name}_topic'


def _vector(*values: float) -> np.ndarray:
    out = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise InputError(f'message contains NaN/Inf: {out.tolist()}')
    return out


def _read_imu(msg: Any) -> Mapping[str, np.ndarray]:
    o, w = msg.orientation, msg.angular_velocity
    quat = _vector(o.x, o.y, o.z, o.w)
    if not 0.5 < float(np.linalg.norm(quat)) < 1.5:
        raise InputError(f'orientation {quat.tolist()} is not a unit quaternion')
    a = msg.linear_acceleration
    return {'imu_orientation': quat, 'imu_angular_velocity': _vector(w.x, w.y, w.z),
            'imu_linear_acceleration': _vector(a.x, a.y, a.z)}


def _read_odom(msg: Any) -> Mapping[str, np.ndarray]:
    v, p = msg.twist.twist.linear, msg.pose.pose.position
    return {'base_lin_vel': _vector(v.x, v.y, v.z), 'base_pos': _vector(p.x, p.y, p.z)}


def _read_cmd_vel(msg: Any) -> Mapping[str, np.ndarray]:
    return {'velocity_command': _vector(msg.linear.x, msg.linear.y, msg.angular.z)}


def _read_height_map(msg: Any) -> Mapping[str, np.ndarray]:
    """std_msgs/Float32MultiArray, dims [rows along y, columns along x], row-major."""
    dims, offset = msg.layout.dim, msg.layout.data_offset
    if len(dims) != 2 or offset + dims[0].size * dims[1].size != len(msg.data):
        raise InputError(f'height map: expected a 2-D layout [ny, nx] holding the '
                         f'{len(msg.data) - offset} values after data_offset {offset}, found '
                         f'dims {[(d.label, d.size) for d in dims]}')
    grid = np.asarray(msg.data, dtype=np.float32)[offset:]
    # NaN/Inf are rays without a hit: height_scan turns them into Isaac Lab's miss value.
    return {'height_map': grid.reshape(dims[0].size, dims[1].size)}


def _read_pose_command(msg: Any) -> Mapping[str, np.ndarray]:
    p, q = msg.pose.position, msg.pose.orientation
    quat = _vector(q.w, q.x, q.y, q.z)
    if not 0.5 < float(np.linalg.norm(quat)) < 1.5:
        raise InputError(f'orientation {quat.tolist()} (w, x, y, z) is not a unit quaternion')
    # Isaac Lab's pose command: position, then the quaternion w first.
    return {'pose_command': np.concatenate([_vector(p.x, p.y, p.z), quat])}


# The built-in sources, registered in setup.py's entry points (group vision_policy.sources)
# like a user's own.
IMU = Source('imu', 'sensor_msgs/msg/Imu', 'imu', _read_imu,
             description='base_ang_vel, projected_gravity, imu_orientation, root_quat_w, '
                         'imu_lin_acc')
ODOM = Source('odom', 'nav_msgs/msg/Odometry', 'odom', _read_odom,
              description='base_lin_vel (twist in the body frame), base_pos_z (pose)')
# Twist has no header: its age is counted from receipt.
CMD_VEL = Source('cmd_vel', 'geometry_msgs/msg/Twist', 'cmd_vel', _read_cmd_vel,
                 stamped=False, qos='reliable', description='velocity_commands [vx, vy, wz]')
# Float32MultiArray has no header either.
HEIGHT_MAP = Source('height_map', 'std_msgs/msg/Float32MultiArray', 'height_map',
                    _read_height_map, stamped=False,
                    description='height_scan: terrain z of each grid point in the scanner '
                                'frame, [ny, nx] row-major')
POSE_COMMAND = Source('pose_command', 'geometry_msgs/msg/PoseStamped', 'pose_command',
                      _read_pose_command, qos='reliable',
                      description='pose_command: target pose in the robot base frame')
BUILTIN_SOURCES: Mapping[str, Source] = MappingProxyType({s.name: s for s in (
    IMU, ODOM, CMD_VEL, HEIGHT_MAP, POSE_COMMAND)})


def get_source(name: str, registry: Any = None) -> Source:
    """Return the registered source called name, or raise CardError saying why not."""
    from .registry import load_registry   # late: the registry imports this module's Source
    registry = registry if registry is not None else load_registry()
    return registry.source(name, 'a term needs source')
