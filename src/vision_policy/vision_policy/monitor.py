"""
Input freshness and hold decisions, without ROS: when the node may command and when it holds.

The node tells the monitor what arrived (stamps, validity, e-stop) and asks it, once per
tick, whether to command. After a hold, commanding resumes only on data newer than the
hold. ``ClockWatch`` tells a stopped or absent simulation clock from wall time.
"""

from __future__ import annotations

from dataclasses import dataclass
import enum
import math
from typing import Dict, Iterable, Optional

IMAGE, JOINTS = 'image', 'joint_states'


def camera_input(camera: str) -> str:
    """Return the input name of a camera: 'image' for a card's one unnamed camera."""
    return f'{IMAGE}/{camera}' if camera else IMAGE


def input_camera(name: str) -> Optional[str]:
    """Return the camera of an input name (camera_input's inverse); None: not a camera."""
    if name == IMAGE:
        return ''
    return name[len(IMAGE) + 1:] if name.startswith(IMAGE + '/') else None


class HoldReason(enum.Enum):
    """Why the robot is held; the value is the text on /diagnostics."""

    INACTIVE = 'inactive'
    WAITING = 'waiting for fresh data'
    EMERGENCY_STOP = 'emergency stop'
    NO_INPUT = 'no valid input'               # detail: which input
    INVALID_JOINT_STATE = 'invalid joint state'
    INPUT_TOO_OLD = 'input too old'           # detail: which input
    NONFINITE_OBSERVATION = 'non-finite observation'
    NONFINITE_ACTION = 'non-finite action'
    TERM_FAILED = 'observation term failed'   # detail: the term, its plugin, what it raised
    CLOCK_STOPPED = 'clock stopped'
    SHUTDOWN = 'shutdown'
    NO_CAMERA_INFO = 'no camera_info'             # detail: the topic
    CAMERA_INFO_INVALID = 'camera_info unusable'  # detail: what is wrong with it
    CAMERA_SKEW = 'camera frames too far apart'   # detail: the cameras and their spread


@dataclass(frozen=True)
class Hold:
    """A hold reason with what it concerns (an input name, an error message)."""

    reason: HoldReason
    detail: str = ''

    def __str__(self) -> str:
        return f'{self.reason.value}: {self.detail}' if self.detail else self.reason.value


@dataclass(frozen=True)
class Ages:
    """Largest accepted input ages in seconds (the node's max_*_age parameters)."""

    image: float
    joint_state: float
    extra: float


@dataclass
class _Input:
    stamp_ns: Optional[int] = None  # newest accepted sample
    seq: int = 0                    # accepted samples since configure


