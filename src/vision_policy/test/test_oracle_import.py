"""
The importer on env.yaml files written the way Isaac Lab writes them, for every action term.

Isaac Lab's ``train.py`` dumps ``params/env.yaml`` as ``yaml.dump(class_to_dict(cfg))``;
here the same two calls write one from Isaac Lab's own cfg classes: an observation
group with every core term the importer maps, and each action term of
test_oracle_actions.py, with and without the rsl_rl wrapper's ``clip_actions``.
``vision_policy_import``'s translation of that file then runs against Isaac Lab's
managers built from the very cfg objects, inside ``RslRlVecEnvWrapper.step``.
"""

import types

import isaaclab_oracle as oracle
import numpy as np
import pytest
from test_oracle_actions import CASES as ACTION_CASES, DEFAULTS, JOINTS, SOFT_LIMITS
from test_oracle_agent import run, wrappers
from test_oracle_fixtures import from_env_dict
from vision_policy.card import card_from_dict
from vision_policy.image import ImagePipeline, view_image
from vision_policy.isaaclab import env_yaml as translator
from vision_policy.isaaclab.report import ImportReport
from vision_policy.isaaclab.yaml_loader import load_text
import yaml

il = oracle.load_or_skip()
torch = pytest.importorskip('torch')
from isaaclab.utils import class_to_dict  # noqa: E402,I100 (importable after load())

HARD_LIMITS = dict(zip(JOINTS, SOFT_LIMITS))      # the importer's --urdf limits
COMMANDS = 'isaaclab.envs.mdp.commands.'
KNEES_ARM = ['.*_knee', 'arm_.*']
# Regexes as a robot cfg writes them (arm_shoulder matches none: 0).
INIT_JOINT_POS = {'lf_hip': 0.1, 'lf_knee': -0.7, 'rf_hip': -0.1, 'rf_knee': 0.7,
                  'arm_elbow': 1.2, 'finger_.*': 0.02}


def observation_terms():
    """Every core observation term the importer maps, with scale, clip and history."""
    robot = il.SceneEntityCfg

    def term(func, **kwargs):
        return il.ObservationTermCfg(func=func, **kwargs)
    return {
        'base_lin_vel': term(il.mdp.base_lin_vel, scale=2.0),
        'base_ang_vel': term(il.mdp.base_ang_vel, scale=0.25, clip=(-0.3, 0.3)),
        'projected_gravity': term(il.mdp.projected_gravity),
        'velocity_commands': term(il.mdp.generated_commands, scale=(2.0, 2.0, 0.25),
                                  params={'command_name': 'base_velocity'}),
        'joint_pos': term(il.mdp.joint_pos_rel, history_length=3,
                          params={'asset_cfg': robot('robot', joint_names=KNEES_ARM)}),
        'joint_vel': term(il.mdp.joint_vel_rel, scale=0.05),
        'limits': term(il.mdp.joint_pos_limit_normalized, params={'asset_cfg': robot(
            'robot', joint_names=['arm_elbow', 'lf_.*'], preserve_order=True)}),
        'absolute': term(il.mdp.joint_pos, clip=(-1.0, 1.0)),
        'actions': term(il.mdp.last_action, clip=(-3.0, 3.0)),
        'height_scan': term(il.mdp.height_scan, clip=(-1.0, 1.0), params={
            'sensor_cfg': robot('height_scanner'), 'offset': 0.4}),
        'ee_pose': term(il.mdp.generated_commands, params={'command_name': 'ee_pose'}),
        'imu_quat': term(il.mdp.imu_orientation),
        'root_quat': term(il.mdp.root_quat_w, params={'make_quat_unique': True}),
        'imu_acc': term(il.mdp.imu_lin_acc, scale=0.1),
        'height': term(il.mdp.base_pos_z),
        'time': term(il.mdp.current_time_s),
        'time_left': term(il.mdp.remaining_time_s),
        # Regex lists out of articulation order, with and without preserve_order.
        'legs_in_order': term(il.mdp.joint_vel, params={'asset_cfg': robot(
            'robot', joint_names=['rf_.*', 'lf_.*'], preserve_order=True)}),
        'legs': term(il.mdp.joint_pos_rel, params={'asset_cfg': robot(
            'robot', joint_names=['rf_.*', 'lf_.*'])}),
    }


