"""
Manager-based env.yaml (+ agent.yaml) -> Translation, with Isaac Lab's semantics.

Observation groups fed to the actor (rsl_rl ``obs_groups['policy']``, default
``['policy']``) are read in declaration order; per term: func, params,
clip, scale, history_length (a group-level history_length overrides the
terms'), noise ignored. Joint selections are regexes over the robot's joints
in articulation order (``joint_names.py``). Actions: ``JointPositionAction``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence

from . import joint_names as jn
from .assemble import Translation
from .report import ActionLine, ImportReport, TermLine

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


def default_joint_pos(env: Mapping, joints: Sequence[str]) -> list:
    """Defaults from scene.robot.init_state.joint_pos (regex dict; unmatched joints 0)."""
    init = (((env.get('scene') or {}).get('robot') or {}).get('init_state') or {})
    return [float(v) for v in jn.per_joint(init.get('joint_pos') or {}, joints, 0.0,
                                           'scene.robot.init_state.joint_pos')]


class EnvTranslator:
    """Translate one manager-based env; problems go to the report, never raise for them."""

    def __init__(self, env: Mapping, agent: Optional[Mapping], joints: Sequence[str],
                 report: ImportReport, joint_limits: Optional[Mapping[str, tuple]] = None):
        self.env, self.agent, self.joints = env, agent, list(joints)
        self.report = report
        self.limits = dict(joint_limits or {})
        self.defaults = default_joint_pos(env, self.joints)
        robot = (env.get('scene') or {}).get('robot') or {}
        self.soft_factor = float(robot.get('soft_joint_pos_limit_factor') or 1.0)
        init_vel = (robot.get('init_state') or {}).get('joint_vel') or {}
        self.default_vel = jn.per_joint(init_vel, self.joints, 0.0,
                                        'scene.robot.init_state.joint_vel')
        self.action_width: Optional[int] = None

    # ------------------------------------------------------------------ actions
    def actions(self) -> Optional[dict]:
        """Return the card action section for the env's action terms (None if untranslatable)."""
        names, scale, offset, clip, width, ok = [], [], [], [], 0, True
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
            if cls != 'JointPositionAction' or not _is_core(module, ACTION_MODULES):
                self.report.problem(where, f'class {module}:{cls} is not supported (the card '
                                           f'maps JointPositionAction only)')
                self.report.actions.append(ActionLine(term_name, cls, tuple(joints)))
                ok = False
                if width is not None:
                    width = width + 1 if cls.startswith('Binary') else width + len(joints)
                continue
            if cfg.get('asset_name', 'robot') != 'robot':
                self.report.problem(where, f'asset {cfg.get("asset_name")!r} is not the robot')
                ok = False
                continue
            try:
                s, o, c = self._joint_position(cfg, joints, where)
            except jn.JointNameError as exc:
                self.report.problem(where, str(exc))
                ok, width = False, None
                continue
            self.report.actions.append(ActionLine(term_name, cls, tuple(joints), tuple(s),
                                                  tuple(o), tuple(c)))
            names += joints
            scale += s
            offset += o
            clip += c
            width = None if width is None else width + len(joints)
        self.action_width = width
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            self.report.problem('actions', f'joint(s) {dup} driven by more than one term')
            ok = False
        if not ok or not names:
            return None
        return self._action_section(names, scale, offset, clip)

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

    def _action_section(self, names: list, scale: list, offset: list, clip: list) -> dict:
        section = {'type': 'joint_position', 'joint_names': names, 'scale': scale,
                   'offset': offset, 'clip': None}
        given = [c for c in clip if c is not None]
        if len(given) == len(clip):
            section['clip'] = [list(c) for c in clip]
        elif given:
            self.report.problem('actions', 'a clip is configured for only some action joints; '
                                           'the card clips all joints or none')
        if clip_actions(self.agent) is not None:
            self.report.warnings.append(
                f'agent clip_actions {clip_actions(self.agent)} is carried as a target clip; '
                f'note last_action then observes the clipped raw action in training')
        return section

    # ------------------------------------------------------------------ observations
    def observations(self) -> tuple:
        """(vector terms, width or None, image groups) for the groups the actor sees."""
        obs = self.env.get('observations') or {}
        wanted = actor_groups(self.agent)
        for name, cfg in obs.items():
            if cfg is None:
                self.report.warnings.append(f'observation group {name!r} is disabled (null): '
                                            f'skipped')
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
            if len(group_terms) == 1 and _split(group_terms[0][1]['func'])[1] == 'image':
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
        if not _is_core(module, CORE_MODULES):
            reason = f'{module}:{func} is project-specific, not an Isaac Lab core term'
        elif cfg.get('modifiers'):
            reason = 'observation modifiers are not supported'
        elif history and not flatten:
            reason = 'flatten_history_dim false: the policy input must be flat'
        elif func in JOINT_TERMS:
            card_params, width, reason = self._joint_params(func, params, where)
        elif func in BASE_TERMS:
            width, reason = 3, self._robot_asset(params)
        elif func == 'generated_commands':
            card_name, reason = 'velocity_commands', self._command(params)
            width = 3 if reason is None else None
            card_params = {'command_name': params.get('command_name')}
        elif func in ('last_action', 'actions'):
            card_name, width = 'last_action', self.action_width
            if params.get('action_name') is not None:
                reason = 'last_action of a single action term (action_name) is not supported'
        else:
            reason = f'{func} is not supported at deployment'
        scale, clip = cfg.get('scale'), cfg.get('clip')
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

    def _command(self, params: Mapping) -> Optional[str]:
        name = params.get('command_name')
        cmd = (self.env.get('commands') or {}).get(name) or {}
        module, cls = _split(cmd.get('class_type'))
        if cls.endswith('VelocityCommand') and module.startswith(('isaaclab', 'omni.isaac.lab')):
            return None
        return (f'command {name!r} is {cls or "undefined"}: only base velocity commands '
                f'(geometry_msgs/Twist [vx, vy, wz]) are supported')

    def _image_group(self, group: str, term: Mapping, group_cfg: Mapping) -> Optional[tuple]:
        params = term.get('params') or {}
        sensor = (params.get('sensor_cfg') or {}).get('name', 'tiled_camera')
        data_type = params.get('data_type', 'rgb')
        camera = (self.env.get('scene') or {}).get(sensor) or {}
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
            spec = image_spec(camera, data_type, params.get('normalize', True))
            chw = (3 if data_type == 'rgb' else 1, int(camera['height']), int(camera['width']))
        self.report.terms.append(TermLine(group, 'image', f'scene.{sensor} {data_type}',
                                          None if chw is None else math.prod(chw), None, None,
                                          0, reason is None))
        if reason is not None:
            self.report.problem(f'term {group}.image', reason)
            return None
        return group, spec, chw


