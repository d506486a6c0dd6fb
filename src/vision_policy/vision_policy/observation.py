"""
Observation terms and the builder that fills the model inputs, as Isaac Lab does.

Each term is one small pure function, looked up by name in ``TERMS``. A term
factory receives the card and the term's ``params`` once, resolves everything it
can (joint indices, defaults), and returns a ``Term``: its output shape and a
``compute(sample, out)`` that writes into a preallocated buffer.

The builder applies Isaac Lab's observation-manager order per term:
compute -> clip -> scale -> history (oldest first) -> concatenate in
declaration order. Noise is a training-time corruption and is not applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .card import CardError, GroupSpec, PolicyCard, TermSpec


@dataclass
class Sample:
    """Latest sensor data in the card's joint order; arrays are float32."""

    joint_pos: np.ndarray
    joint_vel: np.ndarray
    last_action: np.ndarray
    # The camera image already through the card's image pipeline (see image.py).
    image: Optional[np.ndarray] = None
    # Further sources (IMU, odometry, commands) keyed by term-specific names.
    extras: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Term:
    """A resolved observation term: output shape and a function that fills it."""

    shape: tuple
    compute: Callable[[Sample, np.ndarray], None]
    # What the term reads: 'image', 'joint_vel', or a source name (sources.py); the node
    # subscribes only to what the card's terms need and holds when one is stale.
    needs: tuple = ()

    @property
    def size(self) -> int:
        """Return the number of values the term writes."""
        return int(np.prod(self.shape))


def joint_indices(card: PolicyCard, params: Mapping[str, Any]) -> np.ndarray:
    """Return indices of params['joint_names'] in the card's joint order (all if absent)."""
    names = params.get('joint_names')
    if names is None:
        return np.arange(len(card.joint_names))
    missing = [n for n in names if n not in card.joint_names]
    if missing:
        raise CardError(f'term params.joint_names: {missing} not in card joint_names '
                        f'{list(card.joint_names)}')
    return np.array([card.joint_names.index(n) for n in names])


def _joint_term(card: PolicyCard, params: Mapping, source: str, subtract: Optional[str]) -> Term:
    idx = joint_indices(card, params)
    if subtract == 'default':
        ref = np.asarray(card.default_joint_pos, dtype=np.float32)[idx]
    else:
        ref = None

    def compute(sample: Sample, out: np.ndarray) -> None:
        np.take(getattr(sample, source), idx, out=out)
        if ref is not None:
            out -= ref
    return Term((len(idx),), compute, ('joint_vel',) if source == 'joint_vel' else ())


def joint_pos(card: PolicyCard, params: Mapping) -> Term:
    """Joint positions (rad or m) in the card's joint order."""
    return _joint_term(card, params, 'joint_pos', None)


def joint_pos_rel(card: PolicyCard, params: Mapping) -> Term:
    """Joint positions minus the default joint positions (Isaac Lab ``joint_pos_rel``)."""
    return _joint_term(card, params, 'joint_pos', 'default')


def joint_vel(card: PolicyCard, params: Mapping) -> Term:
    """Joint velocities."""
    return _joint_term(card, params, 'joint_vel', None)


def joint_vel_rel(card: PolicyCard, params: Mapping) -> Term:
    """Joint velocities minus default velocities, which are zero for a deployed robot."""
    return _joint_term(card, params, 'joint_vel', None)


def last_action(card: PolicyCard, params: Mapping) -> Term:
    """Observe the raw network output of the previous tick (zeros after a reset)."""
    width = len(card.action.joint_names)

    def compute(sample: Sample, out: np.ndarray) -> None:
        out[:] = sample.last_action
    return Term((width,), compute)


def image(card: PolicyCard, params: Mapping) -> Term:
    """Observe the camera image, already through the card's image pipeline (image.py)."""
    spec = card.image
    if spec.layout == 'NCHW':
        shape = (spec.channels, spec.height, spec.width)
    else:
        shape = (spec.height, spec.width, spec.channels)

    def compute(sample: Sample, out: np.ndarray) -> None:
        out[...] = sample.image
    return Term(shape, compute, ('image',))


