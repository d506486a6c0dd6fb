"""
Network output -> joint targets, then the safety filter.

``ActionMapper`` reproduces the training action terms, in output order, each a
registered ``ActionTerm`` (registry.py): the built-in ones mirror Isaac Lab's
``JointPositionAction`` (target = raw x scale + offset, then clip),
``RelativeJointPositionAction``, ``JointVelocityAction``,
``BinaryJointPositionAction``, ``JointPositionToLimitsAction`` and its EMA
variant, and a zero-width ``hold_default``.
``SafetyFilter`` is the robot-side guard that training never saw: position
limits and a per-tick step limit, and a refusal of any non-finite value.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Optional, Sequence

import numpy as np

from .card import ActionTermSpec, CardError, PolicyCard
from .registry import ACTION_GROUP, ActionTerm, load_registry, PluginError, Registry


class ActionTermError(ValueError):
    """An action term failed at run time; the message names the term (and its plugin)."""


class ActionMapper:
    """
    Maps the raw action vector to targets for the card's action joints, term by term.

    Each card action term (a registered ``ActionTerm``) consumes its slice of
    the network output (none for a zero-width term) and writes targets for its
    joints. ``velocity_joints`` lists the joints whose value is a velocity
    target (``JointVelocityAction``); every other value is a position target.
    """

    def __init__(self, card: PolicyCard, registry: Optional[Registry] = None):
        registry = registry if registry is not None else load_registry()
        spec = card.action
        self.joint_names = spec.joint_names
        self.targets = np.zeros(len(spec.joint_names), dtype=np.float64)
        self._terms, self._labels = [], []
        raw_start, joint_start = 0, 0
        for i, term_spec in enumerate(spec.terms):
            where = f'action.terms[{i}] ({term_spec.type})'
            term = make_action_term(registry, card, term_spec, where)
            raw = slice(raw_start, raw_start + term.width)
            joints = slice(joint_start, joint_start + len(term_spec.joint_names))
            self._terms.append((term, raw, joints))
            self._labels.append(f'{where} {term_spec.type!r}' + (
                '' if registry.is_builtin(ACTION_GROUP, term_spec.type) else
                f' ({registry.origin(ACTION_GROUP, term_spec.type)})'))
            raw_start, joint_start = raw.stop, joints.stop
        self.width = raw_start
        self.velocity_joints = tuple(j for term, _, joints in self._terms
                                     if term.kind == 'velocity'
                                     for j in self.joint_names[joints])
        self._joint_index = np.array([card.joint_names.index(j) for j in self.joint_names],
                                     dtype=np.intp)
        self._pos = np.zeros(len(self.joint_names), dtype=np.float64)

    def map(self, raw: np.ndarray,  # noqa: A003 (the mapping, not builtin)
            joint_pos: Optional[np.ndarray] = None) -> np.ndarray:
        """
        Targets for raw; the returned buffer is reused on the next call.

        ``joint_pos`` (card joint order) is the measured state that relative and
        moving-average terms start from; the others ignore it.
        """
        pos = None
        if joint_pos is not None:
            self._pos[:] = np.asarray(joint_pos)[self._joint_index]
            pos = self._pos
        for (term, raw_slice, joints), label in zip(self._terms, self._labels):
            try:
                term.map(raw[raw_slice], None if pos is None else pos[joints],
                         self.targets[joints])
            except Exception as exc:  # noqa: B902 (a plugin may raise anything: hold, not crash)
                raise ActionTermError(f'{label} raised {type(exc).__name__}: {exc}') from None
        return self.targets

    def reset(self) -> None:
        """Episode start: terms with state (moving average) start again from the robot."""
        for term, _, _ in self._terms:
            term.reset()


def action_width(card: PolicyCard, registry: Optional[Registry] = None) -> int:
    """Return the network output width the card's action terms take (zero-width ones none)."""
    registry = registry if registry is not None else load_registry()
    return sum(registry.action_term(t.type, f'action.terms[{i}]').width(t)
               for i, t in enumerate(card.action.terms))


class MappedTerm:
    """
    A resolved action term: ``width`` raw values -> targets for its joints.

    ``map(raw, joint_pos, out)`` writes one target per joint into ``out``
    (``joint_pos`` is the measured position of those joints, or None when the
    caller has none); ``kind`` is 'position' or 'velocity'.
    """

    kind = 'position'

    def __init__(self, width: int):
        self.width = width

    def map(self, raw: np.ndarray, joint_pos: Optional[np.ndarray],  # noqa: A003
            out: np.ndarray) -> None:
        """Write the targets for raw into out."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget state carried between ticks (none by default)."""


