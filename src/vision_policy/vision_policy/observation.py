"""Observation terms and the builder that fills the model inputs, as Isaac Lab does.

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

    @property
    def size(self) -> int:
        """Number of values the term writes."""
        return int(np.prod(self.shape))


def joint_indices(card: PolicyCard, params: Mapping[str, Any]) -> np.ndarray:
    """Indices into the card's joint order of params['joint_names'] (all joints if absent)."""
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
    return Term((len(idx),), compute)


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
    """The raw network output of the previous tick (zeros after a reset)."""
    width = len(card.action.joint_names)

    def compute(sample: Sample, out: np.ndarray) -> None:
        out[:] = sample.last_action
    return Term((width,), compute)


def image(card: PolicyCard, params: Mapping) -> Term:
    """The camera image, already processed by the card's image pipeline (image.py)."""
    spec = card.image
    if spec.layout == 'NCHW':
        shape = (spec.channels, spec.height, spec.width)
    else:
        shape = (spec.height, spec.width, spec.channels)

    def compute(sample: Sample, out: np.ndarray) -> None:
        out[...] = sample.image
    return Term(shape, compute)


TERMS: Mapping[str, Callable[[PolicyCard, Mapping], Term]] = MappingProxyType({
    'joint_pos': joint_pos,
    'joint_pos_rel': joint_pos_rel,
    'joint_vel': joint_vel,
    'joint_vel_rel': joint_vel_rel,
    'last_action': last_action,
    'actions': last_action,
    'image': image,
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
