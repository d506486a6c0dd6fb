"""
The node's one trajectory message, kept serialized: a command patches its bytes in place.

Publishing a ``trajectory_msgs/JointTrajectory`` object makes rclpy convert it to C and
serialize it on every tick. The message the node sends differs between ticks only in
``header.stamp`` and the positions of its single point, so ``SerializedTrajectory``
serializes it once (rclpy's own serializer) and overwrites those two fields in the CDR
bytes; ``Publisher.publish`` sends bytes as they are. Where they are is found from the
bytes rclpy wrote, not from a restated layout, and checked once by deserializing.
"""

from __future__ import annotations

import struct
from typing import Sequence

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

_HEADER = 4   # the CDR encapsulation header; header.stamp is the payload's first field


class SerializedTrajectory:
    """A one-point JointTrajectory of fixed joints and time_from_start, as CDR bytes."""

    def __init__(self, joint_names: Sequence[str], time_from_start):
        n = len(joint_names)  # >= 1: a card's action names its joints
        # Positions no real command has (distinct negative NaN payloads) mark the array.
        marker = np.array([0xFFF8_0000_0000_1000 + i for i in range(n)],
                          dtype=np.uint64).view(np.float64)
        msg = JointTrajectory(joint_names=list(joint_names), points=[JointTrajectoryPoint(
            positions=marker.tolist(), time_from_start=time_from_start)])
        self._buf = bytearray(serialize_message(msg))
        order = '<' if self._buf[1] == 1 else '>'  # encapsulation CDR_LE (1) or CDR_BE (0)
        self._stamp = struct.Struct(order + 'iI')
        found = self._buf.find(marker.astype(order + 'f8').tobytes())
        if found < 0 or (found - _HEADER) % 8:
            raise RuntimeError('JointTrajectory: positions not found in its serialized form')
        self._positions = np.frombuffer(self._buf, dtype=order + 'f8', count=n, offset=found)
        self.command(np.arange(1.0, n + 1.0), 123_456_789_012)
        check = deserialize_message(bytes(self._buf), JointTrajectory)
        if list(check.points[0].positions) != list(range(1, n + 1)) or \
                (check.header.stamp.sec, check.header.stamp.nanosec) != (123, 456_789_012):
            raise RuntimeError('JointTrajectory: patched bytes do not deserialize as written')

    def command(self, positions: np.ndarray, stamp_ns: int) -> bytes:
        """Write the command's positions and header stamp; return the message's bytes."""
        self._positions[:] = positions
        self._stamp.pack_into(self._buf, _HEADER, *divmod(stamp_ns, 1_000_000_000))
        return bytes(self._buf)