def soft_limits(limits: Sequence[float], factor: float) -> tuple:
    """Isaac Lab's soft joint limits: the hard range shrunk about its middle by factor."""
    lo, hi = float(limits[0]), float(limits[1])
    mid, half = (lo + hi) * 0.5, (hi - lo) * 0.5 * factor
    return (mid - half, mid + half)


def image_spec(camera: Mapping, data_type: str, normalize: bool = True) -> dict:
    """Card image section for an Isaac Lab camera cfg (layout fixed later from the ONNX)."""
    rgb = data_type == 'rgb'
    return {'data_type': 'rgb' if rgb else 'depth',
            'resize': [int(camera['width']), int(camera['height'])],
            'interpolation': 'area',
            'normalize': ('isaaclab' if normalize else 'none') if rgb else 'none',
            'layout': 'NHWC'}


def translate(env: Mapping, agent: Optional[Mapping], joints: Sequence[str],
              report: ImportReport, joint_limits: Optional[Mapping] = None,
              name: str = 'isaaclab_policy') -> Translation:
    """Translate a manager-based env.yaml; everything untranslatable lands in the report."""
    tr = EnvTranslator(env, agent, joints, report, joint_limits)
    action = tr.actions()
    terms, width, images = tr.observations()
    report.control_dt = control_dt(env)
    if report.control_dt is None:
        report.problem('control period', 'env.yaml lacks sim.dt or decimation')
    if any(t['name'] in BASE_TERMS for t in terms):
        report.warnings.append('base_ang_vel/projected_gravity come from the IMU topic: the '
                               'IMU frame must be aligned with the robot base')
    return Translation(name=name, control_dt=report.control_dt, joint_names=tuple(joints),
                       default_joint_pos=tuple(tr.defaults), group=tr.vector_group or 'policy',
                       terms=tuple(terms), width=width, images=tuple(images), action=action)
