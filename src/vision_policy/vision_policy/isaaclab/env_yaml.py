"""
Manager-based env.yaml (+ agent.yaml) -> Translation, with Isaac Lab's semantics.

Observation groups fed to the actor (rsl_rl ``obs_groups['policy']``, default
``['policy']``) are read in declaration order; per term: func, params,
clip, scale, history_length (a group-level history_length overrides the
terms'), noise ignored. Joint selections are regexes over the robot's joints
in articulation order (``joint_names.py``). Terms and actions are mapped to
built-in or registered ones (registry.py) by their Isaac Lab ``func`` or class
path; a refusal names the entry-point group and the definition to write.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

from . import joint_names as jn
from .assemble import Translation
from .report import ActionLine, ImportReport, TermLine
from ..card import ActionTermSpec
from ..observation import grid_shape
from ..registry import ACTION_GROUP, load_registry, OBSERVATION_GROUP, Registry, WidthContext

CORE_MODULES = ('isaaclab.envs.mdp.observations', 'isaaclab.envs.mdp',
                'omni.isaac.lab.envs.mdp.observations', 'omni.isaac.lab.envs.mdp')
ACTION_MODULES = ('isaaclab.envs.mdp.actions', 'omni.isaac.lab.envs.mdp.actions')
JOINT_TERMS = ('joint_pos', 'joint_pos_rel', 'joint_vel', 'joint_vel_rel',
               'joint_pos_limit_normalized')
BASE_TERMS = ('base_ang_vel', 'projected_gravity', 'base_lin_vel')
DEPTH_TYPES = ('depth', 'distance_to_camera', 'distance_to_image_plane')


def _split(path: Any) -> tuple:
    """'module:name' (or 'module.name') -> (module, name)."""
    text = str(path or '')
    if ':' in text:
        module, name = text.rsplit(':', 1)
    else:
        module, _, name = text.rpartition('.')
    return module, name


def _is_core(module: str, prefixes: Sequence[str]) -> bool:
    return any(module == p or module.startswith(p + '.') for p in prefixes)


def _single_image(group_cfg: Mapping) -> bool:
    """Tell whether a group holds exactly one term, Isaac Lab's image term."""
    terms = [v for v in group_cfg.values() if isinstance(v, Mapping) and 'func' in v]
    return len(terms) == 1 and _split(terms[0]['func'])[1] == 'image'


def encoder_groups(agent: Optional[Mapping], actor: Sequence[str]) -> dict:
    """{group: obs_groups key} for groups agent.yaml routes to networks other than the critic."""
    routed = {}
    for key, groups in ((agent or {}).get('obs_groups') or {}).items():
        if key in ('policy', 'critic') or not isinstance(groups, (list, tuple)):
            continue
        for group in groups:
            if group not in actor:
                routed.setdefault(str(group), str(key))
    return routed


def _params_hint(params: Mapping) -> str:
    """Show the Isaac Lab params a user's term will see, for the refusal message."""
    plain = {k: v for k, v in params.items() if not isinstance(v, Mapping)}
    return f' (its Isaac Lab params: {plain})' if plain else ''


def control_dt(env: Mapping) -> Optional[float]:
    """sim.dt x decimation, the period of one policy step."""
    dt = (env.get('sim') or {}).get('dt')
    decimation = env.get('decimation')
    if isinstance(dt, (int, float)) and isinstance(decimation, int):
        return float(dt) * decimation
    return None


def actor_groups(agent: Optional[Mapping]) -> list:
    """Observation groups the actor sees: rsl_rl obs_groups['policy'], else ['policy']."""
    groups = (agent or {}).get('obs_groups') or {}
    return list(groups.get('policy') or ['policy'])


def clip_actions(agent: Optional[Mapping]) -> Optional[float]:
    """Return the agent's clip on raw actions (rsl_rl top level, rl_games params.env), if any."""
    agent = agent or {}
    value = agent.get('clip_actions')
    if value is None:
        value = ((agent.get('params') or {}).get('env') or {}).get('clip_actions')
    return None if value is None else float(value)


def clip_observations(agent: Optional[Mapping]) -> Optional[float]:
    """Return rl_games' clamp of every observation (params.env.clip_observations), if any."""
    value = (((agent or {}).get('params') or {}).get('env') or {}).get('clip_observations')
    return None if value is None else float(value)


def default_joint_pos(env: Mapping, joints: Sequence[str]) -> list:
    """Defaults from scene.robot.init_state.joint_pos (regex dict; unmatched joints 0)."""
    init = (((env.get('scene') or {}).get('robot') or {}).get('init_state') or {})
    return [float(v) for v in jn.per_joint(init.get('joint_pos') or {}, joints, 0.0,
                                           'scene.robot.init_state.joint_pos')]


