"""
The reach task, its scripted expert, and the twin's command semantics, without ROS.

The policy sees joint state and the camera image; the target is only in the image.
The expert sees the target's joint solution (privileged) and steps towards it.
Commands follow mujoco_twin's JointTrajectory handling: each tick's single point is
reached by linear interpolation from the measured joint positions over control_dt.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from pathlib import Path

import numpy as np
from vision_policy.action import SafetyLimits
from vision_policy.card import PolicyCard


class TaskConfigError(ValueError):
    """A TaskConfig field has a value the task cannot use."""


@dataclass(frozen=True)
class TaskConfig:
    """Episode, success and timing settings shared by training and evaluation."""

    # 5 s at control_dt 0.05 s (the SIL demo's default); the expert needs at most ~3 s.
    episode_ticks: int = 100
    tolerance: float = 0.05                 # m, final end-effector distance for success
    physics_dt: float = 0.002               # s, the twin's sim_dt
    render_width: int = 640                 # the twin node's default camera image
    render_height: int = 480
    max_joint_step: float = 0.1             # rad per tick, policy_inference's default
    expert_step: float = 0.1                # rad per tick the expert moves each joint at most
    home_start_prob: float = 0.5            # episodes that start at home, as the twin does
    start_noise: float = 0.4                # rad, uniform around home for the other starts
    # The SIL demo resets the twin, not the node: the first command of an episode is still
    # limited to max_joint_step around the last one, and last_action is the last raw output.
    stale_command_prob: float = 0.3
    # Timing of the ROS loop, drawn per tick in physics steps of physics_dt:
    max_command_delay_steps: int = 12       # the command lands up to 24 ms after the tick
    max_image_age_steps: int = 16           # the latest 30 Hz image is up to 33 ms old
    max_joint_state_age_steps: int = 4      # the latest 100 Hz joint state is <= 10 ms old

    def validate(self) -> None:
        """Raise TaskConfigError naming the field when a value is unusable."""
        if self.episode_ticks < 1:
            raise TaskConfigError(f'TaskConfig.episode_ticks: {self.episode_ticks}, expected >= 1')
        for name in ('tolerance', 'physics_dt', 'max_joint_step', 'expert_step'):
            if not getattr(self, name) > 0.0:
                raise TaskConfigError(f'TaskConfig.{name}: {getattr(self, name)}, expected > 0')
        if not 0.0 <= self.home_start_prob <= 1.0:
            raise TaskConfigError(
                f'TaskConfig.home_start_prob: {self.home_start_prob}, expected in [0, 1]')

    def steps_per_tick(self, card: PolicyCard) -> int:
        """Physics steps per control tick (0.05 s / 0.002 s = 25)."""
        n = round(card.control_dt / self.physics_dt)
        if n < 1 or abs(n * self.physics_dt - card.control_dt) > 1e-9:
            raise TaskConfigError(
                f'card control_dt {card.control_dt} s is not a multiple of physics_dt '
                f'{self.physics_dt} s')
        limits = (self.max_command_delay_steps, self.max_image_age_steps,
                  self.max_joint_state_age_steps)
        if min(limits) < 0 or max(limits) >= n:
            raise TaskConfigError(
                f'TaskConfig delays/ages {limits} steps: expected each in [0, {n - 1}]')
        return n


def workspace_root(start: Path | None = None) -> Path:
    """Return the first folder above start (default: this file, then cwd) with models/."""
    for origin in ([start] if start else [Path(__file__).resolve(), Path.cwd().resolve()]):
        for parent in [origin, *origin.parents]:
            if (parent / 'models' / 'reach_policy.yaml').is_file():
                return parent
    raise FileNotFoundError('no models/reach_policy.yaml above this package or the cwd; '
                            'pass --card')


def default_card_path() -> Path:
    """Return the workspace's bundled card, models/reach_policy.yaml."""
    return workspace_root() / 'models' / 'reach_policy.yaml'


def node_limits(card: PolicyCard, task: TaskConfig) -> SafetyLimits:
    """Return the safety limits policy_inference uses by default: card clip, max step."""
    try:
        return SafetyLimits.from_card(card, [-math.inf], [math.inf], [task.max_joint_step])
    except ValueError as exc:
        raise TaskConfigError(str(exc)) from None


def expert_raw_action(joint_pos: np.ndarray, goal: np.ndarray, card: PolicyCard,
                      step: float) -> np.ndarray:
    """
    Return the expert's raw network output (batched: [..., n]).

    The expert moves every joint towards the goal joint positions by at most `step`
    per tick from the observed positions, within the card's clip; the raw value is
    what the card's action mapping turns into that command.
    """
    joint_pos = np.asarray(joint_pos, dtype=np.float64)
    command = joint_pos + np.clip(np.asarray(goal) - joint_pos, -step, step)
    if card.action.clip is not None:
        clip = np.asarray(card.action.clip, dtype=np.float64)
        command = np.clip(command, clip[:, 0], clip[:, 1])
    scale = np.asarray(card.action.scale, dtype=np.float64)
    offset = np.asarray(card.action.offset, dtype=np.float64)
    return (command - offset) / scale


class LinearCommand:
    """
    The twin's active trajectory for one single-point JointTrajectory.

    It starts at `start` (s, simulation time) from the measured positions `begin` and
    reaches `end` after `duration`; it holds `end` afterwards and `begin` before.
    Equal to mujoco_twin.twin_node.plan_trajectory(...).sample(t) for such a message.
    """

    def __init__(self, start: float, begin: np.ndarray, end: np.ndarray, duration: float):
        self.start = start
        self.begin = np.array(begin, dtype=np.float64)
        self.end = np.array(end, dtype=np.float64)
        self.duration = duration

    def sample(self, t: float) -> np.ndarray:
        """Return the interpolated position targets at simulation time t."""
        s = min(max((t - self.start) / self.duration, 0.0), 1.0)
        return self.begin + (self.end - self.begin) * s
