"""
The pure inference core: latest sensor data in, a safe joint command out. No ROS types.

The node and the tests drive the same ``PolicyCore``, so a test can recompute
exactly what the node published from the same inputs.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np

from .action import ActionMapper, SafetyFilter, SafetyLimits
from .card import PolicyCard
from .image import ImagePipeline
from .observation import ObservationBuilder, Sample
from .runtime import PolicyRuntime


class InputError(ValueError):
    """A sensor message cannot be used; the node counts it and holds the robot."""


class NonFiniteError(ValueError):
    """The observation or the action contains NaN/Inf; the robot is held."""


class JointMap:
    """Picks the card's joints, by name, out of a /joint_states message."""

    def __init__(self, card_names: Sequence[str], robot_names: Optional[Sequence[str]] = None,
                 needs_velocity: bool = True):
        robot_names = list(robot_names or card_names)
        if len(robot_names) != len(card_names):
            raise ValueError(f'robot_joint_names: expected {len(card_names)} names (one per '
                             f'card joint {list(card_names)}), found {len(robot_names)}')
        self.robot_names = robot_names
        self.needs_velocity = needs_velocity
        self._names_seen: Optional[list] = None
        self._index = np.zeros(len(robot_names), dtype=np.intp)

    def _resolve(self, names: Sequence[str]) -> None:
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if list(names).count(n) > 1})
            raise InputError(f'joint_states lists joint(s) {dup} more than once')
        lookup = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.robot_names if n not in lookup]
        if missing:
            raise InputError(f'joint_states lacks required joint(s) {missing}')
        self._index[:] = [lookup[n] for n in self.robot_names]
        self._names_seen = list(names)

    def extract(self, names: Sequence[str], position: Sequence[float],
                velocity: Sequence[float], pos_out: np.ndarray, vel_out: np.ndarray) -> None:
        """Fill pos_out/vel_out in card order; InputError if the message is unusable."""
        if len(position) != len(names):
            raise InputError(f'joint_states has {len(names)} names but {len(position)} '
                             f'positions')
        if len(velocity) not in (0, len(names)):
            raise InputError(f'joint_states has {len(names)} names but {len(velocity)} '
                             f'velocities')
        if self.needs_velocity and len(velocity) == 0:
            raise InputError('joint_states has no velocities but the policy observes them')
        if names != self._names_seen:
            self._resolve(names)
        pos = np.asarray(position, dtype=np.float64)
        np.take(pos, self._index, out=pos_out)
        if len(velocity):
            np.take(np.asarray(velocity, dtype=np.float64), self._index, out=vel_out)
        else:
            vel_out.fill(0.0)
        if not (np.all(np.isfinite(pos_out)) and np.all(np.isfinite(vel_out))):
            raise InputError('joint_states contains NaN/Inf for a required joint')


class PolicyCore:
    """Observation -> onnxruntime -> action mapping -> safety filter, for one tick at a time."""

    def __init__(self, card: PolicyCard, runtime_factory, limits: SafetyLimits):
        self.card = card
        self.pipeline = ImagePipeline(card.image) if card.image is not None else None
        self.builder = ObservationBuilder(card)
        self.runtime: PolicyRuntime = runtime_factory(self.builder.inputs)
        self.mapper = ActionMapper(card)
        self.safety = SafetyFilter(limits)
        n = len(card.joint_names)
        self.sample = Sample(joint_pos=np.zeros(n, dtype=np.float32),
                             joint_vel=np.zeros(n, dtype=np.float32),
                             last_action=np.zeros(len(card.action.joint_names),
                                                  dtype=np.float32))
        # Indices of the action joints inside the card's joint order.
        self.action_index = np.array([card.joint_names.index(j)
                                      for j in card.action.joint_names])
        self.raw = np.zeros(len(card.action.joint_names), dtype=np.float32)
        # Seconds spent in the last step: observation, inference, action + safety.
        self.timing = [0.0, 0.0, 0.0]

    def reset(self) -> None:
        """Episode start: clear history, last action and recurrent state."""
        self.builder.reset()
        self.runtime.reset()
        self.sample.last_action.fill(0.0)
        self.safety.has_reference = False

    def step(self, joint_pos: np.ndarray, joint_vel: np.ndarray,
             image: Optional[np.ndarray] = None) -> np.ndarray:
        """
        One control tick; returns the filtered command for the action joints.

        ``image`` is the processed image tensor (``self.pipeline.out``).
        Raises NonFiniteError instead of returning a command from bad numbers.
        """
        self.sample.joint_pos[:] = joint_pos
        self.sample.joint_vel[:] = joint_vel
        self.sample.image = image
        t0 = time.perf_counter()
        inputs = self.builder.build(self.sample)
        for name, array in inputs.items():
            if not np.all(np.isfinite(array)):
                raise NonFiniteError(f'observation input {name!r} contains NaN/Inf')
        t1 = time.perf_counter()
        raw = self.runtime.run()
        t2 = time.perf_counter()
        if not np.all(np.isfinite(raw)):
            raise NonFiniteError('policy output contains NaN/Inf')
        self.raw[:] = raw
        self.sample.last_action[:] = raw
        if not self.safety.has_reference:
            self.safety.set_reference(joint_pos[self.action_index])
        command = self.safety.apply(self.mapper.map(raw))
        if command is None:
            raise NonFiniteError('mapped action contains NaN/Inf')
        self.timing[:] = (t1 - t0, t2 - t1, time.perf_counter() - t2)
        return command