class EnvTranslator:
    """Translate one manager-based env; problems go to the report, never raise for them."""

    def __init__(self, env: Mapping, agent: Optional[Mapping], joints: Sequence[str],
                 report: ImportReport, joint_limits: Optional[Mapping[str, tuple]] = None,
                 registry: Optional[Registry] = None):
        self.env, self.agent, self.joints = env, agent, list(joints)
        self.report = report
        self.registry = registry if registry is not None else load_registry()
        self.limits = dict(joint_limits or {})
        self.defaults = default_joint_pos(env, self.joints)
        robot = (env.get('scene') or {}).get('robot') or {}
        self.soft_factor = float(robot.get('soft_joint_pos_limit_factor') or 1.0)
        init_vel = (robot.get('init_state') or {}).get('joint_vel') or {}
        self.default_vel = jn.per_joint(init_vel, self.joints, 0.0,
                                        'scene.robot.init_state.joint_vel')
        self.action_width: Optional[int] = None
        # sensor_cfg.name of each image group observations() returns, in its order.
        self.image_sensors: list = []

    # ------------------------------------------------------------------ actions
    def actions(self) -> Optional[dict]:
        """Return the card action section for the env's action terms (None if untranslatable)."""
        terms, width, ok = [], 0, True
        for term_name, cfg in (self.env.get('actions') or {}).items():
            if cfg is None:
                continue
            module, cls = _split(cfg.get('class_type'))
            where = f'action {term_name!r}'
            try:
                joints = jn.resolve_names(cfg.get('joint_names'), self.joints,
                                          bool(cfg.get('preserve_order')), where)
            except jn.JointNameError as exc:
                self.report.problem(where, str(exc))
                ok, width = False, None
                continue
            if cfg.get('asset_name', 'robot') != 'robot':
                self.report.problem(where, f'asset {cfg.get("asset_name")!r} is not the robot')
                ok, width = False, None
                continue
            try:
                term, term_width = self._action_term(term_name, cfg, module, cls, joints, where)
            except jn.JointNameError as exc:
                self.report.problem(where, str(exc))
                ok, width = False, None
                continue
            if term is None:
                # The width of an unknown action class is unknown (a held joint takes none).
                self.report.actions.append(ActionLine(term_name, cls, tuple(joints)))
                ok, width = False, None
                continue
            terms.append(term)
            width = None if width is None else width + term_width
        self.action_width = width
        names = [j for t in terms for j in t['joint_names']]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            self.report.problem('actions', f'joint(s) {dup} driven by more than one term')
            ok = False
        if not ok or not terms:
            return None
        return self._action_section(terms)

    def _action_term(self, term_name: str, cfg: Mapping, module: str, cls: str, joints: list,
                     where: str) -> tuple:
        """(card action term or None, raw width) for one Isaac Lab action cfg."""
        path = f'{module}:{cls}'
        definition = self.registry.by_isaaclab_action(path)
        if definition is None:
            self.report.problem(where, (
                f'no registered action term implements {path}. Write one in your package: '
                f'ActionTerm(name=..., make=make(card, spec) -> action.MappedTerm, '
                f'width=lambda spec: <raw values>, isaaclab_classes=({path!r},), '
                f'import_spec=import_spec(cfg, translator, joints) -> card term) and register '
                f'it in entry-point group {ACTION_GROUP!r}'))
            return None, None
        if self.registry.is_builtin(ACTION_GROUP, definition.name):
            fields = getattr(self, BUILTIN_ACTION_IMPORTS[definition.name])(cfg, joints, where)
        elif definition.import_spec is not None:
            fields = definition.import_spec(cfg, joints, self)
        else:
            self.report.problem(where, f'action term {definition.name!r} implements {path} '
                                       f'but has no import_spec to translate its cfg')
            return None, None
        term = {'type': definition.name, 'name': term_name, 'joint_names': joints, **fields}
        try:
            spec = ActionTermSpec(definition.name, tuple(joints),
                                  {k: v for k, v in term.items()
                                   if k not in ('type', 'name', 'joint_names', 'clip')})
            term_width = int(definition.width(spec))
        except Exception as exc:  # noqa: B902 (a plugin may raise anything; report it)
            self.report.problem(where, f'action term {definition.name!r} width() raised '
                                       f'{type(exc).__name__}: {exc}')
            return None, None
        line_scale = term.get('scale') if isinstance(term.get('scale'), list) else ()
        line_offset = term.get('offset') if isinstance(term.get('offset'), list) else ()
        self.report.actions.append(ActionLine(
            term_name, f'{cls} -> {definition.name}, width {term_width}', tuple(joints),
            tuple(line_scale), tuple(line_offset),
            None if term.get('clip') is None else tuple(
                None if c is None else tuple(c) for c in term['clip'])))
        return term, term_width

    def import_joint_position(self, cfg: Mapping, joints: list, where: str) -> dict:
        """Card fields of a JointPositionAction (scale, offset, clip per joint)."""
        s, o, c = self._joint_position(cfg, joints, where)
        return {'scale': s, 'offset': o, 'clip': c}

    def import_relative(self, cfg: Mapping, joints: list, where: str) -> dict:
        """Card fields of a RelativeJointPositionAction (offset 0 when use_zero_offset)."""
        cfg = dict(cfg)
        if cfg.get('use_zero_offset', True):
            cfg['offset'] = 0.0
        cfg['use_default_offset'] = False
        # With the wrapper's clip_actions the clip folded in is a range of steps (the raw
        # clamp x scale + offset, within the term's own clip), as Isaac Lab steps; a relative
        # term's clip never stands in for position limits (card.NON_POSITION_CLIPS).
        return self.import_joint_position(cfg, joints, where)

    def import_velocity(self, cfg: Mapping, joints: list, where: str) -> dict:
        """Card fields of a JointVelocityAction (default offset: the default joint velocity)."""
        scale = [float(v) for v in jn.per_joint(cfg.get('scale', 1.0), joints, 1.0,
                                                f'{where}.scale')]
        if cfg.get('use_default_offset', True):
            offset = [float(self.default_vel[self.joints.index(j)]) for j in joints]
        else:
            offset = [float(v) for v in jn.per_joint(cfg.get('offset', 0.0), joints, 0.0,
                                                     f'{where}.offset')]
        clip = self._clip(cfg, joints, where)
        limit = clip_actions(self.agent)
        if limit is not None:
            # The wrapper clamps raw to [-c, c]: per joint a range of velocity targets.
            clip = clip or [None] * len(joints)
            for i in range(len(joints)):
                span = abs(scale[i]) * limit
                lo, hi = offset[i] - span, offset[i] + span
                if clip[i] is not None:
                    lo, hi = max(lo, clip[i][0]), min(hi, clip[i][1])
                clip[i] = [lo, hi]
        return {'scale': scale, 'offset': offset, 'clip': clip}

    def import_binary(self, cfg: Mapping, joints: list, where: str) -> dict:
        """Card fields of a BinaryJointPositionAction: open and close positions per joint."""
        out = {}
        for key, field_name in (('open', 'open_command_expr'), ('close', 'close_command_expr')):
            values = jn.resolve_values(cfg.get(field_name) or {}, joints,
                                       what=f'{where}.{field_name}')
            missing = [j for j in joints if j not in values]
            if missing:
                raise jn.JointNameError(f'{where}.{field_name}: no value for joint(s) {missing}')
            out[key] = [float(values[j]) for j in joints]
        if 'threshold' in cfg:
            # AbsBinaryJointPositionAction's decision rule.
            out['threshold'] = float(cfg.get('threshold', 0.5))
            out['positive_threshold'] = bool(cfg.get('positive_threshold', True))
        clip = self._clip(cfg, joints, where)
        # The target range (the node's default position limits) spans open and close.
        out['clip'] = clip if clip is not None and None not in clip else [
            [min(a, b), max(a, b)] for a, b in zip(out['open'], out['close'])]
        return out

    def import_to_limits(self, cfg: Mapping, joints: list, where: str) -> dict:
        """Card fields of (EMA)JointPositionToLimitsAction: scale, soft limits, alpha."""
        out = {'scale': [float(v) for v in jn.per_joint(cfg.get('scale', 1.0), joints, 1.0,
                                                        f'{where}.scale')],
               'rescale_to_limits': bool(cfg.get('rescale_to_limits', True))}
        missing = [n for n in joints if n not in self.limits]
        if missing:
            raise jn.JointNameError(f'{where}: needs the joint limits of {missing}: give '
                                    f'--urdf (soft factor {self.soft_factor} is in env.yaml)')
        out['soft_joint_pos_limits'] = [list(soft_limits(self.limits[n], self.soft_factor))
                                        for n in joints]
        if 'alpha' in cfg:
            out['alpha'] = [float(v) for v in jn.per_joint(cfg['alpha'], joints, 1.0,
                                                           f'{where}.alpha')]
        clip = self._clip(cfg, joints, where)
        limit = clip_actions(self.agent)
        if clip is None and limit is None:
            out['clip'] = out['soft_joint_pos_limits']
            return out
        # Isaac Lab clips raw x scale (after the wrapper's clamp of raw to [-c, c]); with
        # rescale_to_limits that range, within [-1, 1], maps to a range of targets.
        out['clip'] = []
        for i, (lo, hi) in enumerate(out['soft_joint_pos_limits']):
            a, b = (-math.inf, math.inf) if clip is None or clip[i] is None else clip[i]
            if limit is not None:
                span = abs(out['scale'][i]) * limit
                a, b = max(a, -span), min(b, span)
            if out['rescale_to_limits']:
                a, b = (lo + 0.5 * (min(max(v, -1.0), 1.0) + 1.0) * (hi - lo) for v in (a, b))
            out['clip'].append([lo, hi] if math.isinf(a) else [a, b])
        return out

    def _clip(self, cfg: Mapping, joints: list, where: str) -> Optional[list]:
        clip_cfg = cfg.get('clip')
        if clip_cfg is None:
            return None
        return [None if c is None else [float(c[0]), float(c[1])]
                for c in jn.per_joint(clip_cfg, joints, None, f'{where}.clip')]

    def _joint_position(self, cfg: Mapping, joints: list, where: str) -> tuple:
        scale = [float(v) for v in jn.per_joint(cfg.get('scale', 1.0), joints, 1.0,
                                                f'{where}.scale')]
        if cfg.get('use_default_offset'):
            offset = [self.defaults[self.joints.index(j)] for j in joints]
        else:
            offset = [float(v) for v in jn.per_joint(cfg.get('offset', 0.0), joints, 0.0,
                                                     f'{where}.offset')]
        clip_cfg = cfg.get('clip')
        clip = [None] * len(joints) if clip_cfg is None else [
            None if c is None else (float(c[0]), float(c[1]))
            for c in jn.per_joint(clip_cfg, joints, None, f'{where}.clip')]
        limit = clip_actions(self.agent)
        if limit is not None:
            # The runner clips raw actions to [-c, c]; per joint that is a target range.
            for i in range(len(joints)):
                span = abs(scale[i]) * limit
                lo, hi = offset[i] - span, offset[i] + span
                if clip[i] is not None:
                    lo, hi = max(lo, clip[i][0]), min(hi, clip[i][1])
                clip[i] = (lo, hi)
        return scale, offset, clip

    def _action_section(self, terms: list) -> dict:
        """One joint_position mapping as before, else action.terms in output order."""
        for term in terms:
            clip = term.get('clip')
            given = [] if clip is None else [c for c in clip if c is not None]
            if clip is not None and len(given) < len(clip):
                if given:
                    self.report.problem(f'action {term["name"]!r}', 'a clip is configured for '
                                        'only some joints; the card clips all or none')
                term['clip'] = None
            if term.get('clip') is not None:
                term['clip'] = [list(c) for c in term['clip']]
        if clip_actions(self.agent) is not None:
            self.report.warnings.append(
                f'agent clip_actions {clip_actions(self.agent)} is carried as a target clip, '
                f'and as a clip of last_action (which observed the clamped raw action)')
        if all(t['type'] == 'joint_position' for t in terms):
            clips = [t['clip'] for t in terms]
            return {'type': 'joint_position',
                    'joint_names': [j for t in terms for j in t['joint_names']],
                    'scale': [v for t in terms for v in t['scale']],
                    'offset': [v for t in terms for v in t['offset']],
                    'clip': None if any(c is None for c in clips) else
                    [c for clip in clips for c in clip]}
        return {'terms': [{k: v for k, v in t.items() if v is not None} for t in terms]}

    # ------------------------------------------------------------------ observations
    def observations(self) -> tuple:
        """(vector terms, width or None, image groups) for the groups the actor sees."""
        obs = self.env.get('observations') or {}
        wanted = actor_groups(self.agent)
        encoders = encoder_groups(self.agent, wanted)
        for name, cfg in obs.items():
            if cfg is None:
                self.report.warnings.append(f'observation group {name!r} is disabled (null): '
                                            f'skipped')
            elif name in encoders and _single_image(cfg):
                self.report.warnings.append(
                    f'observation group {name!r} is routed by agent.yaml obs_groups'
                    f'[{encoders[name]!r}] to a separate encoder: imported as an image input '
                    f'(the exported ONNX must take it)')
                wanted = wanted + [name]
            elif name not in wanted:
                self.report.warnings.append(f'observation group {name!r} does not feed the '
                                            f'actor: skipped')
        terms, width, images = [], 0, []
        self.vector_group = None
        for name in wanted:
            cfg = obs.get(name)
            if cfg is None:
                self.report.problem(f'observation group {name!r}', 'the actor reads it but '
                                    'env.yaml does not define it (or it is null)')
                continue
            group_terms = [(k, v) for k, v in cfg.items() if isinstance(v, Mapping) and
                           'func' in v]
            if _single_image(cfg):
                image = self._image_group(name, group_terms[0][1], cfg)
                if image is not None:
                    images.append(image)
                continue
            if cfg.get('concatenate_terms') is False:
                self.report.problem(f'observation group {name!r}', 'concatenate_terms is '
                                    'false; the policy needs one concatenated vector')
            self.vector_group = self.vector_group or name
            for term_name, term_cfg in group_terms:
                card_term, term_width = self._term(name, term_name, term_cfg, cfg)
                if card_term is not None:
                    terms.append(card_term)
                width = None if width is None or term_width is None else width + term_width
        return terms, width, images

    def _history(self, term_cfg: Mapping, group_cfg: Mapping) -> tuple:
        if group_cfg.get('history_length') is not None:
            flatten = group_cfg.get('flatten_history_dim', True)
            return int(group_cfg['history_length']), bool(flatten)
        return int(term_cfg.get('history_length') or 0), bool(term_cfg.get(
            'flatten_history_dim', True))

    def _term(self, group: str, term_name: str, cfg: Mapping, group_cfg: Mapping) -> tuple:
        """(card term dict or None, total width or None)."""
        module, func = _split(cfg.get('func'))
        history, flatten = self._history(cfg, group_cfg)
        where = f'term {group}.{term_name}'
        params = cfg.get('params') or {}
        card_name, card_params, width, reason = func, {}, None, None
        core = _is_core(module, CORE_MODULES)
        if cfg.get('modifiers'):
            reason = 'observation modifiers are not supported'
        elif history and not flatten:
            reason = 'flatten_history_dim false: the policy input must be flat'
        elif core and func in JOINT_TERMS:
            card_params, width, reason = self._joint_params(func, params, where)
        elif core and func in BASE_TERMS:
            width, reason = 3, self._robot_asset(params)
        elif core and func == 'generated_commands':
            card_name, card_params, width, reason = self._command_term(params)
        elif core and func in ('last_action', 'actions'):
            card_name, width = 'last_action', self.action_width
            if params.get('action_name') is not None:
                reason = 'last_action of a single action term (action_name) is not supported'
        elif core and func == 'height_scan':
            card_params, width, reason = self._height_scan(params)
        else:
            card_name, card_params, width, reason = self._registered_term(module, func, params)
        scale, clip = cfg.get('scale'), cfg.get('clip')
        if reason is None:
            clip, reason = self._runner_clip(card_name, scale, clip)
        total = None if width is None else width * max(history, 1)
        self.report.terms.append(TermLine(group, term_name, f'{module}:{func}', total, scale,
                                          clip, history, reason is None))
        if reason is not None:
            self.report.problem(where, reason)
            return None, total
        term = {'name': card_name}
        if scale is not None:
            term['scale'] = [float(v) for v in scale] if isinstance(scale, (list, tuple)) \
                else float(scale)
        if clip is not None:
            term['clip'] = [float(clip[0]), float(clip[1])]
        if history:
            term['history_length'] = history
        if card_params:
            term['params'] = card_params
        return term, total

    def _runner_clip(self, card_name: str, scale: Any, clip: Any) -> tuple:
        """(term clip, reason or None) with the RL wrapper's clamps folded in (isaaclab_rl)."""
        lo, hi = (-math.inf, math.inf) if clip is None else (float(clip[0]), float(clip[1]))
        limit = clip_actions(self.agent)
        if card_name == 'last_action' and limit is not None:
            # The wrapper clamps the raw action to [-c, c] before the env sees it: training's
            # last_action observed the clamped value (and its own clip came after).
            lo, hi = max(lo, -limit), min(hi, limit)
        limit = clip_observations(self.agent)
        if limit is not None:
            # rl_games clamps every observation to [-c, c] after the term's clip and scale;
            # per value that is a clip of c / |scale| before the scale.
            scales = scale if isinstance(scale, (list, tuple)) else [1.0 if scale is None
                                                                     else scale]
            magnitudes = {abs(float(s)) for s in scales}
            if len(magnitudes) > 1:
                return clip, (f'agent clip_observations {limit} after a per-value scale is '
                              f'not one clip range')
            if magnitudes != {0.0}:
                bound = limit / magnitudes.pop()
                lo, hi = max(lo, -bound), min(hi, bound)
        if lo > hi:
            return clip, f'clip {list(clip)} and the agent clamps leave no value'
        return (None if math.isinf(lo) and math.isinf(hi) else [lo, hi]), None

    def _robot_asset(self, params: Mapping) -> Optional[str]:
        asset = params.get('asset_cfg') or {}
        if asset.get('name', 'robot') != 'robot':
            return f'asset {asset.get("name")!r} is not the robot'
        return None

    def _joint_params(self, func: str, params: Mapping, where: str) -> tuple:
        """(card params, width, reason or None) for a joint term."""
        asset = params.get('asset_cfg') or {}
        reason = self._robot_asset(params)
        if reason:
            return {}, None, reason
        try:
            names = jn.resolve_names(asset.get('joint_names'), self.joints,
                                     bool(asset.get('preserve_order')), where)
        except jn.JointNameError as exc:
            return {}, None, str(exc)
        card_params = {} if names == self.joints else {'joint_names': names}
        if func == 'joint_vel_rel' and any(self.default_vel[self.joints.index(n)] != 0.0
                                           for n in names):
            return {}, len(names), 'non-zero default joint velocities are not supported'
        if func == 'joint_pos_limit_normalized':
            missing = [n for n in names if n not in self.limits]
            if missing:
                return {}, len(names), (f'needs the joint limits of {missing}: give --urdf '
                                        f'(soft factor {self.soft_factor} is in env.yaml)')
            card_params['soft_joint_pos_limits'] = [
                list(soft_limits(self.limits[n], self.soft_factor)) for n in names]
        return card_params, len(names), None

    def _width_context(self) -> WidthContext:
        return WidthContext(tuple(self.joints), self.action_width or 0)

    def _registered_term(self, module: str, func: str, params: Mapping) -> tuple:
        """(card name, card params, width, reason) for a func a registered term implements."""
        path = f'{module}:{func}'
        definition = self.registry.by_isaaclab_func(path)
        if definition is None:
            return func, {}, None, (
                f'no registered observation term implements {path}. Write one in your '
                f'package: ObservationTerm(name={func!r}, make=make(card, params) -> '
                f'observation.Term(shape, compute(sample, out)), width=<values per step>, '
                f'needs=(<source names>,), isaaclab_funcs=({path!r},)) and register it in '
                f'entry-point group {OBSERVATION_GROUP!r}' + _params_hint(params))
        return self._use_definition(definition, params)

    def _use_definition(self, definition, params: Mapping) -> tuple:
        card_params = {}
        try:
            if definition.import_params is not None:
                card_params = dict(definition.import_params(params, self.env))
            width = definition.width_for(self._width_context(), card_params)
        except Exception as exc:  # noqa: B902 (a plugin may raise anything; report it)
            return definition.name, {}, None, (
                f'registered term {definition.name!r} '
                f'({self.registry.origin(OBSERVATION_GROUP, definition.name)}) raised '
                f'{type(exc).__name__} translating its params: {exc}')
        return definition.name, card_params, width, None

    def _command_term(self, params: Mapping) -> tuple:
        """generated_commands: the term registered for the command's class."""
        name = params.get('command_name')
        cmd = (self.env.get('commands') or {}).get(name) or {}
        module, cls = _split(cmd.get('class_type'))
        path = f'{module}:{cls}'
        definition = self.registry.by_isaaclab_command(path)
        if definition is None:
            return 'generated_commands', {}, None, (
                f'command {name!r} is {path if cls else "undefined"}, which no registered '
                f'term implements. Write one in your package: ObservationTerm(name=..., '
                f'make=..., width=<values>, needs=(<source names>,), '
                f'isaaclab_commands=({path!r},)) and register it in entry-point group '
                f'{OBSERVATION_GROUP!r}')
        card_name, card_params, width, reason = self._use_definition(
            definition, {**params, 'command': cmd})
        if definition.name == 'velocity_commands':
            card_params = {'command_name': name}
        elif definition.name == 'pose_command' and cmd.get('make_quat_unique'):
            card_params = {'make_quat_unique': True}
        return card_name, card_params, width, reason

    def _height_scan(self, params: Mapping) -> tuple:
        """(card params, width, reason) of height_scan from its RayCaster's GridPattern."""
        sensor = (params.get('sensor_cfg') or {}).get('name')
        scanner = (self.env.get('scene') or {}).get(sensor) or {}
        pattern = scanner.get('pattern_cfg') or {}
        if not _split(pattern.get('func'))[1] in ('grid_pattern', ''):
            return {}, None, f'scene.{sensor} pattern {pattern.get("func")} is not a grid'
        if pattern.get('size') is None or pattern.get('resolution') is None:
            return {}, None, f'scene.{sensor}.pattern_cfg lacks size or resolution'
        card_params = {'size': [float(v) for v in pattern['size']],
                       'resolution': float(pattern['resolution']),
                       'ordering': str(pattern.get('ordering', 'xy')),
                       'offset': float(params.get('offset', 0.5))}
        offset = (scanner.get('offset') or {}).get('pos') or (0.0, 0.0, 0.0)
        # Where the grid sits relative to the scanner's frame and how it turns with it: for
        # whoever produces the height map on the robot; the term itself does not use them.
        card_params['grid_offset'] = [float(offset[0]), float(offset[1])]
        card_params['ray_alignment'] = str(scanner.get('ray_alignment') or (
            'yaw' if scanner.get('attach_yaw_only') else 'base'))
        nx, ny = grid_shape(card_params)
        return card_params, nx * ny, None

    def _image_group(self, group: str, term: Mapping, group_cfg: Mapping) -> Optional[tuple]:
        params = term.get('params') or {}
        sensor = (params.get('sensor_cfg') or {}).get('name', 'tiled_camera')
        data_type = params.get('data_type', 'rgb')
        camera = camera_size((self.env.get('scene') or {}).get(sensor) or {})
        history, _ = self._history(term, group_cfg)
        reason = None
        if not _is_core(_split(term.get('func'))[0], CORE_MODULES):
            reason = 'project-specific image term'
        elif not camera.get('width') or not camera.get('height'):
            reason = f'scene.{sensor} has no width/height'
        elif data_type != 'rgb' and data_type not in DEPTH_TYPES:
            reason = f'camera data_type {data_type!r} is not supported'
        elif params.get('convert_perspective_to_orthogonal'):
            reason = 'convert_perspective_to_orthogonal is not supported'
        elif history or term.get('scale') is not None or term.get('clip') is not None:
            reason = 'history, scale or clip on an image term is not supported'
        spec, chw = None, None
        if reason is None:
            spec = image_spec(camera, data_type, params.get('normalize', True), self.report)
            chw = (3 if data_type == 'rgb' else 1, int(camera['height']), int(camera['width']))
            if clip_observations(self.agent) is not None:
                reason = image_clamp(spec, clip_observations(self.agent))
            if data_type != 'rgb' and params.get('normalize', True) is False:
                self.report.warnings.append(
                    f'term {group}.image: normalize false kept +inf (no return) in the '
                    f'training depth; the card feeds 0 there, as for normalize true')
        self.report.terms.append(TermLine(group, 'image', f'scene.{sensor} {data_type}',
                                          None if chw is None else math.prod(chw), None, None,
                                          0, reason is None))
        if reason is not None:
            self.report.problem(f'term {group}.image', reason)
            return None
        self.image_sensors.append(sensor)
        return group, spec, chw


