"""
Network output -> joint position targets, then the safety filter.

``ActionMapper`` reproduces the training action term (Isaac Lab
``JointPositionAction``: target = raw x scale + offset, then the card's clip).
``SafetyFilter`` is the robot-side guard that training never saw: position
limits and a per-tick step limit, and a refusal of any non-finite value.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional, Sequence

import numpy as np

from .card import PolicyCard


class ActionMapper:
    """Maps the raw action vector to targets for the card's action joints."""

    def __init__(self, card: PolicyCard):
        spec = card.action
        self.joint_names = spec.joint_names
        self.scale = np.asarray(spec.scale, dtype=np.float64)
        self.offset = np.asarray(spec.offset, dtype=np.float64)
        self.clip = None if spec.clip is None else np.asarray(spec.clip, dtype=np.float64)
        self.targets = np.zeros(len(spec.joint_names), dtype=np.float64)

    def map(self, raw: np.ndarray) -> np.ndarray:  # noqa: A003 (the mapping, not builtin)
        """Targets for raw; the returned buffer is reused on the next call."""
        np.multiply(raw, self.scale, out=self.targets)
        self.targets += self.offset
        if self.clip is not None:
            np.clip(self.targets, self.clip[:, 0], self.clip[:, 1], out=self.targets)
        return self.targets


@dataclass(frozen=True)
class SafetyLimits:
    """Robot-side limits, in the action joint order (from ROS parameters)."""

    lower: tuple
    upper: tuple
    max_step: tuple

    @classmethod
    def build(cls, n: int, lower: Sequence[float], upper: Sequence[float],
              max_step: Sequence[float]) -> 'SafetyLimits':
        """Validate lengths and ranges; a single value applies to every joint."""
        def expand(name: str, values: Sequence[float]) -> tuple:
            values = list(values)
            if len(values) == 1:
                values = values * n
            if len(values) != n:
                raise ValueError(f'{name}: expected 1 or {n} values, found {len(values)}')
            if any(np.isnan(v) for v in values):
                raise ValueError(f'{name}: NaN is not a limit')
            return tuple(float(v) for v in values)
        lower, upper = expand('position_lower_limits', lower), expand(
            'position_upper_limits', upper)
        step = expand('max_joint_step', max_step)
        bad = [i for i in range(n) if lower[i] > upper[i]]
        if bad:
            raise ValueError(f'position limits: lower > upper for joint index(es) {bad}')
        # An infinite step would switch the step limit off: a safety reviewer expects a
        # limit that is always in force, so only finite, positive steps are accepted.
        if not all(math.isfinite(s) and s > 0 for s in step):
            raise ValueError(f'max_joint_step: every value must be finite and > 0, found '
                             f'{list(step)}')
        return cls(lower, upper, step)

    @classmethod
    def from_card(cls, card: PolicyCard, lower: Sequence[float], upper: Sequence[float],
                  max_step: Sequence[float]) -> 'SafetyLimits':
        """
        Build the limits the node enforces: an infinite position limit means the card's clip.

        The result is always finite: a card without an action clip needs explicit limits.
        """
        n = len(card.action.joint_names)
        clip = card.action.clip

        def fill(values: Sequence[float], side: int, name: str) -> list:
            values = list(values)
            values = values * n if len(values) == 1 else values
            if clip is not None and len(values) == n:
                values = [c[side] if math.isinf(v) else v for v, c in zip(values, clip)]
            if any(math.isinf(v) for v in values):
                raise ValueError(f'{name}: the card has no action clip to stand in for an '
                                 f'infinite limit; give finite limits for every joint')
            return values
        return cls.build(n, fill(lower, 0, 'position_lower_limits'),
                         fill(upper, 1, 'position_upper_limits'), max_step)


class SafetyFilter:
    """Clamp targets to limits and to a maximum step from the last command sent."""

    def __init__(self, limits: SafetyLimits):
        self.lower = np.asarray(limits.lower, dtype=np.float64)
        self.upper = np.asarray(limits.upper, dtype=np.float64)
        self.max_step = np.asarray(limits.max_step, dtype=np.float64)
        self.command = np.zeros_like(self.lower)
        self._low = np.zeros_like(self.lower)
        self._high = np.zeros_like(self.lower)
        self.has_reference = False

    def set_limits(self, limits: SafetyLimits) -> None:
        """Enforce new limits from the next command on (the buffers are updated in place)."""
        self.lower[:], self.upper[:] = limits.lower, limits.upper
        self.max_step[:] = limits.max_step

    def set_reference(self, positions: np.ndarray) -> None:
        """Step limits start from these positions (measured ones after a hold)."""
        self.command[:] = positions
        self.has_reference = True

    def apply(self, targets: np.ndarray) -> Optional[np.ndarray]:
        """Return the filtered command, or None if targets hold NaN/Inf (the caller holds)."""
        if not self.has_reference or not np.all(np.isfinite(targets)):
            return None
        # Position limits dominate: a reference outside them snaps to the nearest limit.
        np.subtract(self.command, self.max_step, out=self._low)
        np.add(self.command, self.max_step, out=self._high)
        np.clip(self._low, self.lower, self.upper, out=self._low)
        np.clip(self._high, self.lower, self.upper, out=self._high)
        np.clip(targets, self._low, self._high, out=self.command)
        return self.command