# --- Robot-state terms (Isaac Lab import): values arrive in Sample.extras ----------------
# extras keys: 'imu_orientation' (x, y, z, w), 'imu_angular_velocity' (3),
# 'base_lin_vel' (3, body frame), 'velocity_command' (vx, vy, wz).


class ExtraSourceError(ValueError):
    """A term needs an extra source (IMU, odometry, command) that the sample lacks."""


def _extra(sample: Sample, key: str) -> np.ndarray:
    value = sample.extras.get(key)
    if value is None:
        raise ExtraSourceError(f'observation needs sample.extras[{key!r}], which is missing')
    return value


def _extra_term(key: str, source: str) -> Callable[[PolicyCard, Mapping], Term]:
    def factory(card: PolicyCard, params: Mapping) -> Term:
        def compute(sample: Sample, out: np.ndarray) -> None:
            out[:] = _extra(sample, key)
        return Term((3,), compute, (source,))
    return factory


base_ang_vel = _extra_term('imu_angular_velocity', 'imu')
base_ang_vel.__doc__ = 'Base angular velocity in the body frame (IMU angular_velocity).'
base_lin_vel = _extra_term('base_lin_vel', 'odom')
base_lin_vel.__doc__ = 'Base linear velocity in the body frame (Odometry twist.linear).'
velocity_commands = _extra_term('velocity_command', 'cmd_vel')
velocity_commands.__doc__ = 'Base velocity command [vx, vy, wz] (Twist linear.x/.y, angular.z).'


def gravity_in_body(quat_xyzw: np.ndarray, out: np.ndarray) -> None:
    """Write R^T [0, 0, -1] for the body orientation quaternion (x, y, z, w) into out."""
    x, y, z, w = np.asarray(quat_xyzw, dtype=np.float64) / np.linalg.norm(quat_xyzw)
    # The third row of R, negated: the world -z axis seen from the body.
    out[0] = -2.0 * (x * z - w * y)
    out[1] = -2.0 * (y * z + w * x)
    out[2] = -(1.0 - 2.0 * (x * x + y * y))


def projected_gravity(card: PolicyCard, params: Mapping) -> Term:
    """Observe the unit gravity direction in the body frame, from the IMU orientation."""
    def compute(sample: Sample, out: np.ndarray) -> None:
        gravity_in_body(_extra(sample, 'imu_orientation'), out)
    return Term((3,), compute, ('imu',))


def joint_pos_limit_normalized(card: PolicyCard, params: Mapping) -> Term:
    """Joint positions mapped to [-1, 1] over params['soft_joint_pos_limits'] ([lo, hi] each)."""
    idx = joint_indices(card, params)
    limits = np.asarray(params.get('soft_joint_pos_limits', ()), dtype=np.float64)
    if limits.shape != (len(idx), 2) or not np.all(limits[:, 1] > limits[:, 0]):
        raise CardError(f'params.soft_joint_pos_limits: expected {len(idx)} [lower, upper] '
                        f'pairs with upper > lower, found {params.get("soft_joint_pos_limits")!r}')
    mid = ((limits[:, 0] + limits[:, 1]) * 0.5).astype(np.float32)
    half = ((limits[:, 1] - limits[:, 0]) * 0.5).astype(np.float32)

    def compute(sample: Sample, out: np.ndarray) -> None:
        np.take(sample.joint_pos, idx, out=out)
        out -= mid
        out /= half
    return Term((len(idx),), compute)


TERMS: Mapping[str, Callable[[PolicyCard, Mapping], Term]] = MappingProxyType({
    'joint_pos': joint_pos,
    'joint_pos_rel': joint_pos_rel,
    'joint_vel': joint_vel,
    'joint_vel_rel': joint_vel_rel,
    'last_action': last_action,
    'actions': last_action,
    'image': image,
    'joint_pos_limit_normalized': joint_pos_limit_normalized,
    'base_ang_vel': base_ang_vel,
    'projected_gravity': projected_gravity,
    'base_lin_vel': base_lin_vel,
    'velocity_commands': velocity_commands,
    'generated_commands': velocity_commands,
})