# Built-in action term -> the EnvTranslator method that writes its card fields.
BUILTIN_ACTION_IMPORTS = {
    'joint_position': 'import_joint_position',
    'relative_joint_position': 'import_relative',
    'joint_velocity': 'import_velocity',
    'binary_joint_position': 'import_binary',
    'abs_binary_joint_position': 'import_binary',
    'joint_position_to_limits': 'import_to_limits',
    'ema_joint_position_to_limits': 'import_to_limits',
}


# Card actuator field -> the Isaac Lab actuator cfg fields it is read from, first given wins
# (an implicit actuator's limits are the *_sim ones; an explicit one's are the plain ones).
ACTUATOR_SOURCES = {
    'stiffness': ('stiffness',),
    'damping': ('damping',),
    'effort_limit': ('effort_limit_sim', 'effort_limit'),
    'velocity_limit': ('velocity_limit_sim', 'velocity_limit'),
    'armature': ('armature',),
    'friction': ('friction',),
    'min_delay_steps': ('min_delay',),
    'delay_steps': ('max_delay',),
}


def actuators(env: Mapping, joints: Sequence[str], report: ImportReport) -> dict:
    """Read the training actuator fields per joint from scene.robot.actuators, for the card."""
    configs = (((env.get('scene') or {}).get('robot') or {}).get('actuators') or {})
    out = {}
    for group, cfg in configs.items():
        if not isinstance(cfg, Mapping):
            continue
        where = f'scene.robot.actuators.{group}'
        try:
            names = jn.resolve_names(cfg.get('joint_names_expr'), joints, False, where)
            fields = {}
            for card_field, keys in ACTUATOR_SOURCES.items():
                key = next((k for k in keys if cfg.get(k) is not None), None)
                if key is not None:
                    fields[card_field] = jn.per_joint(cfg[key], names, None, f'{where}.{key}')
        except jn.JointNameError as exc:
            report.warnings.append(f'actuators not recorded for {group!r}: {exc}')
            continue
        kind = _split(cfg.get('class_type'))[1]
        for i, joint in enumerate(names):
            entry = {'type': kind} if kind else {}
            entry.update({k: float(v[i]) for k, v in fields.items() if v[i] is not None})
            out[joint] = entry
    return out


