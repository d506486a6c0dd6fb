"""
SilRecorder: an rclpy node that records a software-in-the-loop run for the demo report.

It listens, never commands: camera frames (subsampled in simulation time and shrunk),
the policy's JointTrajectory commands, the measured /joint_states, the twin's task state,
/clock and /diagnostics. It also calls the twin's reset service. Everything it stores is a
frozen sample; ``window(start, end)`` cuts one episode out of the run.
"""
from __future__ import annotations

from dataclasses import dataclass
import threading
import time
from typing import Optional, Sequence

import cv2
from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from .topics import CAMERA_IMAGE, JOINT_STATES, TRAJECTORY

TASK_STATE = '/mujoco_twin/task_state'
RESET_SERVICE = '/mujoco_twin/reset'
POLICY_STATUS_PREFIX = '/policy_inference:'  # the node's fully qualified name
TWIN_STATUS_PREFIX = 'mujoco_twin'


def seconds(stamp) -> float:
    """Convert a builtin_interfaces/Time to seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


@dataclass(frozen=True)
class Frame:
    """A camera frame (shrunk copy, RGB) and its simulation stamp."""

    stamp: float
    image: np.ndarray


@dataclass(frozen=True)
class JointSample:
    """Measured joint positions, in the recorder's joint order, at a simulation stamp."""

    stamp: float
    positions: tuple


@dataclass(frozen=True)
class Command:
    """
    A JointTrajectory from the policy, as received.

    ``sim_time`` is the latest /clock at receipt; ``latency_wall`` is the wall time from
    the receipt of the newest camera image to the receipt of this command (None before
    any image).
    """

    sim_time: float
    positions: tuple
    latency_wall: Optional[float]


@dataclass(frozen=True)
class TaskSample:
    """One /mujoco_twin/task_state message."""

    time: float
    episode: int
    target: tuple
    ee: tuple
    distance: float


@dataclass(frozen=True)
class Status:
    """The key/values of one DiagnosticStatus, with the sender's stamp (its clock)."""

    stamp: float
    level: int
    message: str
    values: dict


@dataclass(frozen=True)
class EpisodeTrace:
    """Everything recorded between two simulation times (one episode)."""

    episode: int
    start: float
    end: float
    frames: tuple
    joints: tuple
    commands: tuple
    tasks: tuple


class RecorderError(RuntimeError):
    """The run cannot be recorded: a service is missing or a message is malformed."""


