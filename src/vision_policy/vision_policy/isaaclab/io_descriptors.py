"""
IO_descriptors.yaml (Isaac Lab's ``export_io_descriptors``) -> Translation.

The descriptors already carry resolved joint names in articulation order,
per-term shapes and the action scale/offset per joint. Older exports lack
``history_length``/``flatten_history_dim`` in a term's ``overloads``; then the
history is unknown and ``history_recorded`` is False.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

from .assemble import Translation
from .env_yaml import BASE_TERMS, CORE_MODULES, JOINT_TERMS, soft_limits
from .report import ActionLine, ImportReport, TermLine

JOINT_POSITION_ACTION = 'isaaclab.envs.mdp.actions.joint_actions.JointPositionAction'


class DescriptorError(ValueError):
    """IO_descriptors.yaml lacks a field the import needs; the message names it."""


def _need(data: Mapping, key: str, where: str) -> Any:
    if not isinstance(data, Mapping) or data.get(key) is None:
        raise DescriptorError(f'{where}: field {key!r} is missing')
    return data[key]


def _per_joint(value: Any, n: int, what: str) -> list:
    if value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)] * n
    if len(value) != n:
        raise DescriptorError(f'{what}: expected 1 or {n} values, found {len(value)}')
    return [float(v) for v in value]


def control_dt(data: Mapping) -> Optional[float]:
    """physics_dt x decimation (scene.dt in the descriptors is that product already)."""
    scene = data.get('scene') or {}
    if scene.get('physics_dt') and scene.get('decimation'):
        return float(scene['physics_dt']) * int(scene['decimation'])
    return float(scene['dt']) if scene.get('dt') else None


def history_recorded(data: Mapping) -> bool:
    """Tell whether every policy term records its history_length (newer exports)."""
    terms = (data.get('observations') or {}).get('policy') or []
    return all('history_length' in (t.get('overloads') or {}) for t in terms)


def translate(data: Mapping, report: ImportReport, name: str = 'isaaclab_policy',
              history_length: Optional[int] = None) -> Translation:
    """Translate IO descriptors; history_length, when given, applies to every term."""
    robot = _need(_need(data, 'articulations', 'IO_descriptors'), 'robot', 'articulations')
    joints = [str(j) for j in _need(robot, 'joint_names', 'articulations.robot')]
    defaults = _per_joint(robot.get('default_joint_pos'), len(joints),
                          'articulations.robot.default_joint_pos') or [0.0] * len(joints)
    limits = dict(zip(joints, robot.get('default_joint_pos_limits') or []))
    action = _actions(data, report)
    action_width = sum(len(a.joints) for a in report.actions) if action else None
    groups = _need(data, 'observations', 'IO_descriptors')
    for group in groups:
        if group != 'policy':
            report.warnings.append(f'observation group {group!r} does not feed the actor: '
                                   f'skipped')
    terms, width = [], 0
    for i, term in enumerate(_need(groups, 'policy', 'observations') or []):
        card_term, total = _term(term, joints, limits, action_width, history_length, report,
                                 f'observations.policy[{i}]')
        if card_term is not None:
            terms.append(card_term)
        width = None if width is None or total is None else width + total
    report.control_dt = control_dt(data)
    if report.control_dt is None:
        report.problem('control period', 'IO descriptors lack scene.dt / decimation')
    return Translation(name=name, control_dt=report.control_dt, joint_names=tuple(joints),
                       default_joint_pos=tuple(defaults), group='policy', terms=tuple(terms),
                       width=width, action=action)


def _actions(data: Mapping, report: ImportReport) -> Optional[dict]:
    names, scale, offset, clip, ok = [], [], [], [], True
    for i, act in enumerate(_need(data, 'actions', 'IO_descriptors')):
        where = f'actions[{i}] {act.get("name")!r}'
        joints = [str(j) for j in act.get('joint_names') or []]
        path = str(act.get('full_path'))
        report.actions.append(ActionLine(str(act.get('name')), path.rsplit('.', 1)[-1],
                                         tuple(joints)))
        if path != JOINT_POSITION_ACTION:
            report.problem(where, f'{path} is not supported (JointPositionAction only)')
            ok = False
            continue
        n = len(joints)
        s = _per_joint(act.get('scale', 1.0), n, f'{where}.scale') or [1.0] * n
        o = _per_joint(act.get('offset', 0.0), n, f'{where}.offset') or [0.0] * n
        c = act.get('clip')
        report.actions[-1] = ActionLine(str(act.get('name')), 'JointPositionAction',
                                        tuple(joints), tuple(s), tuple(o),
                                        None if c is None else tuple(tuple(x) for x in c))
        names += joints
        scale += s
        offset += o
        clip += [None] * n if c is None else [list(map(float, x)) for x in c]
    if not ok or not names:
        return None
    given = [c for c in clip if c is not None]
    if given and len(given) != len(clip):
        report.problem('actions', 'a clip is given for only some action joints')
        return None
    return {'type': 'joint_position', 'joint_names': names, 'scale': scale,
            'offset': offset, 'clip': clip if given else None}


def _term(term: Mapping, joints: list, limits: Mapping, action_width: Optional[int],
          history_length: Optional[int], report: ImportReport, where: str) -> tuple:
    path = str(term.get('full_path'))
    module, _, func = path.rpartition('.')
    over = term.get('overloads') or {}
    history = history_length if history_length is not None else int(
        over.get('history_length') or 0)
    step = math.prod(int(d) for d in term.get('shape') or [0])
    card, reason, params = {'name': func}, None, {}
    if module not in CORE_MODULES:
        reason = f'{path} is project-specific, not an Isaac Lab core term'
    elif not over.get('flatten_history_dim', True) and history:
        reason = 'flatten_history_dim false: the policy input must be flat'
    elif func in JOINT_TERMS:
        names = [str(j) for j in term.get('joint_names') or joints]
        if names != joints:
            params['joint_names'] = names
        if func == 'joint_pos_limit_normalized':
            if not all(n in limits for n in names):
                reason = 'joint limits missing in articulations.robot'
            else:
                params['soft_joint_pos_limits'] = [list(soft_limits(limits[n], 1.0))
                                                   for n in names]
                report.warnings.append('joint_pos_limit_normalized: the descriptors give hard '
                                       'limits; soft_joint_pos_limit_factor 1.0 assumed')
    elif func in BASE_TERMS:
        pass
    elif func == 'generated_commands' and step == 3:
        card['name'] = 'velocity_commands'
        report.warnings.append('generated_commands (3 values) read as a base velocity command '
                               '[vx, vy, wz] from geometry_msgs/Twist')
    elif func in ('last_action', 'actions'):
        card['name'] = 'last_action'
        if action_width is not None and step != action_width:
            reason = f'shape {step} differs from the action width {action_width}'
    else:
        reason = f'{func} is not supported at deployment'
    total = step * max(history, 1)
    report.terms.append(TermLine('policy', str(term.get('name', func)), path, total,
                                 over.get('scale'), over.get('clip'), history, reason is None))
    if reason is not None:
        report.problem(where, reason)
        return None, total
    if over.get('scale') is not None:
        scale = over['scale']
        card['scale'] = [float(v) for v in scale] if isinstance(scale, list) else float(scale)
    if over.get('clip') is not None:
        card['clip'] = [float(over['clip'][0]), float(over['clip'][1])]
    if history:
        card['history_length'] = history
    if params:
        card['params'] = params
    return card, total