def make_action_term(registry: Registry, card: PolicyCard, spec: ActionTermSpec,
                     where: str) -> MappedTerm:
    """Resolve one card action term through the registry; PluginError names a broken one."""
    definition = registry.action_term(spec.type, where)
    origin = registry.origin(ACTION_GROUP, spec.type)
    try:
        term = definition.make(card, spec)
        width = definition.width(spec)
    except CardError as exc:
        raise CardError(f'{where}: {exc}') from None
    except Exception as exc:  # noqa: B902 (a plugin may raise anything; configure reports it)
        raise PluginError(f'{where}: action term {spec.type!r} ({origin}) raised '
                          f'{type(exc).__name__} at configure: {exc}') from None
    if not isinstance(term, MappedTerm) or term.width != width:
        raise PluginError(f'{where}: action term {spec.type!r} ({origin}) made '
                          f'{type(term).__name__} of width {getattr(term, "width", None)}, '
                          f'expected an action.MappedTerm of the declared width {width}')
    return term


def _per_joint(spec: ActionTermSpec, key: str, default: Any) -> np.ndarray:
    """Read a term param given as one number or one per joint, as float64."""
    value = spec.params.get(key, default)
    n = len(spec.joint_names)
    values = np.asarray(value, dtype=np.float64).reshape(-1)
    if values.size == 1:
        values = np.full(n, values[0])
    if values.size != n or not np.all(np.isfinite(values)):
        raise CardError(f'{key}: expected a finite number or {n} finite numbers (one per '
                        f'joint {list(spec.joint_names)}), found {value!r}')
    return values


def _clip(spec: ActionTermSpec) -> Optional[np.ndarray]:
    return None if spec.clip is None else np.asarray(spec.clip, dtype=np.float64)


def _check_params(spec: ActionTermSpec, allowed: Sequence[str]) -> None:
    unknown = sorted(set(spec.params) - set(allowed))
    if unknown:
        raise CardError(f'unknown field(s) {unknown} for a {spec.type} term (known: '
                        f'{sorted(allowed)})')


class _Affine(MappedTerm):
    """raw x scale + offset, then clip: Isaac Lab's JointAction.process_actions."""

    def __init__(self, spec: ActionTermSpec, relative: bool = False, kind: str = 'position'):
        super().__init__(len(spec.joint_names))
        _check_params(spec, ('scale', 'offset'))
        self.scale = _per_joint(spec, 'scale', 1.0)
        self.offset = _per_joint(spec, 'offset', 0.0)
        self.clip = _clip(spec)
        self.relative = relative
        self.kind = kind

    def map(self, raw, joint_pos, out):  # noqa: A003, D102
        np.multiply(raw, self.scale, out=out)
        out += self.offset
        if self.clip is not None:
            np.clip(out, self.clip[:, 0], self.clip[:, 1], out=out)
        if self.relative:
            if joint_pos is None:
                raise ValueError('relative_joint_position needs the measured joint positions')
            # Isaac Lab adds the current joint positions after the clip.
            out += joint_pos


class _Binary(MappedTerm):
    """
    One raw value -> open or close positions (Isaac Lab BinaryJointPositionAction: < 0 closes).

    The absolute variant (AbsBinaryJointPositionAction) opens when raw > ``threshold``
    (``positive_threshold``, the default) or raw < ``threshold``.
    """

    def __init__(self, spec: ActionTermSpec, absolute: bool = False):
        super().__init__(1)
        _check_params(spec, ('open', 'close') + (('threshold', 'positive_threshold')
                                                 if absolute else ()))
        self.open = _per_joint(spec, 'open', np.nan)
        self.close = _per_joint(spec, 'close', np.nan)
        self.clip = _clip(spec)
        self.absolute = absolute
        self.threshold = float(spec.params.get('threshold', 0.5))
        self.positive = bool(spec.params.get('positive_threshold', True))

    def map(self, raw, joint_pos, out):  # noqa: A003, D102
        # The core refuses a non-finite raw action before it gets here.
        if not self.absolute:
            opened = not raw[0] < 0.0
        else:
            opened = raw[0] > self.threshold if self.positive else raw[0] < self.threshold
        out[:] = self.open if opened else self.close
        if self.clip is not None:
            np.clip(out, self.clip[:, 0], self.clip[:, 1], out=out)