def height_scanner():
    """Isaac Lab's rough-terrain height scanner cfg, with a grid ordered y fastest."""
    from isaaclab.sensors import RayCasterCfg
    return RayCasterCfg(prim_path='{ENV_REGEX_NS}/Robot/base', ray_alignment='yaw',
                        offset=RayCasterCfg.OffsetCfg(pos=(0.0, 0.0, 20.0)),
                        pattern_cfg=il.patterns.GridPatternCfg(resolution=0.1, size=[0.8, 0.5],
                                                               ordering='yx'),
                        mesh_prim_paths=['/World/ground'])


def env_yaml(actions):
    """Write env.yaml text as Isaac Lab's dump_yaml does, for these observation/action cfgs."""
    env = {
        'sim': {'dt': 0.005}, 'decimation': 4, 'episode_length_s': 20.0,
        'scene': {'robot': {'init_state': {'joint_pos': INIT_JOINT_POS,
                                           'joint_vel': {'.*': 0.0}},
                            'soft_joint_pos_limit_factor': 0.9},
                  'height_scanner': class_to_dict(height_scanner())},
        'observations': {'policy': class_to_dict(oracle.group_cfg(il, observation_terms()))},
        'actions': {name: class_to_dict(cfg) for name, cfg in actions.items()},
        'commands': {
            'base_velocity': {'class_type': COMMANDS + 'velocity_command:UniformVelocityCommand'},
            'ee_pose': {'class_type': COMMANDS + 'pose_command:UniformPoseCommand',
                        'make_quat_unique': True}},
    }
    return yaml.dump(env)


CASES = [(row, terms) for row, _, terms, card, _ in ACTION_CASES
         if all(t['type'] != 'hold_default' for t in card)]


@pytest.mark.parametrize('clip_actions', [None, 1.0])
@pytest.mark.parametrize('row, actions', CASES, ids=[c[0] for c in CASES])
def test_imported_card_matches_isaaclab(row, actions, clip_actions):
    env = load_text(env_yaml(actions), 'env.yaml')
    rig = from_env_dict(env, {'clip_actions': clip_actions}, JOINTS, HARD_LIMITS)
    assert rig.defaults == pytest.approx(DEFAULTS)      # as Isaac Lab resolves init_state
    assert len(rig.compared) == len(observation_terms())
    obs, act = run(rig, 'rsl_rl', clip_actions)
    label = f'import {row}' + ('' if clip_actions is None else ', clip_actions 1')
    oracle.report(f'{label}: observation (all core terms)',
                  'ObservationManager + RslRlVecEnvWrapper.step', obs, 'env.yaml via dump')
    oracle.report(f'{label}: targets', 'ActionManager + RslRlVecEnvWrapper.step', act,
                  'scaled |difference|')
    assert obs <= oracle.TOLERANCE and act <= oracle.TOLERANCE


def test_relative_step_without_clip_under_clip_actions_is_clamped_as_in_training():
    # Found by this oracle: with clip_actions and no clip of its own, Isaac Lab's
    # RelativeJointPositionAction steps by clamp(raw, -c, c) x scale. The card carries the
    # clamp as the term's step clip (safe now: a relative clip is never taken for position
    # limits, see test_action.py).
    actions = {'arm': il.actions_cfg.RelativeJointPositionActionCfg(
        asset_name='robot', joint_names=['arm_elbow', 'arm_shoulder'], scale=0.1)}
    rig = from_env_dict(load_text(env_yaml(actions), 'env.yaml'), {'clip_actions': 1.0},
                        JOINTS, HARD_LIMITS)
    obs, act = run(rig, 'rsl_rl', 1.0)
    oracle.report('import relative_joint_position, no clip, clip_actions 1: targets',
                  'RelativeJointPositionAction + RslRlVecEnvWrapper.step', act,
                  'the raw clamp folded into the step clip')
    assert obs <= oracle.TOLERANCE and act <= oracle.TOLERANCE


