"""
Observation terms and the builder that fills the model inputs, as Isaac Lab does.

Each term is one small pure function, registered by name (registry.py: the
built-in terms below through vision_policy's own entry points, a user's through
theirs). A term's ``make(card, params)`` runs once, resolves everything it can
(joint indices, defaults), and returns a ``Term``: its output shape and a
``compute(sample, out)`` that writes into a preallocated buffer.

The builder applies Isaac Lab's observation-manager order per term:
compute -> clip -> scale -> history (oldest first) -> concatenate in
declaration order. Noise is a training-time corruption and is not applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .card import CardError, GroupSpec, PolicyCard, TermSpec
from .registry import joints_width, load_registry, OBSERVATION_GROUP, ObservationTerm, \
    PluginError, Registry, WidthContext


@dataclass
class Sample:
    """Latest sensor data in the card's joint order; arrays are float32."""

    joint_pos: np.ndarray
    joint_vel: np.ndarray
    last_action: np.ndarray
    # Camera name ('' for a card's one unnamed camera) -> its latest image, already through
    # the card's image pipeline (see image.py).
    images: dict = field(default_factory=dict)
    # Further sources (IMU, odometry, commands) keyed by term-specific names.
    extras: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Term:
    """A resolved observation term: output shape and a function that fills it."""

    shape: Optional[tuple]   # None: the width its definition declares, flat
    compute: Callable[[Sample, np.ndarray], None]
    # Called when the policy's state resets (activate, hold, clock jump), for a term that
    # carries state between ticks (a phase clock, a filter); None for a pure term.
    reset: Optional[Callable[[], None]] = None
    # What the term reads: 'image', 'joint_vel', or a source name (sources.py), copied
    # from its registered definition; the node subscribes only to what the card needs.
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
    """Observe the raw network output of the previous tick (zeros after a reset)."""
    def compute(sample: Sample, out: np.ndarray) -> None:
        out[:] = sample.last_action
    # The raw action width (zero-width action terms excluded) is the declared width.
    return Term(None, compute)


def image(card: PolicyCard, params: Mapping) -> Term:
    """Observe params['camera']'s image, already through the card's image pipeline."""
    spec = card.camera(params.get('camera', ''))
    name = spec.name
    if spec.layout == 'NCHW':
        shape = (spec.channels, spec.height, spec.width)
    else:
        shape = (spec.height, spec.width, spec.channels)

    def compute(sample: Sample, out: np.ndarray) -> None:
        out[...] = sample.images[name]
    return Term(shape, compute)


# --- Robot-state terms (Isaac Lab import): values arrive in Sample.extras ----------------
# extras keys: 'imu_orientation' (x, y, z, w), 'imu_angular_velocity' (3),
# 'base_lin_vel' (3, body frame), 'velocity_command' (vx, vy, wz).


class ExtraSourceError(ValueError):
    """A term needs an extra source (IMU, odometry, command) that the sample lacks."""


def extra(sample: Sample, key: str) -> np.ndarray:
    """Return sample.extras[key]; ExtraSourceError (the robot holds) when it is missing."""
    value = sample.extras.get(key)
    if value is None:
        raise ExtraSourceError(f'observation needs sample.extras[{key!r}], which is missing')
    return value


def _extra_term(key: str) -> Callable[[PolicyCard, Mapping], Term]:
    def factory(card: PolicyCard, params: Mapping) -> Term:
        def compute(sample: Sample, out: np.ndarray) -> None:
            out[:] = extra(sample, key)
        return Term((3,), compute)
    return factory


base_ang_vel = _extra_term('imu_angular_velocity')
base_ang_vel.__doc__ = 'Base angular velocity in the body frame (IMU angular_velocity).'
base_lin_vel = _extra_term('base_lin_vel')
base_lin_vel.__doc__ = 'Base linear velocity in the body frame (Odometry twist.linear).'
velocity_commands = _extra_term('velocity_command')
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
        gravity_in_body(extra(sample, 'imu_orientation'), out)
    return Term((3,), compute)


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