class _ToLimits(MappedTerm):
    """Isaac Lab JointPositionToLimitsAction and its EMA variant."""

    def __init__(self, spec: ActionTermSpec, ema: bool):
        super().__init__(len(spec.joint_names))
        _check_params(spec, ('scale', 'rescale_to_limits', 'soft_joint_pos_limits')
                      + (('alpha',) if ema else ()))
        self.scale = _per_joint(spec, 'scale', 1.0)
        self.clip = _clip(spec)
        self.rescale = bool(spec.params.get('rescale_to_limits', True))
        limits = np.asarray(spec.params.get('soft_joint_pos_limits', ()), dtype=np.float64)
        n = len(spec.joint_names)
        if (self.rescale or ema) and (limits.shape != (n, 2) or
                                      not np.all(limits[:, 1] >= limits[:, 0])):
            raise CardError(f'soft_joint_pos_limits: expected {n} [lower, upper] pairs, found '
                            f'{spec.params.get("soft_joint_pos_limits")!r}')
        self.limits = limits
        self.alpha = _per_joint(spec, 'alpha', 1.0) if ema else None
        if ema and not np.all((self.alpha >= 0.0) & (self.alpha <= 1.0)):
            raise CardError(f'alpha: expected weights in [0, 1], found {self.alpha.tolist()}')
        self.prev = np.zeros(n, dtype=np.float64)
        self.has_prev = False

    def map(self, raw, joint_pos, out):  # noqa: A003, D102
        np.multiply(raw, self.scale, out=out)
        if self.rescale:
            np.clip(out, -1.0, 1.0, out=out)
            lo, hi = self.limits[:, 0], self.limits[:, 1]
            out[:] = 0.5 * (out + 1.0) * (hi - lo) + lo
        # The card clip is a target range; Isaac Lab clips raw x scale before the rescale,
        # which is the same as clipping to the rescaled range after it (the importer
        # rescales it; the rescale is increasing).
        if self.clip is not None:
            np.clip(out, self.clip[:, 0], self.clip[:, 1], out=out)
        if self.alpha is None:
            return
        if not self.has_prev:
            if joint_pos is None:
                raise ValueError('ema_joint_position_to_limits needs the measured joint '
                                 'positions after a reset')
            # Isaac Lab starts the average from the joint positions at reset.
            self.prev[:] = joint_pos
            self.has_prev = True
        out *= self.alpha
        out += (1.0 - self.alpha) * self.prev
        np.clip(out, self.limits[:, 0], self.limits[:, 1], out=out)
        self.prev[:] = out

    def reset(self) -> None:  # noqa: D102
        self.has_prev = False


class _Hold(MappedTerm):
    """Zero width: hold the joints at fixed positions (default_joint_pos unless given)."""

    def __init__(self, card: PolicyCard, spec: ActionTermSpec):
        super().__init__(0)
        _check_params(spec, ('positions',))
        default = [card.default_joint_pos[card.joint_names.index(j)] for j in spec.joint_names]
        self.positions = _per_joint(spec, 'positions', default) \
            if 'positions' in spec.params else np.asarray(default, dtype=np.float64)

    def map(self, raw, joint_pos, out):  # noqa: A003, D102
        out[:] = self.positions


def _n_joints(spec: ActionTermSpec) -> int:
    return len(spec.joint_names)


_CORE = 'isaaclab.envs.mdp.actions.'
JOINT_POSITION = ActionTerm(
    'joint_position', lambda card, spec: _Affine(spec), _n_joints,
    isaaclab_classes=(_CORE + 'joint_actions:JointPositionAction',),
    doc='target = raw x scale + offset, then clip')
RELATIVE_JOINT_POSITION = ActionTerm(
    'relative_joint_position', lambda card, spec: _Affine(spec, relative=True), _n_joints,
    isaaclab_classes=(_CORE + 'joint_actions:RelativeJointPositionAction',),
    doc='target = measured position + clip(raw x scale + offset)')
JOINT_VELOCITY = ActionTerm(
    'joint_velocity', lambda card, spec: _Affine(spec, kind='velocity'), _n_joints,
    isaaclab_classes=(_CORE + 'joint_actions:JointVelocityAction',),
    doc='velocity target = raw x scale + offset, then clip')
BINARY_JOINT_POSITION = ActionTerm(
    'binary_joint_position', lambda card, spec: _Binary(spec), lambda spec: 1,
    isaaclab_classes=(_CORE + 'binary_joint_actions:BinaryJointPositionAction',),
    doc='one raw value: < 0 -> close positions, else open positions')
ABS_BINARY_JOINT_POSITION = ActionTerm(
    'abs_binary_joint_position', lambda card, spec: _Binary(spec, absolute=True),
    lambda spec: 1,
    isaaclab_classes=(_CORE + 'binary_joint_actions:AbsBinaryJointPositionAction',),
    doc='one raw value against a threshold -> open or close positions')
JOINT_POSITION_TO_LIMITS = ActionTerm(
    'joint_position_to_limits', lambda card, spec: _ToLimits(spec, ema=False), _n_joints,
    isaaclab_classes=(_CORE + 'joint_actions_to_limits:JointPositionToLimitsAction',),
    doc='raw x scale, clip, then [-1, 1] -> soft joint limits')
EMA_JOINT_POSITION_TO_LIMITS = ActionTerm(
    'ema_joint_position_to_limits', lambda card, spec: _ToLimits(spec, ema=True), _n_joints,
    isaaclab_classes=(_CORE + 'joint_actions_to_limits:EMAJointPositionToLimitsAction',),
    doc='joint_position_to_limits, then an exponential moving average from the robot')
HOLD_DEFAULT = ActionTerm(
    'hold_default', _Hold, lambda spec: 0,
    doc='zero width: hold the joints at default_joint_pos (or params positions)')


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