def camera_size(camera: Mapping) -> Mapping:
    """Return the camera cfg with width/height (a RayCasterCamera keeps them in pattern_cfg)."""
    pattern = camera.get('pattern_cfg') or {}
    if not camera.get('width') and pattern.get('width') and pattern.get('height'):
        return {**camera, 'width': pattern['width'], 'height': pattern['height']}
    return camera


def soft_limits(limits: Sequence[float], factor: float) -> tuple:
    """Isaac Lab's soft joint limits: the hard range shrunk about its middle by factor."""
    lo, hi = float(limits[0]), float(limits[1])
    mid, half = (lo + hi) * 0.5, (hi - lo) * 0.5 * factor
    return (mid - half, mid + half)


def camera_block(camera: Mapping) -> tuple:
    """
    Return (the card's image.camera or None, notes) for an Isaac Lab camera cfg.

    RayCasterCameraCfg (size and intrinsics in pattern_cfg): K as
    ``RayCasterCamera._compute_intrinsic_matrices`` computes it, offsets and vertical
    aperture included. TiledCameraCfg / CameraCfg: the PinholeCameraCfg spawn fields; Isaac
    Lab's Camera renders square pixels about the image centre (``_update_intrinsic_matrices``
    ignores the vertical aperture and the offsets), so those are dropped with a note.
    """
    pattern = camera.get('pattern_cfg') or {}
    if pattern.get('focal_length') is not None:
        w, h = int(pattern['width']), int(pattern['height'])
        f, ha = float(pattern['focal_length']), float(pattern['horizontal_aperture'])
        va = float(pattern.get('vertical_aperture') or ha * h / w)
        fx, fy = w * f / ha, h * f / va
        cx = float(pattern.get('horizontal_aperture_offset') or 0.0) * fx + w / 2
        cy = float(pattern.get('vertical_aperture_offset') or 0.0) * fy + h / 2
        return {'width': w, 'height': h, 'K': [fx, fy, cx, cy]}, []
    spawn = camera.get('spawn') or {}
    if spawn.get('projection_type', 'pinhole') != 'pinhole' or \
            not spawn.get('focal_length') or not spawn.get('horizontal_aperture'):
        return None, [f'camera spawn {spawn.get("projection_type")!r} without pinhole focal '
                      f'length and aperture: no image.camera, no field-of-view matching']
    w, h = int(camera['width']), int(camera['height'])
    block = {'width': w, 'height': h, 'focal_length': float(spawn['focal_length']),
             'horizontal_aperture': float(spawn['horizontal_aperture'])}
    notes = []
    va, square = spawn.get('vertical_aperture'), block['horizontal_aperture'] * h / w
    if va is not None and abs(float(va) - square) > 1e-6 * square:
        notes.append(f"camera vertical_aperture {va} ignored, as Isaac Lab's Camera does "
                     f'(square pixels: {square:.6g})')
    for key in ('horizontal_aperture_offset', 'vertical_aperture_offset'):
        if spawn.get(key):
            notes.append(f"camera {key} {spawn[key]} ignored, as Isaac Lab's Camera does "
                         f'(principal point at the image centre)')
    return block, notes


