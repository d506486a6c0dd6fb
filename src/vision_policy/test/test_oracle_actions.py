"""
Action parity with Isaac Lab's own action terms, tick by tick (isaaclab_oracle.py).

Isaac Lab 2.3's real ``ActionManager`` runs each action term's
``process_actions`` then ``apply_actions`` on the synthetic articulation; the
targets it writes (``joint_pos_target`` / ``joint_vel_target``) are compared with
this workspace's ``ActionMapper.map`` of the same raw network output, over 120
ticks of random raw actions (some far outside any clip) and joint positions, with
episode resets (the moving-average restart).
"""

import isaaclab_oracle as oracle
import numpy as np
import pytest
from vision_policy.action import ActionMapper
from vision_policy.card import card_from_dict
from vision_policy.registry import ACTION_GROUP, load_registry

il = oracle.load_or_skip()
torch = pytest.importorskip('torch')
cfgs = il.actions_cfg

JOINTS = ['lf_hip', 'lf_knee', 'rf_hip', 'rf_knee', 'arm_shoulder', 'arm_elbow', 'finger_a',
          'finger_b']
DEFAULTS = [0.1, -0.7, -0.1, 0.7, 0.0, 1.2, 0.02, 0.02]
SOFT_LIMITS = [(-0.8, 0.9), (-2.1, 0.1), (-0.9, 0.8), (-0.1, 2.1), (-3.0, 3.0), (0.0, 2.5),
               (0.0, 0.04), (0.0, 0.04)]
LEGS = ['lf_hip', 'lf_knee', 'rf_hip', 'rf_knee']
ARM = ['arm_elbow', 'arm_shoulder']          # not articulation order (preserve_order)
FINGERS = ['finger_a', 'finger_b']
TICKS = 120
RESETS = (0, 41, 42, 80)


def limits(names):
    """Return the soft limits of names, as a card param."""
    return [list(SOFT_LIMITS[JOINTS.index(n)]) for n in names]


def defaults(names):
    """Return the default positions of names."""
    return [DEFAULTS[JOINTS.index(n)] for n in names]


def run(il_terms, card_terms, seed=0):
    """Max |Isaac Lab target - workspace target| over the ticks, absolute and scaled."""
    rng = np.random.default_rng(seed)
    env = oracle.SyntheticEnv(il, JOINTS, DEFAULTS, SOFT_LIMITS)
    env.set_actions(il_terms)
    card = card_from_dict({
        'control_dt': 0.02, 'joint_names': JOINTS, 'default_joint_pos': DEFAULTS,
        'inputs': [{'name': 'obs', 'shape': [1, len(JOINTS)], 'group': 'policy'}],
        'observations': {'policy': {'terms': [{'name': 'joint_pos'}]}},
        'action': {'terms': card_terms}})
    mapper = ActionMapper(card)
    width = env.action_manager.total_action_dim
    assert mapper.width == width, 'raw widths differ'
    order = [JOINTS.index(n) for n in mapper.joint_names]
    velocity = [i for i, n in enumerate(mapper.joint_names) if n in mapper.velocity_joints]
    position = [i for i in range(len(order)) if i not in velocity]
    data = env.robot.data
    worst, worst_rel = 0.0, 0.0
    for tick in range(TICKS):
        pos = rng.uniform(-1.0, 1.0, len(JOINTS)).astype(np.float32)
        data.joint_pos[0] = torch.from_numpy(pos)
        if tick in RESETS:
            env.reset()
            mapper.reset()
        raw = rng.normal(0.0, 1.5, width).astype(np.float32)
        raw[rng.random(width) < 0.1] *= 20.0
        env.action_manager.process_action(torch.from_numpy(raw)[None])
        env.action_manager.apply_action()
        got = mapper.map(raw, pos)
        expected_pos = oracle.to_numpy(data.joint_pos_target)[order]
        expected_vel = oracle.to_numpy(data.joint_vel_target)[order]
        for expected, index in ((expected_pos, position), (expected_vel, velocity)):
            worst = max(worst, oracle.max_abs_diff(expected[index], got[index]))
            worst_rel = max(worst_rel, oracle.max_rel_diff(expected[index], got[index]))
        # last_action observes the raw output, before any clip or mapping (test_oracle_obs..).
        assert oracle.max_abs_diff(oracle.to_numpy(env.action_manager.action), raw) == 0.0
    return worst, worst_rel