class InputMonitor:
    """Tracks the inputs a card needs and decides, per tick, command or hold."""

    def __init__(self, inputs: Iterable[str], max_camera_skew: float = math.inf):
        """
        Watch these inputs: 'joint_states', each camera's (camera_input), source names.

        With several cameras a tick holds when their newest frames' stamps are more than
        max_camera_skew seconds apart.
        """
        self._inputs: Dict[str, _Input] = {name: _Input() for name in inputs}
        self._cameras = [n for n in self._inputs if input_camera(n) is not None]
        self.max_camera_skew = max_camera_skew
        self.estop = False
        self.joints_valid = False
        self.holding = False
        self.hold_sent = False
        self.hold: Optional[Hold] = Hold(HoldReason.INACTIVE)
        self._resume_after: Dict[str, int] = {}
        self._last_now: Optional[int] = None
        # Named conditions that hold the robot while they stand (e.g. camera_info missing).
        self._conditions: Dict[str, Hold] = {}

    @property
    def inputs(self) -> tuple:
        """Return the names of the inputs watched."""
        return tuple(self._inputs)

    def stamp_ns(self, name: str) -> Optional[int]:
        """Return the stamp of the newest accepted sample of an input (None: none yet)."""
        return self._inputs[name].stamp_ns

    def seq(self, name: str) -> int:
        """Return how many samples of an input were accepted."""
        return self._inputs[name].seq

    def reset(self) -> None:
        """Forget every input and the hold state (activation)."""
        for state in self._inputs.values():
            state.stamp_ns = None
        self.estop = self.joints_valid = self.holding = self.hold_sent = False
        self._resume_after = {}
        self._last_now = None

    def observe_clock(self, now_ns: int) -> bool:
        """Note the node clock; True (and every input forgotten) if it jumped backwards."""
        jumped = self._last_now is not None and now_ns < self._last_now
        if jumped:
            for state in self._inputs.values():
                state.stamp_ns = None
        self._last_now = now_ns
        return jumped

    def check_stamp(self, name: str, stamp_ns: int, max_age: float) -> Optional[str]:
        """Return why a sample stamped stamp_ns cannot be used, or None if it can."""
        if stamp_ns <= 0:
            return 'zero stamp'
        if self._last_now is not None and stamp_ns - self._last_now > max_age * 1e9:
            return 'stamp in the future'
        last = self._inputs[name].stamp_ns
        if last is not None and stamp_ns < last:
            return 'stamp going backwards'
        return None

    def set_condition(self, name: str, hold: Optional[Hold]) -> None:
        """Hold with `hold` while condition `name` stands; None clears it."""
        if hold is None:
            self._conditions.pop(name, None)
        else:
            self._conditions[name] = hold

    def forget(self, name: str) -> None:
        """Drop an input's latest sample: ticks hold until a new one is accepted."""
        self._inputs[name].stamp_ns = None

    def accept(self, name: str, stamp_ns: int) -> None:
        """Record a valid new sample of an input."""
        state = self._inputs[name]
        state.stamp_ns = stamp_ns
        state.seq += 1

    def _age_limit(self, name: str, ages: Ages) -> float:
        if name in self._cameras:
            return ages.image
        return ages.joint_state if name == JOINTS else ages.extra

    def camera_skew(self) -> Optional[Hold]:
        """Return the skew hold when the cameras' newest frames are too far apart."""
        if len(self._cameras) < 2:
            return None
        stamps = [self._inputs[n].stamp_ns for n in self._cameras]
        spread = (max(stamps) - min(stamps)) * 1e-9
        if spread <= self.max_camera_skew:
            return None
        return Hold(HoldReason.CAMERA_SKEW,
                    f'{", ".join(self._cameras)} stamped {spread * 1e3:.1f} ms apart, '
                    f'max_camera_skew {self.max_camera_skew * 1e3:.1f} ms')

    def decide(self, now_ns: int, ages: Ages) -> Optional[Hold]:
        """Return the hold this tick needs, or None: command."""
        if self.estop:
            return Hold(HoldReason.EMERGENCY_STOP)
        for hold in self._conditions.values():
            return hold
        for name, state in self._inputs.items():
            if state.stamp_ns is None:
                return Hold(HoldReason.NO_INPUT, name)
        if not self.joints_valid:
            return Hold(HoldReason.INVALID_JOINT_STATE)
        for name, state in self._inputs.items():
            if abs(now_ns - state.stamp_ns) * 1e-9 > self._age_limit(name, ages):
                return Hold(HoldReason.INPUT_TOO_OLD, name)
        skew = self.camera_skew()
        if skew is not None:
            return skew
        if self.holding and any(self._inputs[n].seq <= seq
                                for n, seq in self._resume_after.items()):
            return self.hold  # stay held until data newer than the hold arrive
        return None

    def start_hold(self, hold: Hold) -> bool:
        """Enter (or stay in) a hold; True when this hold's one hold message is due."""
        self.holding = True
        self.hold = hold
        self._resume_after = {name: state.seq for name, state in self._inputs.items()}
        due = not self.hold_sent
        self.hold_sent = True
        return due

    def commanded(self) -> None:
        """Note that a command was sent: the hold, if any, is over."""
        self.holding = self.hold_sent = False
        self.hold = None


class ClockState(enum.Enum):
    """What the node clock does, judged against wall time."""

    RUNNING = 'running'
    WAITING = 'waiting for /clock'   # simulation time has never been received
    STOPPED = 'clock stopped'        # it has not advanced for clock_timeout wall seconds


class ClockWatch:
    """Tells a running node clock from an absent or stopped /clock."""

    def __init__(self, sim_time: bool, timeout: float):
        self.sim_time = sim_time
        self.timeout = timeout
        self._last_ns: Optional[int] = None
        self._since_wall: Optional[float] = None

    def update(self, clock_ns: int, wall_s: float) -> ClockState:
        """Judge the node clock reading clock_ns at wall (monotonic) time wall_s."""
        if not self.sim_time:
            return ClockState.RUNNING
        if clock_ns == 0:
            return ClockState.WAITING
        if clock_ns != self._last_ns:
            self._last_ns, self._since_wall = clock_ns, wall_s
            return ClockState.RUNNING
        return (ClockState.STOPPED if wall_s - self._since_wall >= self.timeout
                else ClockState.RUNNING)
