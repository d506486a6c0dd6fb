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

from .card import CardError


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
    return {'imu_orientation': quat, 'imu_angular_velocity': _vector(w.x, w.y, w.z)}


def _read_odom(msg: Any) -> Mapping[str, np.ndarray]:
    v = msg.twist.twist.linear
    return {'base_lin_vel': _vector(v.x, v.y, v.z)}


def _read_cmd_vel(msg: Any) -> Mapping[str, np.ndarray]:
    return {'velocity_command': _vector(msg.linear.x, msg.linear.y, msg.angular.z)}


BUILTIN_SOURCES: Mapping[str, Source] = MappingProxyType({s.name: s for s in (
    Source('imu', 'sensor_msgs/msg/Imu', 'imu', _read_imu,
           description='base_ang_vel, projected_gravity'),
    Source('odom', 'nav_msgs/msg/Odometry', 'odom', _read_odom,
           description='base_lin_vel (twist in the body frame)'),
    # Twist has no header: its age is counted from receipt.
    Source('cmd_vel', 'geometry_msgs/msg/Twist', 'cmd_vel', _read_cmd_vel, stamped=False,
           qos='reliable', description='velocity_commands [vx, vy, wz]'),
)})


def get_source(name: str) -> Source:
    """Return the source called name, or raise CardError naming the known ones."""
    source = BUILTIN_SOURCES.get(name)
    if source is None:
        raise CardError(f'a term needs source {name!r}, which is not known; known sources: '
                        f'{sorted(BUILTIN_SOURCES)}')
    return source