def test_to_limits_without_rescale_or_clip_stays_in_the_soft_limits():
    # On purpose: without rescale_to_limits or a clip Isaac Lab's target is raw x scale,
    # anywhere; the card clips it to the soft joint limits (the joint stops there either way).
    names = ['arm_elbow', 'arm_shoulder']
    actions = {'arm': il.actions_cfg.JointPositionToLimitsActionCfg(
        asset_name='robot', joint_names=names, preserve_order=True, scale=2.0,
        rescale_to_limits=False)}
    rig = from_env_dict(load_text(env_yaml(actions), 'env.yaml'), {}, JOINTS, HARD_LIMITS)
    term = rig.tr.action['terms'][0] if 'terms' in rig.tr.action else rig.tr.action
    soft = oracle.soft_limits(il, rig.env_cfg, names, HARD_LIMITS)
    np.testing.assert_allclose(term['clip'], soft, rtol=1e-6)
    _, act = run(rig, 'rsl_rl', None)
    oracle.report('import joint_position_to_limits, no rescale, no clip: targets',
                  'JointPositionToLimitsAction', act,
                  'intended: targets kept inside the soft joint limits')
    assert act > 0.01


@pytest.mark.parametrize('data_type', ['distance_to_image_plane', 'rgb'])
def test_image_group_under_rl_games_clip_observations(data_type):
    # rl_games clamps the image too: depth (0.1 to 20 m here) to 5 m, a normalised rgb
    # image (within [-1, 1]) not at all. The importer folds the clamp into max_depth.
    width, height, clamp = 32, 24, 5.0
    term = il.ObservationTermCfg(func=il.mdp.image, params={
        'sensor_cfg': il.SceneEntityCfg('tiled_camera'), 'data_type': data_type})
    env = load_text(yaml.dump({
        'sim': {'dt': 0.005}, 'decimation': 4,
        'scene': {'robot': {'init_state': {'joint_pos': INIT_JOINT_POS}},
                  'tiled_camera': {'width': width, 'height': height,
                                   'data_types': [data_type]}},
        'observations': {'policy': class_to_dict(oracle.group_cfg(il, {'image': term}))},
        'actions': {'arm': class_to_dict(il.actions_cfg.JointPositionActionCfg(
            asset_name='robot', joint_names=['.*']))}}), 'env.yaml')
    agent = {'params': {'env': {'clip_observations': clamp, 'clip_actions': 1.0}}}
    report = ImportReport(source='env.yaml')
    tr = translator.translate(env, agent, JOINTS, report, HARD_LIMITS)
    assert not report.problems, report.render()
    (_, spec, chw), = tr.images
    pipeline = ImagePipeline(card_from_dict({
        'control_dt': 0.02, 'joint_names': JOINTS, 'image': spec,
        'inputs': [{'name': 'image', 'shape': [1, height, width, chw[0]], 'group': 'cam'}],
        'observations': {'cam': {'terms': [{'name': 'image'}]}}, 'action': {}}).image)
    rig = oracle.SyntheticEnv(il, JOINTS, DEFAULTS)
    camera = rig.scene.sensors['tiled_camera']
    rng = np.random.default_rng(4)

    def frame():
        if data_type == 'rgb':
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            return image, torch.from_numpy(image.copy())[None], 'rgb8'
        image = rng.uniform(0.1, 20.0, (height, width)).astype(np.float32)
        image[rng.random((height, width)) < 0.1] = np.inf
        return image, torch.from_numpy(image.copy())[None, :, :, None], '32FC1'
    camera.data.output[data_type] = frame()[1]
    rig.set_observations({'policy': oracle.group_cfg(il, {
        'image': oracle.observation_term_from_yaml(il, env['observations']['policy']['image'])})})
    this = types.SimpleNamespace(_rl_device='cpu', _sim_device='cpu', _clip_obs=clamp,
                                 _obs_groups={'obs': ['policy'], 'states': []},
                                 _concate_obs_groups=True)
    this._obs_concat_fn = wrappers.make_concat_plan([(height, width, chw[0])])[1]
    worst = 0.0
    for _ in range(20):
        image, output, encoding = frame()
        camera.data.output[data_type] = output
        expected = wrappers.rl_games._process_obs(
            this, rig.observation_manager.compute(update_history=True))['obs']
        got = pipeline.process(view_image(image.tobytes(), width, height, encoding,
                                          image.strides[0]), encoding)
        worst = max(worst, oracle.max_abs_diff(oracle.to_numpy(expected), got))
    oracle.report(f'import image group {data_type}, rl_games clip_observations 5',
                  'mdp.image + RlGamesVecEnvWrapper._process_obs', worst,
                  'depth: the clamp becomes max_depth' if data_type != 'rgb' else
                  'rgb within [-1, 1]: the clamp changes nothing')
    assert worst <= oracle.TOLERANCE


