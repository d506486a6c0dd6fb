"""
Direct-workflow envs (no observation manager): Isaac Lab's own camera tasks, or a template.

A direct env computes its observations in Python code the run files do not
record. For Isaac Lab's own camera tasks the code is known (``isaaclab_tasks``
in Isaac Lab 2.3), so the task is recognised from the fields its config class
writes into env.yaml and the card is written complete:

* ``Isaac-Cartpole-{RGB,Depth}-Camera-Direct-v0`` (``CartpoleCameraEnv``):
  ``_get_observations`` is the camera image NHWC, rgb /255 minus each image's
  per-channel mean, depth with +inf set to 0; ``_pre_physics_step`` +
  ``_apply_action`` apply ``action_scale x action`` as an effort on the cart joint.
* ``Isaac-Repose-Cube-Shadow-Vision-Direct-v0`` is recognised and refused: its
  observations hold the output of a CNN trained inside the env.

The RL wrapper's clamps (rl_games ``clip_observations`` / ``clip_actions``) are
part of what training fed the network and are folded into the card. Any other
direct env gets a template naming everything to fill in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import yaml

from . import joint_names as jn
from .env_yaml import clip_actions, clip_observations, control_dt, DEPTH_TYPES, image_clamp, \
    image_spec
from .report import ActionLine, ImportReport, TermLine

FILL = 'FILL_ME'


@dataclass(frozen=True)
class DirectTask:
    """One of Isaac Lab's direct camera tasks, as its env.yaml shows it."""

    name: str               # the gym ids
    env_class: str          # where its _get_observations lives (isaaclab_tasks)
    keys: tuple             # top-level fields of its cfg class that identify it
    refuse: Optional[str] = None    # why it cannot be deployed, if it cannot


CARTPOLE_CAMERA = DirectTask(
    'Isaac-Cartpole-RGB-Camera-Direct-v0 / Isaac-Cartpole-Depth-Camera-Direct-v0',
    'isaaclab_tasks.direct.cartpole.cartpole_camera_env:CartpoleCameraEnv',
    ('cart_dof_name', 'pole_dof_name', 'action_scale', 'max_cart_pos',
     'initial_pole_angle_range', 'tiled_camera', 'robot_cfg'))
SHADOW_HAND_VISION = DirectTask(
    'Isaac-Repose-Cube-Shadow-Vision-Direct-v0',
    'isaaclab_tasks.direct.shadow_hand.shadow_hand_vision_env:ShadowHandVisionEnv',
    ('feature_extractor', 'tiled_camera'),
    refuse='its observations hold keypoints from a CNN (FeatureExtractor) trained inside the '
           'env during RL; that network is not part of the exported policy')
TASKS = (CARTPOLE_CAMERA, SHADOW_HAND_VISION)
# The action term the cartpole card carries: an effort, which no built-in term commands.
EFFORT_TERM = 'joint_effort'


def is_direct(env: Mapping) -> bool:
    """Tell whether env is a direct-workflow env.yaml (no observations section)."""
    return env.get('observations') is None and 'observation_space' in env


def recognise(env: Mapping) -> Optional[DirectTask]:
    """Return the Isaac Lab direct camera task this env.yaml was written by, if any."""
    return next((t for t in TASKS if all(k in env for k in t.keys)), None)