def height_scan(card: PolicyCard, params: Mapping) -> Term:
    """
    Isaac Lab ``height_scan``: sensor height above each ray hit, minus ``offset``.

    The ``height_map`` source gives a grid of hit heights in the sensor frame,
    rows along y and columns along x (``height_map`` extras, shape (ny, nx));
    the term writes ``-z - offset`` in the card's grid ``ordering`` (Isaac
    Lab's GridPattern: 'xy' = x fastest, 'yx' = y fastest). A ray with no hit
    (NaN/Inf) reads as Isaac Lab's miss, -inf, which the term's clip bounds.
    """
    nx, ny = grid_shape(params)
    offset = np.float32(params.get('offset', 0.5))
    ordering = params.get('ordering', 'xy')
    if ordering not in ('xy', 'yx'):
        raise CardError(f"params.ordering: expected 'xy' or 'yx', found {ordering!r}")

    def compute(sample: Sample, out: np.ndarray) -> None:
        grid = extra(sample, 'height_map')
        if grid.shape != (ny, nx):
            raise ExtraSourceError(f'height_scan: the height map has shape {grid.shape}, the '
                                   f'card grid is (ny, nx) = ({ny}, {nx})')
        ordered = grid if ordering == 'xy' else grid.T
        np.negative(ordered.reshape(-1), out=out)
        out[~np.isfinite(out)] = -np.inf
        out -= offset
    return Term((nx * ny,), compute)


def grid_shape(params: Mapping) -> tuple:
    """(nx, ny) rays of an Isaac Lab GridPattern with params size [lx, ly] and resolution."""
    size, res = params.get('size'), params.get('resolution')
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and
            all(isinstance(v, (int, float)) and v >= 0 for v in size)):
        raise CardError(f'params.size: expected [length_x, width_y] in metres, found {size!r}')
    if not isinstance(res, (int, float)) or res <= 0:
        raise CardError(f'params.resolution: expected metres > 0, found {res!r}')
    # The same arithmetic as torch.arange(-l/2, l/2 + 1e-9, res) in Isaac Lab's grid_pattern.
    return tuple(len(np.arange(-v / 2, v / 2 + 1.0e-9, res)) for v in size)


def pose_command(card: PolicyCard, params: Mapping) -> Term:
    """
    Isaac Lab ``UniformPoseCommand``: target pose in the robot base frame.

    Seven values (x, y, z, qw, qx, qy, qz) from a ``geometry_msgs/PoseStamped``
    expressed in the base frame; ``make_quat_unique`` makes qw >= 0 as training did.
    """
    unique = bool(params.get('make_quat_unique', False))

    def compute(sample: Sample, out: np.ndarray) -> None:
        out[:] = extra(sample, 'pose_command')
        if unique and out[3] < 0.0:
            out[3:] *= -1.0
    return Term((7,), compute)


def imu_orientation(card: PolicyCard, params: Mapping) -> Term:
    """
    Observe the IMU orientation (w, x, y, z), as Isaac Lab's imu_orientation / root_quat_w.

    ``make_quat_unique`` makes w >= 0 (root_quat_w's option). The robot's world frame
    is its IMU's (its yaw origin is arbitrary), not the simulator's.
    """
    unique = bool(params.get('make_quat_unique', False))

    def compute(sample: Sample, out: np.ndarray) -> None:
        x, y, z, w = extra(sample, 'imu_orientation')
        out[:] = (w, x, y, z)
        if unique and out[0] < 0.0:
            out *= -1.0
    return Term((4,), compute)


def base_pos_z(card: PolicyCard, params: Mapping) -> Term:
    """Observe the base height: z of the odometry pose (Isaac Lab base_pos_z)."""
    def compute(sample: Sample, out: np.ndarray) -> None:
        out[0] = extra(sample, 'base_pos')[2]
    return Term((1,), compute)


def episode_time(card: PolicyCard, params: Mapping) -> Term:
    """
    Observe the time since the policy started (current_time_s) or left (remaining_time_s).

    Isaac Lab counts episode steps x step_dt; here the episode starts when the policy
    starts (activate, after a hold). ``episode_length_s`` set: the time remaining.
    """
    length = params.get('episode_length_s')
    steps = [0]

    def compute(sample: Sample, out: np.ndarray) -> None:
        t = steps[0] * card.control_dt
        out[0] = t if length is None else float(length) - t
        steps[0] += 1

    def reset() -> None:
        steps[0] = 0
    return Term((1,), compute, reset)


def current_time_s(card: PolicyCard, params: Mapping) -> Term:
    """Observe the seconds since the policy started (Isaac Lab current_time_s)."""
    return episode_time(card, {})


def remaining_time_s(card: PolicyCard, params: Mapping) -> Term:
    """Observe params['episode_length_s'] minus the seconds since the policy started."""
    if not isinstance(params.get('episode_length_s'), (int, float)):
        raise CardError(f'params.episode_length_s: expected the training episode length in s, '
                        f'found {params.get("episode_length_s")!r}')
    return episode_time(card, params)