CASES = [
    ('joint_position', 'JointPositionAction',
     {'legs': cfgs.JointPositionActionCfg(asset_name='robot', joint_names=['.*_hip', '.*_knee'],
                                          scale=0.25, use_default_offset=True)},
     [{'type': 'joint_position', 'joint_names': LEGS, 'scale': 0.25, 'offset': 'default'}],
     'scale, default offset; regex joints in articulation order'),
    ('joint_position (clip, per-joint scale/offset, preserve_order)', 'JointPositionAction',
     {'arm': cfgs.JointPositionActionCfg(
         asset_name='robot', joint_names=ARM, preserve_order=True,
         scale={'arm_elbow': 0.5, 'arm_shoulder': 2.0}, offset={'arm_.*': 0.3},
         use_default_offset=False,   # True (the default) would override offset
         clip={'arm_elbow': (-1.0, 1.5), 'arm_shoulder': (-0.5, 0.5)})},
     [{'type': 'joint_position', 'joint_names': ARM, 'scale': [0.5, 2.0], 'offset': 0.3,
       'clip': [[-1.0, 1.5], [-0.5, 0.5]]}],
     'clip after scale and offset, on the target'),
    ('relative_joint_position', 'RelativeJointPositionAction',
     {'arm': cfgs.RelativeJointPositionActionCfg(asset_name='robot', joint_names=ARM,
                                                 preserve_order=True, scale=0.1,
                                                 clip={'.*': (-0.05, 0.05)})},
     [{'type': 'relative_joint_position', 'joint_names': ARM, 'scale': 0.1, 'offset': 0.0,
       'clip': [[-0.05, 0.05]] * 2}],
     'first physics substep: Isaac Lab re-adds the moving joint position at every substep of '
     'the decimation, the robot gets one target per policy tick'),
    ('joint_velocity', 'JointVelocityAction',
     {'legs': cfgs.JointVelocityActionCfg(asset_name='robot', joint_names=LEGS, scale=3.0)},
     [{'type': 'joint_velocity', 'joint_names': LEGS, 'scale': 3.0, 'offset': 0.0}],
     'velocity targets (joint_vel_target)'),
    ('binary_joint_position', 'BinaryJointPositionAction',
     {'gripper': cfgs.BinaryJointPositionActionCfg(
         asset_name='robot', joint_names=['finger_.*'],
         open_command_expr={'finger_.*': 0.04}, close_command_expr={'finger_a': 0.0,
                                                                    'finger_b': 0.001})},
     [{'type': 'binary_joint_position', 'joint_names': FINGERS, 'open': 0.04,
       'close': [0.0, 0.001]}],
     'one raw value; < 0 closes'),
    ('binary_joint_position (names out of order)', 'BinaryJointPositionAction',
     {'gripper': cfgs.BinaryJointPositionActionCfg(
         asset_name='robot', joint_names=['finger_b', 'finger_a'],
         open_command_expr={'finger_a': 0.04, 'finger_b': 0.03},
         close_command_expr={'finger_.*': 0.0})},
     [{'type': 'binary_joint_position', 'joint_names': FINGERS, 'open': [0.04, 0.03],
       'close': 0.0}],
     'binary terms resolve joints in articulation order (no preserve_order)'),
    ('abs_binary_joint_position', 'AbsBinaryJointPositionAction',
     {'gripper': cfgs.AbsBinaryJointPositionActionCfg(
         asset_name='robot', joint_names=['finger_.*'], threshold=0.3, positive_threshold=False,
         open_command_expr={'finger_.*': 0.04}, close_command_expr={'finger_.*': 0.0})},
     [{'type': 'abs_binary_joint_position', 'joint_names': FINGERS, 'open': 0.04, 'close': 0.0,
       'threshold': 0.3, 'positive_threshold': False}],
     'opens below the threshold (positive_threshold false)'),
    ('abs_binary_joint_position (positive)', 'AbsBinaryJointPositionAction',
     {'gripper': cfgs.AbsBinaryJointPositionActionCfg(
         asset_name='robot', joint_names=FINGERS, open_command_expr={'finger_.*': 0.04},
         close_command_expr={'finger_.*': 0.0})},
     [{'type': 'abs_binary_joint_position', 'joint_names': FINGERS, 'open': 0.04,
       'close': 0.0}], 'default threshold 0.5, opens above it'),
    ('joint_position_to_limits', 'JointPositionToLimitsAction',
     {'arm': cfgs.JointPositionToLimitsActionCfg(asset_name='robot', joint_names=ARM,
                                                 preserve_order=True, scale=0.8)},
     [{'type': 'joint_position_to_limits', 'joint_names': ARM, 'scale': 0.8,
       'soft_joint_pos_limits': limits(ARM)}],
     '[-1, 1] -> soft joint limits'),
    ('joint_position_to_limits (clip)', 'JointPositionToLimitsAction',
     {'arm': cfgs.JointPositionToLimitsActionCfg(asset_name='robot', joint_names=ARM,
                                                 preserve_order=True, scale=0.8,
                                                 clip={'.*': (-0.5, 0.7)})},
     [{'type': 'joint_position_to_limits', 'joint_names': ARM, 'scale': 0.8,
       'soft_joint_pos_limits': limits(ARM),
       'clip': [[lo + 0.5 * (v + 1.0) * (hi - lo) for v in (-0.5, 0.7)]
                for lo, hi in limits(ARM)]}],
     'the card clip is the target range: Isaac Lab clip of raw x scale, rescaled'),
    ('joint_position_to_limits (clip, no rescale)', 'JointPositionToLimitsAction',
     {'arm': cfgs.JointPositionToLimitsActionCfg(asset_name='robot', joint_names=ARM,
                                                 preserve_order=True, scale=0.8,
                                                 rescale_to_limits=False,
                                                 clip={'.*': (-0.7, 0.6)})},
     [{'type': 'joint_position_to_limits', 'joint_names': ARM, 'scale': 0.8,
       'rescale_to_limits': False, 'clip': [[-0.7, 0.6]] * 2}],
     ''),
    ('ema_joint_position_to_limits', 'EMAJointPositionToLimitsAction',
     {'legs': cfgs.EMAJointPositionToLimitsActionCfg(
         asset_name='robot', joint_names=LEGS, scale=1.0,
         alpha={'lf_.*': 0.3, 'rf_.*': 0.9})},
     [{'type': 'ema_joint_position_to_limits', 'joint_names': LEGS, 'scale': 1.0,
       'alpha': [0.3, 0.3, 0.9, 0.9], 'soft_joint_pos_limits': limits(LEGS)}],
     'moving average restarts from the joint positions at each reset'),
    ('two terms + zero-width hold_default', 'ActionManager (JointPosition + Binary)',
     {'arm': cfgs.JointPositionActionCfg(asset_name='robot', joint_names=ARM,
                                         preserve_order=True, scale=0.5,
                                         use_default_offset=True),
      'gripper': cfgs.BinaryJointPositionActionCfg(
          asset_name='robot', joint_names=FINGERS, open_command_expr={'.*': 0.04},
          close_command_expr={'.*': 0.0})},
     [{'type': 'joint_position', 'joint_names': ARM, 'scale': 0.5, 'offset': 'default'},
      {'type': 'binary_joint_position', 'joint_names': FINGERS, 'open': 0.04, 'close': 0.0},
      {'type': 'hold_default', 'joint_names': LEGS}],
     'raw split in term order; Isaac Lab leaves undriven joints at their targets (here the '
     'legs, held at default by the zero-width term: checked below)'),
]