def test_unnormalised_depth_is_reported():
    # Intended difference, said by the importer: Isaac Lab's image(normalize=False) keeps
    # +inf for no return in the training depth; the card's pipeline always feeds 0 there.
    term = il.ObservationTermCfg(func=il.mdp.image, params={
        'sensor_cfg': il.SceneEntityCfg('tiled_camera'), 'data_type': 'distance_to_camera',
        'normalize': False})
    env = load_text(yaml.dump({
        'sim': {'dt': 0.005}, 'decimation': 4,
        'scene': {'robot': {'init_state': {'joint_pos': INIT_JOINT_POS}},
                  'tiled_camera': {'width': 8, 'height': 6, 'data_types': ['distance_to_camera']}},
        'observations': {'policy': class_to_dict(oracle.group_cfg(il, {'image': term}))},
        'actions': {'arm': class_to_dict(il.actions_cfg.JointPositionActionCfg(
            asset_name='robot', joint_names=['.*']))}}), 'env.yaml')
    report = ImportReport(source='env.yaml')
    tr = translator.translate(env, None, JOINTS, report, HARD_LIMITS)
    assert tr.images and any('normalize false kept +inf' in w for w in report.warnings)
    rig = oracle.SyntheticEnv(il, JOINTS, DEFAULTS)
    depth = np.full((1, 6, 8, 1), np.inf, dtype=np.float32)
    rig.scene.sensors['tiled_camera'].data.output['distance_to_camera'] = torch.from_numpy(depth)
    rig.set_observations({'policy': oracle.group_cfg(il, {'image': term})})
    assert np.isinf(oracle.to_numpy(rig.observation_manager.compute()['policy'])).all()


def test_rl_games_clamps_the_card_cannot_express_are_refused():
    # clip_observations after a per-value scale of unequal sizes is no single clip range,
    # and a 0..255 image under a clamp of 5 is another image: both refused, named.
    agent = {'params': {'env': {'clip_observations': 5.0}}}
    terms = {'cmd': il.ObservationTermCfg(func=il.mdp.generated_commands, scale=(2.0, 2.0, 0.25),
                                          params={'command_name': 'base_velocity'})}
    env = load_text(env_yaml({}), 'env.yaml')
    env['observations']['policy'] = class_to_dict(oracle.group_cfg(il, terms))
    report = ImportReport(source='env.yaml')
    translator.translate(env, agent, JOINTS, report, HARD_LIMITS)
    assert any('per-value scale' in p.reason for p in report.problems), report.render()
    image = il.ObservationTermCfg(func=il.mdp.image, params={
        'sensor_cfg': il.SceneEntityCfg('tiled_camera'), 'data_type': 'rgb', 'normalize': False})
    env['scene']['tiled_camera'] = {'width': 8, 'height': 6, 'data_types': ['rgb']}
    env['observations']['policy'] = class_to_dict(oracle.group_cfg(il, {'image': image}))
    report = ImportReport(source='env.yaml')
    translator.translate(env, agent, JOINTS, report, HARD_LIMITS)
    assert any('clamps the image' in p.reason for p in report.problems), report.render()