def _isaaclab(*funcs: str) -> tuple:
    return tuple(f'isaaclab.envs.mdp.observations:{f}' for f in funcs)


def _image_width(ctx: WidthContext, params: Mapping) -> int:
    return ctx.image_sizes[params.get('camera', '')]


def _action_width(ctx: WidthContext, params: Mapping) -> int:
    return ctx.action_width


def _grid_width(ctx: WidthContext, params: Mapping) -> int:
    nx, ny = grid_shape(params)
    return nx * ny


_VELOCITY_COMMANDS = tuple(f'isaaclab.envs.mdp.commands.velocity_command:{c}' for c in (
    'UniformVelocityCommand', 'NormalVelocityCommand'))

# The built-in terms, each registered under its name in setup.py's entry points (group
# vision_policy.observation_terms), exactly as a user's own terms are.
JOINT_POS = ObservationTerm('joint_pos', joint_pos, joints_width,
                            isaaclab_funcs=_isaaclab('joint_pos'))
JOINT_POS_REL = ObservationTerm('joint_pos_rel', joint_pos_rel, joints_width,
                                isaaclab_funcs=_isaaclab('joint_pos_rel'))
JOINT_VEL = ObservationTerm('joint_vel', joint_vel, joints_width, needs=('joint_vel',),
                            isaaclab_funcs=_isaaclab('joint_vel'))
JOINT_VEL_REL = ObservationTerm('joint_vel_rel', joint_vel_rel, joints_width,
                                needs=('joint_vel',), isaaclab_funcs=_isaaclab('joint_vel_rel'))
JOINT_POS_LIMIT_NORMALIZED = ObservationTerm(
    'joint_pos_limit_normalized', joint_pos_limit_normalized, joints_width,
    isaaclab_funcs=_isaaclab('joint_pos_limit_normalized'))
LAST_ACTION = ObservationTerm('last_action', last_action, _action_width,
                              isaaclab_funcs=_isaaclab('last_action'))
ACTIONS = ObservationTerm('actions', last_action, _action_width, doc='alias of last_action')
IMAGE = ObservationTerm('image', image, _image_width, needs=('image',),
                        isaaclab_funcs=_isaaclab('image'))
BASE_ANG_VEL = ObservationTerm('base_ang_vel', base_ang_vel, 3, needs=('imu',),
                               isaaclab_funcs=_isaaclab('base_ang_vel', 'imu_ang_vel'))
PROJECTED_GRAVITY = ObservationTerm(
    'projected_gravity', projected_gravity, 3, needs=('imu',),
    isaaclab_funcs=_isaaclab('projected_gravity', 'imu_projected_gravity'))
BASE_LIN_VEL = ObservationTerm('base_lin_vel', base_lin_vel, 3, needs=('odom',),
                               isaaclab_funcs=_isaaclab('base_lin_vel'))
VELOCITY_COMMANDS = ObservationTerm('velocity_commands', velocity_commands, 3,
                                    needs=('cmd_vel',), isaaclab_commands=_VELOCITY_COMMANDS)
GENERATED_COMMANDS = ObservationTerm('generated_commands', velocity_commands, 3,
                                     needs=('cmd_vel',), doc='alias of velocity_commands')
HEIGHT_SCAN = ObservationTerm('height_scan', height_scan, _grid_width, needs=('height_map',),
                              isaaclab_funcs=_isaaclab('height_scan'))
IMU_ORIENTATION = ObservationTerm('imu_orientation', imu_orientation, 4, needs=('imu',),
                                  isaaclab_funcs=_isaaclab('imu_orientation', 'root_quat_w'),
                                  import_params=lambda p, env: {'make_quat_unique': True}
                                  if p.get('make_quat_unique') else {})
IMU_LIN_ACC = ObservationTerm('imu_lin_acc', _extra_term('imu_linear_acceleration'), 3,
                              needs=('imu',), isaaclab_funcs=_isaaclab('imu_lin_acc'),
                              doc='IMU linear_acceleration, gravity included as in Isaac Lab')
BASE_POS_Z = ObservationTerm('base_pos_z', base_pos_z, 1, needs=('odom',),
                             isaaclab_funcs=_isaaclab('base_pos_z'))
CURRENT_TIME_S = ObservationTerm('current_time_s', current_time_s, 1,
                                 isaaclab_funcs=_isaaclab('current_time_s'))
REMAINING_TIME_S = ObservationTerm(
    'remaining_time_s', remaining_time_s, 1, isaaclab_funcs=_isaaclab('remaining_time_s'),
    import_params=lambda p, env: {'episode_length_s': float(env['episode_length_s'])})