def cartpole_card(env: Mapping, agent: Optional[Mapping], report: ImportReport,
                  joint_names: Optional[Sequence[str]] = None,
                  name: str = 'isaaclab_policy') -> Optional[dict]:
    """
    Complete card data for CartpoleCameraEnv (problems go to the report; None if unusable).

    ``joint_names`` is the robot's articulation order; by default the two joints
    of Isaac Lab's cartpole asset, prismatic cart first.
    """
    report.control_dt = control_dt(env)
    camera = env.get('tiled_camera') or {}
    types = list(camera.get('data_types') or [])
    cart, pole = env.get('cart_dof_name'), env.get('pole_dof_name')
    joints = list(joint_names or (cart, pole))
    missing = [j for j in (cart, pole) if j not in joints]
    if missing:
        report.problem('joint_names', f'the task drives {missing} (cart_dof_name, '
                                      f'pole_dof_name), not in the joints given {joints}')
    # CartpoleCameraEnv.__init__ accepts exactly one image type; "rgb" wins, else "depth".
    data_type = 'rgb' if 'rgb' in types else ('depth' if 'depth' in types else None)
    if len(types) != 1 or data_type is None or not camera.get('width') or \
            not camera.get('height'):
        report.problem('tiled_camera', f'expected one data type, rgb or depth, and a size; '
                                       f'found data_types {types}')
    if report.control_dt is None:
        report.problem('control period', 'env.yaml lacks sim.dt or decimation')
    channels = 3 if data_type == 'rgb' else 1
    space = env.get('observation_space')
    if report.ok and (space != [camera['height'], camera['width'], channels] or
                      env.get('action_space') not in (1, [1])):
        # cartpole_showcase's variants (Dict/Tuple observations, Discrete actions) share the
        # cfg fields but map spaces differently in their own env code.
        report.problem('spaces', f'observation_space {space!r}, action_space '
                                 f'{env.get("action_space")!r}: only the image Box [H, W, C] '
                                 f'and one continuous action of CartpoleCameraEnv are known')
    if not report.ok:
        return None
    image = image_spec(camera, data_type, True, report)
    limit = clip_observations(agent)
    problem = None if limit is None else image_clamp(image, limit)
    if problem is not None:
        report.problem('agent clip_observations', problem)
    shape = [1, int(camera['height']), int(camera['width']), channels]
    report.terms.append(TermLine('policy', 'image', f'tiled_camera {types[0]}',
                                 shape[1] * shape[2] * shape[3]))
    scale = float(env.get('action_scale', 1.0))
    action = {'type': EFFORT_TERM, 'name': 'cart', 'joint_names': [cart], 'scale': scale,
              'offset': 0.0}
    raw_limit = clip_actions(agent)
    if raw_limit is not None:
        action['clip'] = [[-abs(scale) * raw_limit, abs(scale) * raw_limit]]
    clip = (tuple(action['clip'][0]),) if 'clip' in action else (None,)
    report.actions.append(ActionLine('cart', 'CartpoleCameraEnv._apply_action (effort)',
                                     (cart,), (scale,), (0.0,), clip))
    init = ((env.get('robot_cfg') or {}).get('init_state') or {}).get('joint_pos') or {}
    return {
        'format_version': 1,
        'name': name,
        'control_dt': report.control_dt,
        'joint_names': joints,
        'default_joint_pos': [float(v) for v in jn.per_joint(
            init, joints, 0.0, 'robot_cfg.init_state.joint_pos')],
        'inputs': [{'name': 'obs', 'shape': shape, 'dtype': 'float32', 'group': 'policy'}],
        'action_output': 'actions',
        'observations': {'policy': {'terms': [{'name': 'image'}]}},
        'image': image,
        'action': {'terms': [action]},
    }


def card_text(data: dict, task: DirectTask, report: ImportReport) -> str:
    """Card YAML for a recognised task, with a header saying what the node cannot do."""
    header = [f'# Policy card of Isaac Lab task {task.name} ({task.env_class}),',
              '# written complete by vision_policy_import from env.yaml.',
              f'# The action is a joint EFFORT ({EFFORT_TERM}: scale x action on the cart '
              f'joint):',
              '# no built-in action term commands efforts (JointTrajectory carries positions), '
              'so',
              '# the node refuses this card at configure until an effort term is registered.',
              *[f'# warning: {w}' for w in report.warnings]]
    return '\n'.join(header) + '\n' + yaml.safe_dump(data, sort_keys=False,
                                                     default_flow_style=None)


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
    clip_obs = clip_observations(agent)
    if clip_obs is not None:
        header.append(f'#   - the agent clips observations to [-{clip_obs}, {clip_obs}]: add '
                      f'clip to the terms')
    return '\n'.join(header) + '\n' + yaml.safe_dump(card, sort_keys=False,
                                                     default_flow_style=None)