class SilRecorder(Node):
    """Record the SIL topics; thread-safe reads while an executor spins it elsewhere."""

    def __init__(self, joint_names: Sequence[str], frame_period: float = 0.1,
                 frame_width: int = 320, **kwargs) -> None:
        super().__init__('sil_recorder', **kwargs)
        self.joint_names = tuple(joint_names)
        self.frame_period = frame_period
        self.frame_width = frame_width
        self._lock = threading.Lock()
        self.sim_time = 0.0
        self.clock_count = 0
        self.images_received = 0
        self._next_frame = -np.inf
        self._last_image_wall: Optional[float] = None
        self.frames: list = []
        self.joints: list = []
        self.commands: list = []
        self.tasks: list = []
        self.policy_status: Optional[Status] = None
        self.twin_status: Optional[Status] = None
        reliable = 100
        self.create_subscription(Clock, '/clock', self._on_clock, 10)
        self.create_subscription(Image, CAMERA_IMAGE, self._on_image, qos_profile_sensor_data)
        self.create_subscription(JointState, JOINT_STATES, self._on_joints, reliable)
        self.create_subscription(JointTrajectory, TRAJECTORY, self._on_command, reliable)
        self.create_subscription(Float64MultiArray, TASK_STATE, self._on_task, reliable)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 20)
        self._reset = self.create_client(Trigger, RESET_SERVICE)

    # -- callbacks (executor thread) ----------------------------------------------------------

    def _on_clock(self, msg: Clock) -> None:
        with self._lock:
            self.sim_time = seconds(msg.clock)
            self.clock_count += 1

    def _on_image(self, msg: Image) -> None:
        wall = time.monotonic()
        stamp = seconds(msg.header.stamp)
        with self._lock:
            self.images_received += 1
            self._last_image_wall = wall
            if stamp < self._next_frame or msg.encoding != 'rgb8':
                return
            self._next_frame = stamp + self.frame_period
        image = np.frombuffer(msg.data, dtype=np.uint8).reshape(
            msg.height, msg.step)[:, :msg.width * 3].reshape(msg.height, msg.width, 3)
        if msg.width > self.frame_width:
            height = max(1, round(msg.height * self.frame_width / msg.width))
            image = cv2.resize(image, (self.frame_width, height), interpolation=cv2.INTER_AREA)
        else:
            image = image.copy()
        with self._lock:
            self.frames.append(Frame(stamp, image))

    def _on_joints(self, msg: JointState) -> None:
        positions = self._ordered(msg.name, msg.position)
        if positions is not None:
            with self._lock:
                self.joints.append(JointSample(seconds(msg.header.stamp), positions))

    def _on_command(self, msg: JointTrajectory) -> None:
        wall = time.monotonic()
        if not msg.points:
            return
        positions = self._ordered(msg.joint_names, msg.points[0].positions)
        if positions is None:
            return
        with self._lock:
            latency = None if self._last_image_wall is None else wall - self._last_image_wall
            self.commands.append(Command(self.sim_time, positions, latency))

    def _on_task(self, msg: Float64MultiArray) -> None:
        d = list(msg.data)
        if len(d) < 9:
            return
        with self._lock:
            self.tasks.append(TaskSample(d[0], int(d[1]), tuple(d[2:5]), tuple(d[5:8]), d[8]))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            record = Status(seconds(msg.header.stamp), int.from_bytes(status.level, 'little')
                            if isinstance(status.level, bytes) else int(status.level),
                            status.message, {kv.key: kv.value for kv in status.values})
            with self._lock:
                if status.name.startswith(POLICY_STATUS_PREFIX):
                    self.policy_status = record
                elif status.name.startswith(TWIN_STATUS_PREFIX):
                    self.twin_status = record

    def _ordered(self, names: Sequence[str], values: Sequence[float]) -> Optional[tuple]:
        lookup = dict(zip(names, values))
        if any(n not in lookup for n in self.joint_names):
            return None
        return tuple(float(lookup[n]) for n in self.joint_names)

    # -- queries (any thread) -----------------------------------------------------------------

    def latest_task(self) -> Optional[TaskSample]:
        """Return the newest task state, or None before the first."""
        with self._lock:
            return self.tasks[-1] if self.tasks else None

    def first_task_after(self, episode: int) -> Optional[TaskSample]:
        """Return the first task state of a later episode than `episode`, or None."""
        with self._lock:
            return next((t for t in self.tasks if t.episode > episode), None)

    def command_count(self) -> int:
        """Count the commands received so far."""
        with self._lock:
            return len(self.commands)

    def call_reset(self, timeout: float = 10.0) -> str:
        """Start the twin's next episode; returns the service's message."""
        if not self._reset.wait_for_service(timeout_sec=timeout):
            raise RecorderError(f'service {RESET_SERVICE} not available after {timeout:g} s')
        future = self._reset.call_async(Trigger.Request())
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            time.sleep(0.005)
        if not future.done():
            raise RecorderError(f'{RESET_SERVICE}: no response within {timeout:g} s')
        response = future.result()
        if not response.success:
            raise RecorderError(f'{RESET_SERVICE} failed: {response.message}')
        return response.message

    def window(self, episode: int, start: float, end: float) -> EpisodeTrace:
        """Cut the samples with simulation time in [start, end] into an EpisodeTrace."""
        def inside(t: float) -> bool:
            return start <= t <= end
        with self._lock:
            return EpisodeTrace(
                episode=episode, start=start, end=end,
                frames=tuple(f for f in self.frames if inside(f.stamp)),
                joints=tuple(j for j in self.joints if inside(j.stamp)),
                commands=tuple(c for c in self.commands if inside(c.sim_time)),
                tasks=tuple(t for t in self.tasks if inside(t.time) and t.episode == episode))
