"""
Direct-workflow envs (no observation manager): a card template from what env.yaml shows.

A direct env computes its observations in Python code the run files do not
record. Only the camera (top-level ``tiled_camera``), the control period and
the action size are known; the template names everything else to fill in.
"""

from __future__ import annotations

from typing import Mapping, Optional

import yaml

from .env_yaml import clip_actions, control_dt, DEPTH_TYPES, image_spec
from .report import ImportReport, TermLine

FILL = 'FILL_ME'


def is_direct(env: Mapping) -> bool:
    """Tell whether env is a direct-workflow env.yaml (no observations section)."""
    return env.get('observations') is None and 'observation_space' in env


def template(env: Mapping, agent: Optional[Mapping], report: ImportReport) -> str:
    """Card template YAML text for a direct env; the report lists what must be filled in."""
    report.control_dt = control_dt(env)
    camera = env.get('tiled_camera') or {}
    types = list(camera.get('data_types') or [])
    image, shape = None, None
    if camera.get('width') and camera.get('height') and types:
        data_type = 'rgb' if types[0] == 'rgb' else (
            'depth' if types[0] in DEPTH_TYPES else None)
        if data_type is not None:
            image = image_spec(camera, types[0])
            channels = 3 if data_type == 'rgb' else 1
            shape = [1, int(camera['height']), int(camera['width']), channels]
            report.terms.append(TermLine('policy', 'image', f'tiled_camera {types[0]}',
                                         channels * camera['height'] * camera['width']))
    if image is None:
        report.problem('tiled_camera', f'no usable camera config (data_types {types})')
    report.problem('observations', 'direct env: observations are computed in the env code '
                   '(_get_observations), not recorded in env.yaml; check the image '
                   'normalisation and layout, and add any state terms')
    report.problem('joint_names', 'direct env: give the robot joints in articulation order')
    report.problem('action', f'direct env: action_space {env.get("action_space")}, '
                   f'action_scale {env.get("action_scale")} are applied by env code '
                   f'(_apply_action); the card maps joint position targets only')
    report.problem('model', 'no exported ONNX in the run folder: export the policy and '
                   'fill in the input name and shape')
    card = {
        'format_version': 1,
        'name': f'{FILL} (direct env template)',
        'control_dt': report.control_dt if report.control_dt is not None else FILL,
        'joint_names': [FILL],
        'default_joint_pos': [FILL],
        'inputs': [{'name': FILL, 'shape': shape or FILL, 'dtype': 'float32',
                    'group': 'policy'}],
        'action_output': FILL,
        'observations': {'policy': {'terms': [{'name': 'image'}]}},
        'image': image or FILL,
        'action': {'type': 'joint_position', 'joint_names': [FILL], 'scale': FILL,
                   'offset': 'default', 'clip': FILL},
    }
    limit = clip_actions(agent)
    header = [
        '# Policy card TEMPLATE from a direct-workflow Isaac Lab env: not loadable as is.',
        f'# Replace every {FILL}. What the run files could not tell:',
        *[f'#   - {p.what}: {p.reason}' for p in report.problems],
    ]
    if limit is not None:
        header.append(f'#   - the agent clips raw actions to [-{limit}, {limit}]: fold this '
                      f'into action.clip')
    clip_obs = (((agent or {}).get('params') or {}).get('env') or {}).get('clip_observations')
    if clip_obs is not None:
        header.append(f'#   - the agent clips observations to [-{clip_obs}, {clip_obs}]: add '
                      f'clip to the terms')
    return '\n'.join(header) + '\n' + yaml.safe_dump(card, sort_keys=False,
                                                     default_flow_style=None)