POSE_COMMAND = ObservationTerm(
    'pose_command', pose_command, 7, needs=('pose_command',),
    isaaclab_commands=('isaaclab.envs.mdp.commands.pose_command:UniformPoseCommand',))


class TermError(ValueError):
    """An observation term failed at run time; the message names the term and its plugin."""


def width_context(card: PolicyCard, registry: Registry) -> WidthContext:
    """Return what term widths depend on, for this card."""
    sizes = {im.name: im.channels * im.height * im.width for im in card.images}
    width = 0
    for i, spec in enumerate(card.action.terms):
        width += registry.action_term(spec.type, f'action.terms[{i}]').width(spec)
    return WidthContext(card.joint_names, width, next(iter(sizes.values()), 0), sizes)


def resolve_term(card: PolicyCard, spec: TermSpec, where: str,
                 registry: Optional[Registry] = None) -> Term:
    """
    Look a term up in the registry and resolve it against the card.

    Raises CardError for bad card params and PluginError when the term is
    unknown, its plugin failed to load, ``make`` raised, or the term's shape
    differs from the width it declares.
    """
    registry = registry if registry is not None else load_registry()
    definition = registry.observation_term(spec.name, where)
    origin = registry.origin(OBSERVATION_GROUP, spec.name)
    try:
        term = definition.make(card, spec.params)
        declared = definition.width_for(width_context(card, registry), spec.params)
    except CardError as exc:
        raise CardError(f'{where}: {exc}') from None
    except Exception as exc:  # noqa: B902 (a plugin may raise anything; configure reports it)
        raise PluginError(f'{where}: observation term {spec.name!r} ({origin}) raised '
                          f'{type(exc).__name__} at configure: {exc}') from None
    if isinstance(term, Term) and term.shape is None:
        term = replace(term, shape=(declared,))
    if not isinstance(term, Term) or term.size != declared:
        found = f'shape {list(term.shape)}' if isinstance(term, Term) else type(term).__name__
        raise PluginError(f'{where}: observation term {spec.name!r} ({origin}) made {found}, '
                          f'expected an observation.Term of the declared width {declared}')
    for label, values in (('scale', spec.scale),):
        if values is not None and len(values) not in (1, term.size):
            raise CardError(f'{where}.{label}: expected 1 or {term.size} values, '
                            f'found {len(values)}')
    return replace(term, needs=tuple(definition.needs))


class _TermSlot:
    """One term inside a group: buffers for its value and its history."""

    def __init__(self, term: Term, spec: TermSpec, history: int, name: str,
                 plugin: Optional[str]):
        self.term = term
        # A plugin's output is checked term by term so that the hold reason names it; the
        # built-in terms are left to the core's check of the whole input.
        self.label = f'{name!r}' + (f' ({plugin})' if plugin else '')
        self.check = plugin is not None
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
        try:
            self.term.compute(sample, self.value)
        except ExtraSourceError:
            raise
        except Exception as exc:  # noqa: B902 (a plugin may raise anything: hold, not crash)
            raise TermError(f'observation term {self.label} raised {type(exc).__name__}: '
                            f'{exc}') from None
        if self.check and not np.all(np.isfinite(self.value)):
            raise TermError(f'observation term {self.label} returned NaN/Inf: '
                            f'{self.value.reshape(-1)[:8].tolist()}')
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
        if self.term.reset is not None:
            self.term.reset()


class ObservationBuilder:
    """Fills one preallocated array per model input from the latest sample."""

    def __init__(self, card: PolicyCard, registry: Optional[Registry] = None):
        self.card = card
        self.registry = registry if registry is not None else load_registry()
        self.inputs = {}
        self._groups = []
        # 'group/term' -> the term's latest value after clip and scale (for recordings).
        self.term_values = {}
        for spec in card.inputs:
            if spec.group is None:
                if 0 in spec.shape:
                    # An input of no values (rsl_rl's empty obs of image-only policies).
                    self.inputs[spec.name] = np.zeros(spec.shape, dtype=np.float32)
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
            term = resolve_term(self.card, spec, where, self.registry)
            history = group.term_history(spec)
            if history and not group.flatten_history_dim and len(group.terms) > 1:
                raise CardError(f'observations.{group.name}: flatten_history_dim: false is '
                                f'supported for single-term groups only')
            builtin = self.registry.is_builtin(OBSERVATION_GROUP, spec.name)
            origin = self.registry.origin(OBSERVATION_GROUP, spec.name)
            slots.append(_TermSlot(term, spec, history, spec.name, None if builtin else origin))
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