def resolve_term(card: PolicyCard, spec: TermSpec, where: str) -> Term:
    """Look a term up by name and resolve it against the card."""
    factory = TERMS.get(spec.name)
    if factory is None:
        raise CardError(f'{where}: unknown observation term {spec.name!r}; known terms: '
                        f'{sorted(TERMS)}')
    try:
        term = factory(card, spec.params)
    except CardError as exc:
        raise CardError(f'{where}: {exc}') from None
    for label, values in (('scale', spec.scale),):
        if values is not None and len(values) not in (1, term.size):
            raise CardError(f'{where}.{label}: expected 1 or {term.size} values, '
                            f'found {len(values)}')
    return term


class _TermSlot:
    """One term inside a group: buffers for its value and its history."""

    def __init__(self, term: Term, spec: TermSpec, history: int):
        self.term = term
        self.value = np.zeros(term.shape, dtype=np.float32)
        self.clip = spec.clip
        scale = spec.scale
        if scale is None:
            self.scale = None
        elif len(scale) == 1:
            self.scale = np.float32(scale[0])
        else:
            self.scale = np.asarray(scale, dtype=np.float32).reshape(term.shape)
        self.history = np.zeros((history, term.size), dtype=np.float32) if history else None
        self.filled = False
        self.out_size = term.size * max(history, 1)

    def update(self, sample: Sample, out: np.ndarray) -> None:
        self.term.compute(sample, self.value)
        if self.clip is not None:
            np.clip(self.value, self.clip[0], self.clip[1], out=self.value)
        if self.scale is not None:
            np.multiply(self.value, self.scale, out=self.value)
        flat = self.value.reshape(-1)
        if self.history is None:
            out[:] = flat
            return
        if self.filled:
            self.history[:-1] = self.history[1:]
            self.history[-1] = flat
        else:
            # Isaac Lab's CircularBuffer fills every slot with the first sample after a reset.
            self.history[:] = flat
            self.filled = True
        out[:] = self.history.reshape(-1)

    def reset(self) -> None:
        self.filled = False


class ObservationBuilder:
    """Fills one preallocated array per model input from the latest sample."""

    def __init__(self, card: PolicyCard):
        self.card = card
        self.inputs = {}
        self._groups = []
        # 'group/term' -> the term's latest value after clip and scale (for recordings).
        self.term_values = {}
        for spec in card.inputs:
            if spec.group is None:
                continue
            group = card.group(spec.group)
            slots = self._slots(group)
            size = sum(s.out_size for s in slots)
            want = int(np.prod(spec.shape))
            if size != want:
                raise CardError(
                    f'observations.{group.name}: the terms produce {size} values but model '
                    f'input {spec.name!r} has shape {list(spec.shape)} ({want} values, '
                    f'{"missing" if want > size else "extra"} {abs(want - size)})')
            buf = np.zeros(spec.shape, dtype=np.float32)
            self.inputs[spec.name] = buf
            for i, (term_spec, slot) in enumerate(zip(group.terms, slots)):
                key = f'{group.name}/{term_spec.name}'
                self.term_values[key if key not in self.term_values else f'{key}#{i}'] = \
                    slot.value
            flat = buf.reshape(-1)
            views, start = [], 0
            for slot in slots:
                views.append(flat[start:start + slot.out_size])
                start += slot.out_size
            self._groups.append(list(zip(slots, views)))

    def _slots(self, group: GroupSpec) -> list:
        slots = []
        for i, spec in enumerate(group.terms):
            where = f'observations.{group.name}.terms[{i}]'
            term = resolve_term(self.card, spec, where)
            history = group.term_history(spec)
            if history and not group.flatten_history_dim and len(group.terms) > 1:
                raise CardError(f'observations.{group.name}: flatten_history_dim: false is '
                                f'supported for single-term groups only')
            slots.append(_TermSlot(term, spec, history))
        return slots

    @property
    def needs(self) -> frozenset:
        """Return what the card's terms read: 'image', 'joint_vel' and source names."""
        return frozenset(n for group in self._groups for slot, _ in group
                         for n in slot.term.needs)

    def build(self, sample: Sample) -> dict:
        """Compute every group into its input buffer; returns {input name: array}."""
        for group in self._groups:
            for slot, view in group:
                slot.update(sample, view)
        return self.inputs

    def reset(self) -> None:
        """Forget history (episode start, clock jump, reactivation)."""
        for group in self._groups:
            for slot, _ in group:
                slot.reset()