def test_every_builtin_action_is_covered():
    registry = load_registry()
    builtin = {name for group, name in registry.builtin if group == ACTION_GROUP}
    covered = {t['type'] for case in CASES for t in case[3]}
    assert sorted(builtin - covered) == [], 'built-in action terms without an oracle case'


@pytest.mark.parametrize('row, cls, il_terms, card_terms, note', CASES,
                         ids=[c[0] for c in CASES])
def test_action_matches_isaaclab(row, cls, il_terms, card_terms, note):
    holds = [t for t in card_terms if t['type'] == 'hold_default']
    worst, rel = run(il_terms, [t for t in card_terms if t not in holds], seed=len(row))
    oracle.report(row, f'{cls}.process_actions + apply_actions', worst, note, rel)
    # Targets are float64 here, float32 in Isaac Lab: compare in float32 steps of the value.
    assert rel <= oracle.TOLERANCE
    if holds:
        mapper = ActionMapper(card_from_dict({
            'control_dt': 0.02, 'joint_names': JOINTS, 'default_joint_pos': DEFAULTS,
            'inputs': [{'name': 'obs', 'shape': [1, len(JOINTS)], 'group': 'policy'}],
            'observations': {'policy': {'terms': [{'name': 'joint_pos'}]}},
            'action': {'terms': card_terms}}))
        targets = mapper.map(np.zeros(mapper.width, np.float32), np.zeros(len(JOINTS)))
        held = [mapper.joint_names.index(n) for n in LEGS]
        assert targets[held].tolist() == defaults(LEGS)