def image_spec(camera: Mapping, data_type: str, normalize: bool = True,
               report: Optional[ImportReport] = None) -> dict:
    """Card image section for an Isaac Lab camera cfg (layout fixed later from the ONNX)."""
    rgb = data_type == 'rgb'
    spec = {'data_type': 'rgb' if rgb else 'depth',
            'resize': [int(camera['width']), int(camera['height'])],
            'interpolation': 'area',
            'normalize': ('isaaclab' if normalize else 'none') if rgb else 'none',
            'layout': 'NHWC'}
    if not rgb:
        # Isaac Lab's 'depth' is distance_to_image_plane; the card names the convention.
        spec['depth_type'] = 'distance_to_camera' if data_type == 'distance_to_camera' else \
            'distance_to_image_plane'
    block, notes = camera_block(camera)
    if block is not None:
        spec['camera'] = block
    if report is not None:
        report.warnings.extend(notes)
    return spec


def image_clamp(spec: dict, limit: float) -> Optional[str]:
    """Fold rl_games' clamp of every observation to [-c, c] into an image spec; or say why not."""
    if spec['data_type'] == 'depth':
        # Depth is >= 0 once +inf is 0: the clamp is a largest depth.
        spec['max_depth'] = min(float(limit), spec.get('max_depth') or math.inf)
        return None
    top = 255.0 if spec['normalize'] == 'none' else 1.0     # isaaclab: within [-1, 1]
    if limit >= top:
        return None
    return (f'agent clip_observations {limit} clamps the image (values up to {top}); the card '
            f'cannot express that')


def translate(env: Mapping, agent: Optional[Mapping], joints: Sequence[str],
              report: ImportReport, joint_limits: Optional[Mapping] = None,
              name: str = 'isaaclab_policy', registry: Optional[Registry] = None) -> Translation:
    """Translate a manager-based env.yaml; everything untranslatable lands in the report."""
    tr = EnvTranslator(env, agent, joints, report, joint_limits, registry)
    action = tr.actions()
    terms, width, images = tr.observations()
    report.control_dt = control_dt(env)
    if report.control_dt is None:
        report.problem('control period', 'env.yaml lacks sim.dt or decimation')
    if any(t['name'] in BASE_TERMS for t in terms):
        report.warnings.append('base_ang_vel/projected_gravity come from the IMU topic: the '
                               'IMU frame must be aligned with the robot base')
    report.actuators = actuators(env, joints, report)
    return Translation(name=name, control_dt=report.control_dt, joint_names=tuple(joints),
                       default_joint_pos=tuple(tr.defaults), group=tr.vector_group or 'policy',
                       terms=tuple(terms), width=width, images=tuple(images), action=action,
                       action_width=tr.action_width, image_sensors=tuple(tr.image_sensors))
