"""
The whole tick through ``PolicyCore`` and the real spot policy, against Isaac Lab's managers.

The spot fixture's card (``import_run``) drives ``PolicyCore`` with its exported
ONNX network on onnxruntime; Isaac Lab's ``ObservationManager`` and
``ActionManager`` are built from the same env.yaml (test_oracle_fixtures.py).
Each tick both see the same robot state; Isaac Lab gets the network's raw output
through ``ActionManager.process_action`` (so its ``last_action`` is the core's
previous output), and the core's observation input and mapped targets are
compared with Isaac Lab's, over 100 ticks with an episode reset (``core.reset()``).
"""

import isaaclab_oracle as oracle
import numpy as np
import pytest
from test_isaaclab_fixtures import SPOT
from test_oracle_fixtures import from_env_yaml
from vision_policy.action import SafetyLimits
from vision_policy.card import load_card
from vision_policy.core import PolicyCore
from vision_policy.image import view_image
from vision_policy.isaaclab.importer import import_run
from vision_policy.runtime import open_session, PolicyRuntime, RuntimeOptions

il = oracle.load_or_skip()
torch = pytest.importorskip('torch')

RUN = 'spot_arm_standing__DevMarkusLejon_RLonSpot'
TICKS = 100
RESET = 60


def test_policy_core_tick_matches_isaaclab(fixtures_dir):
    result = import_run(fixtures_dir / RUN, joint_names=SPOT)
    assert result.card is not None, result.report.render()
    card = result.card
    session = open_session(fixtures_dir / RUN / 'exported' / 'policy.onnx',
                           RuntimeOptions(providers=('CPUExecutionProvider',)))
    core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs, 0),
                      SafetyLimits.build(len(card.action.joint_names), [-10.0], [10.0], [10.0]))
    rig = from_env_yaml(fixtures_dir / RUN, SPOT)
    assert not rig.skipped
    order = [SPOT.index(n) for n in card.action.joint_names]
    obs_worst, act_worst, raw_seen = 0.0, 0.0, 0.0
    for tick in range(TICKS):
        pos, vel = rig.draw()
        if tick in (0, RESET):
            rig.env.reset()
            core.reset()
        expected = oracle.to_numpy(rig.env.observation_manager.compute(
            update_history=True)[rig.group])
        core.set_extras(rig.extras)
        core.step(pos, vel)
        obs_worst = max(obs_worst, oracle.max_abs_diff(expected, core.tick.inputs['obs'][0]))
        raw = np.array(core.tick.raw, dtype=np.float32)
        raw_seen = max(raw_seen, float(np.abs(raw).max()))
        rig.env.action_manager.process_action(torch.from_numpy(raw)[None])
        rig.env.action_manager.apply_action()
        targets = oracle.to_numpy(rig.env.robot.data.joint_pos_target)[order]
        act_worst = max(act_worst, oracle.max_rel_diff(targets, core.tick.targets))
    oracle.report('PolicyCore tick, spot policy on onnxruntime: observation',
                  'ObservationManager from env.yaml', obs_worst,
                  'last_action = the previous output of the core; zeros after core.reset()')
    oracle.report('PolicyCore tick, spot policy on onnxruntime: targets',
                  'JointPositionAction x 2 from env.yaml', act_worst,
                  f'before the safety filter; |raw| up to {raw_seen:.2f}')
    assert obs_worst <= oracle.TOLERANCE and act_worst <= oracle.TOLERANCE


def test_policy_core_with_camera_matches_isaaclab(model_path):
    # The bundled card as Isaac Lab cfgs: group policy (joint_pos_rel, joint_vel_rel with
    # scale 0.1 and clip +-50, last_action), group camera (mdp.image rgb, normalised), and
    # a JointPositionAction (scale 0.5, default offset, clip per joint).
    card = load_card(model_path.with_suffix('.yaml'))
    joints = list(card.joint_names)
    env = oracle.SyntheticEnv(il, joints, card.default_joint_pos)
    env.set_actions({'arm': il.actions_cfg.JointPositionActionCfg(
        asset_name='robot', joint_names=joints, preserve_order=True, scale=0.5,
        use_default_offset=True, clip={n: tuple(c) for n, c in zip(joints, card.action.clip)})})
    camera = env.scene.sensors['tiled_camera']
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (card.image.height, card.image.width, 3), dtype=np.uint8)
    camera.data.output['rgb'] = torch.from_numpy(frame)[None]
    term = il.ObservationTermCfg
    env.set_observations({
        'policy': oracle.group_cfg(il, {
            'joint_pos': term(func=il.mdp.joint_pos_rel),
            'joint_vel': term(func=il.mdp.joint_vel_rel, scale=0.1, clip=(-50.0, 50.0)),
            'actions': term(func=il.mdp.last_action)}),
        'camera': oracle.group_cfg(il, {'image': term(func=il.mdp.image, params={
            'sensor_cfg': il.SceneEntityCfg('tiled_camera'), 'data_type': 'rgb'})})})
    session = open_session(model_path, RuntimeOptions(providers=('CPUExecutionProvider',)))
    core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs, 0),
                      SafetyLimits.build(len(joints), [-10.0], [10.0], [10.0]))
    worst = {'obs': 0.0, 'image': 0.0, 'targets': 0.0}
    for tick in range(TICKS):
        pos = (np.asarray(card.default_joint_pos) + rng.uniform(-1, 1, 3)).astype(np.float32)
        vel = rng.uniform(-800.0, 800.0, 3).astype(np.float32)     # beyond the +-50 clip
        frame = rng.integers(0, 256, frame.shape, dtype=np.uint8)
        env.robot.data.joint_pos[0], env.robot.data.joint_vel[0] = (torch.from_numpy(pos),
                                                                    torch.from_numpy(vel))
        camera.data.output['rgb'] = torch.from_numpy(frame)[None]
        if tick in (0, RESET):
            env.reset()
            core.reset()
        expected = env.observation_manager.compute(update_history=True)
        core.set_image(view_image(frame.tobytes(), frame.shape[1], frame.shape[0], 'rgb8',
                                  frame.strides[0]), 'rgb8')
        core.step(pos, vel)
        worst['obs'] = max(worst['obs'], oracle.max_abs_diff(
            oracle.to_numpy(expected['policy']), core.tick.inputs['obs'][0]))
        # Isaac Lab's image is NHWC; the bundled network takes NCHW (card layout).
        worst['image'] = max(worst['image'], oracle.max_abs_diff(
            oracle.to_numpy(expected['camera']), core.tick.inputs['image'][0].transpose(1, 2, 0)))
        raw = np.array(core.tick.raw, dtype=np.float32)
        env.action_manager.process_action(torch.from_numpy(raw)[None])
        env.action_manager.apply_action()
        worst['targets'] = max(worst['targets'], oracle.max_rel_diff(
            oracle.to_numpy(env.robot.data.joint_pos_target), core.tick.targets))
    for key, function in (('obs', 'ObservationManager (policy group)'),
                          ('image', 'mdp.image (camera group)'),
                          ('targets', 'JointPositionAction (clip)')):
        oracle.report(f'PolicyCore tick, bundled reach policy: {key}', function, worst[key],
                      'NCHW = Isaac Lab NHWC transposed' if key == 'image' else '')
    assert max(worst.values()) <= oracle.TOLERANCE
