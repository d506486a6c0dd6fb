"""
Observation parity with Isaac Lab's own ObservationManager, tick by tick (isaaclab_oracle.py).

Every built-in vector term of ``vision_policy.observation.TERMS`` is computed by
Isaac Lab 2.3's real ``ObservationManager.compute(update_history=True)`` (as
``ManagerBasedEnv.step`` calls it) on a synthetic scene, and by this workspace's
``ObservationBuilder`` from the same samples, over 120 ticks of random inputs with
an episode reset in the middle (the history's reset fill). Joint order is the
articulation order on both sides; the last action is the previous tick's raw
network output, fed to Isaac Lab's ``ActionManager.process_action``.
"""

import isaaclab_oracle as oracle
import numpy as np
import pytest
from vision_policy.card import card_from_dict
from vision_policy.observation import ObservationBuilder, Sample
from vision_policy.registry import load_registry, OBSERVATION_GROUP

il = oracle.load_or_skip()
torch = pytest.importorskip('torch')

JOINTS = ['lf_hip', 'lf_knee', 'rf_hip', 'rf_knee', 'arm_shoulder', 'arm_elbow']
DEFAULTS = [0.1, -0.7, -0.1, 0.7, 0.0, 1.2]
SOFT_LIMITS = [(-0.8, 0.9), (-2.1, 0.1), (-0.9, 0.8), (-0.1, 2.1), (-3.0, 3.0), (0.0, 2.5)]
TICKS = 120
RESETS = (47, 48, 90)       # a reset right after another one, too
ACTION_SCALE = 0.5


def entity(**kwargs):
    """Isaac Lab SceneEntityCfg for the robot."""
    return il.SceneEntityCfg('robot', **kwargs)


def term(func, **kwargs):
    """Isaac Lab ObservationTermCfg of an mdp function."""
    return il.ObservationTermCfg(func=func, **kwargs)


# A height scan grid of 7 x 5 rays (Isaac Lab GridPattern size [0.6, 0.4], resolution 0.1).
GRID = {'size': [0.6, 0.4], 'resolution': 0.1}
NX, NY = 7, 5
SCANNERS = ('scan_xy', 'scan_yx')


def scanners():
    """One RayCaster per grid ordering, over the same terrain."""
    return {name: oracle.HeightScanner(il, il.patterns.GridPatternCfg(
        ordering=name[-2:], **GRID)) for name in SCANNERS}


class Rig:
    """Isaac Lab's managers and this workspace's builder, fed the same random samples."""

    def __init__(self, il_terms, card_terms, group=None, card_group=None, seed=0):
        self.rng = np.random.default_rng(seed)
        self.last_action = np.zeros(len(JOINTS), dtype=np.float32)
        self.env = oracle.SyntheticEnv(il, JOINTS, DEFAULTS, SOFT_LIMITS,
                                       scanners=scanners())
        self.env.set_actions({'joint_pos': il.actions_cfg.JointPositionActionCfg(
            asset_name='robot', joint_names=['.*'], scale=ACTION_SCALE,
            use_default_offset=True)})
        self.env.command_manager.commands['base_velocity'] = torch.zeros(1, 3)
        self.env.command_manager.commands['ee_pose'] = torch.zeros(1, 7)
        self.env.command_manager.commands['ee_pose_unique'] = torch.zeros(1, 7)
        self.sample()   # the manager calls each term once at construction
        self.env.set_observations({'policy': oracle.group_cfg(il, il_terms, **(group or {}))})
        shape = self.env.observation_manager.group_obs_dim['policy']
        self.card = card_from_dict({
            'control_dt': 0.02, 'joint_names': JOINTS, 'default_joint_pos': DEFAULTS,
            'inputs': [{'name': 'obs', 'shape': [1, *shape], 'group': 'policy'}],
            'observations': {'policy': {'terms': card_terms, **(card_group or {})}},
            'action': {'joint_names': JOINTS, 'scale': ACTION_SCALE, 'offset': 'default'}})
        self.builder = ObservationBuilder(self.card)

    def sample(self):
        """Draw one tick's state; write it into the scene and return the workspace Sample."""
        rng, data = self.rng, self.env.robot.data
        pos = rng.uniform(-3.0, 3.0, len(JOINTS)).astype(np.float32)
        vel = rng.uniform(-20.0, 20.0, len(JOINTS)).astype(np.float32)
        quat_wxyz = rng.normal(size=4)
        quat_wxyz = (quat_wxyz / np.linalg.norm(quat_wxyz)).astype(np.float32)
        ang_vel, lin_vel, command = (rng.uniform(-2.0, 2.0, 3).astype(np.float32)
                                     for _ in range(3))
        data.joint_pos[0] = torch.from_numpy(pos)
        data.joint_vel[0] = torch.from_numpy(vel)
        data.root_quat_w[0] = torch.from_numpy(quat_wxyz)
        data.root_ang_vel_b[0] = torch.from_numpy(ang_vel)
        # An IMU aligned with the base (the importer warns that it must be).
        imu = self.env.scene.sensors['imu'].data
        imu.quat_w[0] = torch.from_numpy(quat_wxyz)
        imu.ang_vel_b[0] = torch.from_numpy(ang_vel)
        lin_acc = rng.uniform(-15.0, 15.0, 3).astype(np.float32)
        imu.lin_acc_b[0] = torch.from_numpy(lin_acc)
        base_pos = rng.uniform(-1.0, 1.0, 3).astype(np.float32)
        data.root_pos_w[0] = torch.from_numpy(base_pos)
        data.root_lin_vel_b[0] = torch.from_numpy(lin_vel)
        self.env.command_manager.commands['base_velocity'][0] = torch.from_numpy(command)
        # A target pose in the base frame (x, y, z, qw, qx, qy, qz), either quaternion sign;
        # UniformPoseCommand applies quat_unique when it samples, if make_quat_unique.
        pose = np.concatenate([rng.uniform(-1.0, 1.0, 3), rng.normal(size=4)])
        pose[3:] /= np.linalg.norm(pose[3:])
        pose = pose.astype(np.float32)
        commands = self.env.command_manager.commands
        commands['ee_pose'][0] = torch.from_numpy(pose)
        commands['ee_pose_unique'][0, :3] = torch.from_numpy(pose[:3])
        commands['ee_pose_unique'][0, 3:] = il.math.quat_unique(torch.from_numpy(pose[3:]))
        # Terrain under the scanner: hit heights in the sensor frame, (ny, nx) = rows along y;
        # some rays miss (Isaac Lab: inf hit; ROS height map: NaN).
        sensor_z = np.float32(rng.uniform(0.3, 0.8))
        heights = rng.uniform(-1.2, 0.2, (NY, NX)).astype(np.float32)
        heights[rng.random((NY, NX)) < 0.05] = np.nan
        for name in SCANNERS:
            scanner = self.env.scene.sensors[name]
            ix = np.round((scanner.ray_xy[:, 0] + GRID['size'][0] / 2) / 0.1).astype(int)
            iy = np.round((scanner.ray_xy[:, 1] + GRID['size'][1] / 2) / 0.1).astype(int)
            hit_z = np.nan_to_num(heights[iy, ix] + sensor_z, nan=np.inf)
            hits = np.zeros((1, len(ix), 3), dtype=np.float32)
            hits[0, :, 2] = hit_z
            scanner.data.ray_hits_w = torch.from_numpy(hits)
            scanner.data.pos_w = torch.tensor([[0.0, 0.0, float(sensor_z)]])
        # ROS: sensor_msgs/Imu orientation is (x, y, z, w); angular_velocity and the odometry
        # twist are in the body frame, as Isaac Lab's root_*_vel_b; Twist carries [vx, vy, wz].
        return Sample(joint_pos=pos, joint_vel=vel, last_action=self.last_action.copy(),
                      extras={'imu_orientation': quat_wxyz[[1, 2, 3, 0]],
                              'imu_angular_velocity': ang_vel, 'base_lin_vel': lin_vel,
                              'velocity_command': command, 'pose_command': pose,
                              'height_map': heights, 'imu_linear_acceleration': lin_acc,
                              'base_pos': base_pos})

    def run(self, ticks=TICKS, resets=RESETS):
        """Max |Isaac Lab - workspace| over the ticks."""
        worst = 0.0
        for tick in range(ticks):
            if tick in resets:
                self.env.reset()
                self.builder.reset()
                self.last_action[:] = 0.0
                self.env.episode_length_buf[:] = 0
            elif tick:
                # ManagerBasedRLEnv.step counts the step before it observes.
                self.env.episode_length_buf += 1
            sample = self.sample()
            expected = oracle.to_numpy(
                self.env.observation_manager.compute(update_history=True)['policy'])
            got = self.builder.build(sample)['obs'][0]
            worst = max(worst, oracle.max_abs_diff(expected, got))
            raw = self.rng.normal(0.0, 2.0, len(JOINTS)).astype(np.float32)
            self.env.action_manager.process_action(torch.from_numpy(raw)[None])
            self.last_action[:] = raw
        return worst


SUBSET = ['rf_knee', 'lf_hip', 'arm_elbow']   # deliberately not articulation order
LIMITS_PARAM = [list(SOFT_LIMITS[JOINTS.index(n)]) for n in SUBSET]

# (row, Isaac Lab term cfg, card term, note)
CASES = [
    ('joint_pos', term(il.mdp.joint_pos), {'name': 'joint_pos'}, ''),
    ('joint_pos (subset, preserve_order)',
     term(il.mdp.joint_pos, params={'asset_cfg': entity(joint_names=SUBSET,
                                                        preserve_order=True)}),
     {'name': 'joint_pos', 'params': {'joint_names': SUBSET}}, ''),
    ('joint_pos_rel', term(il.mdp.joint_pos_rel, scale=1.5, clip=(-2.0, 2.0)),
     {'name': 'joint_pos_rel', 'scale': 1.5, 'clip': [-2.0, 2.0]}, ''),
    ('joint_pos_rel (subset)',
     term(il.mdp.joint_pos_rel, params={'asset_cfg': entity(joint_names=SUBSET,
                                                            preserve_order=True)}),
     {'name': 'joint_pos_rel', 'params': {'joint_names': SUBSET}}, ''),
    ('joint_vel', term(il.mdp.joint_vel, clip=(-5.0, 5.0)),
     {'name': 'joint_vel', 'clip': [-5.0, 5.0]}, ''),
    ('joint_vel_rel', term(il.mdp.joint_vel_rel, scale=0.05),
     {'name': 'joint_vel_rel', 'scale': 0.05},
     'default_joint_vel is zero (the importer refuses non-zero defaults)'),
    ('joint_pos_limit_normalized',
     term(il.mdp.joint_pos_limit_normalized, params={'asset_cfg': entity(
         joint_names=SUBSET, preserve_order=True)}),
     {'name': 'joint_pos_limit_normalized',
      'params': {'joint_names': SUBSET, 'soft_joint_pos_limits': LIMITS_PARAM}}, ''),
    ('base_ang_vel (Imu sensor)', term(il.mdp.imu_ang_vel, scale=0.25),
     {'name': 'base_ang_vel', 'scale': 0.25}, 'mdp.imu_ang_vel maps to base_ang_vel'),
    ('projected_gravity (Imu sensor)', term(il.mdp.imu_projected_gravity),
     {'name': 'projected_gravity'}, 'mdp.imu_projected_gravity maps to projected_gravity'),
    ('imu_orientation', term(il.mdp.imu_orientation), {'name': 'imu_orientation'},
     '(w, x, y, z) from the IMU (x, y, z, w)'),
    ('imu_orientation (root_quat_w, make_quat_unique)',
     term(il.mdp.root_quat_w, params={'make_quat_unique': True}),
     {'name': 'imu_orientation', 'params': {'make_quat_unique': True}},
     'the IMU frame is the base frame; world yaw is the IMU one'),
    ('imu_lin_acc', term(il.mdp.imu_lin_acc, scale=0.1), {'name': 'imu_lin_acc', 'scale': 0.1},
     ''),
    ('base_pos_z', term(il.mdp.base_pos_z), {'name': 'base_pos_z'}, 'odometry pose z'),
    ('current_time_s', term(il.mdp.current_time_s), {'name': 'current_time_s'},
     'the episode starts when the policy starts (and at each reset)'),
    ('remaining_time_s', term(il.mdp.remaining_time_s),
     {'name': 'remaining_time_s', 'params': {'episode_length_s': 20.0}},
     'episode_length_s from env.yaml'),
    ('base_lin_vel', term(il.mdp.base_lin_vel, scale=2.0),
     {'name': 'base_lin_vel', 'scale': 2.0}, 'body-frame twist in both'),
    ('base_ang_vel', term(il.mdp.base_ang_vel, scale=0.25, clip=(-0.3, 0.3)),
     {'name': 'base_ang_vel', 'scale': 0.25, 'clip': [-0.3, 0.3]}, ''),
    ('projected_gravity', term(il.mdp.projected_gravity),
     {'name': 'projected_gravity'}, 'from the root quaternion (IMU x,y,z,w)'),
    ('velocity_commands', term(il.mdp.generated_commands,
                               params={'command_name': 'base_velocity'}),
     {'name': 'velocity_commands'}, 'Isaac Lab generated_commands of a velocity command'),
    ('generated_commands', term(il.mdp.generated_commands,
                                params={'command_name': 'base_velocity'}, scale=(2.0, 2.0, 0.25)),
     {'name': 'generated_commands', 'scale': [2.0, 2.0, 0.25]}, 'per-element scale'),
    ('height_scan (ordering xy)', term(il.mdp.height_scan, clip=(-1.0, 1.0), params={
        'sensor_cfg': il.SceneEntityCfg('scan_xy'), 'offset': 0.5}),
     {'name': 'height_scan', 'clip': [-1.0, 1.0],
      'params': {**GRID, 'ordering': 'xy', 'offset': 0.5}},
     'ray order from Isaac Lab grid_pattern; a miss (inf / NaN) clips to -1'),
    ('height_scan (ordering yx)', term(il.mdp.height_scan, clip=(-1.0, 1.0), params={
        'sensor_cfg': il.SceneEntityCfg('scan_yx'), 'offset': 0.2}),
     {'name': 'height_scan', 'clip': [-1.0, 1.0],
      'params': {**GRID, 'ordering': 'yx', 'offset': 0.2}}, ''),
    ('pose_command', term(il.mdp.generated_commands, params={'command_name': 'ee_pose'}),
     {'name': 'pose_command'}, 'UniformPoseCommand, base frame'),
    ('pose_command (make_quat_unique)',
     term(il.mdp.generated_commands, params={'command_name': 'ee_pose_unique'}),
     {'name': 'pose_command', 'params': {'make_quat_unique': True}},
     'the ROS pose may carry either quaternion sign'),
    ('last_action', term(il.mdp.last_action), {'name': 'last_action'},
     'raw output of the previous tick; zeros after a reset'),
    ('actions', term(il.mdp.last_action, clip=(-1.0, 1.0)),
     {'name': 'actions', 'clip': [-1.0, 1.0]}, 'alias of last_action'),
]


# Built-in terms whose parity cases live in other oracle modules.
COVERED_ELSEWHERE = {'image': 'test_oracle_image.py'}


def test_every_builtin_term_is_covered():
    registry = load_registry()
    builtin = {name for group, name in registry.builtin if group == OBSERVATION_GROUP}
    covered = {card['name'] for _, _, card, _ in CASES} | set(COVERED_ELSEWHERE)
    assert sorted(builtin - covered) == [], 'built-in terms without an oracle case'


@pytest.mark.parametrize('row, il_term, card_term, note', CASES, ids=[c[0] for c in CASES])
def test_term_matches_isaaclab(row, il_term, card_term, note):
    worst = Rig({'t': il_term}, [card_term]).run()
    oracle.report(row, f'mdp.{il_term.func.__name__}', worst, note)
    assert worst <= oracle.TOLERANCE


def _all_terms(**extra):
    """Every vector term in one group, as (Isaac Lab terms, card terms)."""
    il_terms, card_terms = {}, []
    for i, (_, il_term, card_term, _) in enumerate(CASES):
        if card_term['name'] in [t['name'] for t in card_terms]:
            continue    # a card group lists a term once
        cfg = il_term.copy()
        for key, value in extra.items():
            setattr(cfg, key, value)
        il_terms[f't{i}'] = cfg
        history = {'history_length': extra['history_length']} if 'history_length' in extra \
            else {}
        card_terms.append({**card_term, **history})
    return il_terms, card_terms


def test_group_concatenation_matches_isaaclab():
    il_terms, card_terms = _all_terms()
    worst = Rig(il_terms, card_terms, seed=1).run()
    oracle.report('group concatenation (all terms)', 'ObservationManager.compute', worst,
                  'declaration order')
    assert worst <= oracle.TOLERANCE


def test_term_history_matches_isaaclab():
    il_terms, card_terms = _all_terms(history_length=3)
    worst = Rig(il_terms, card_terms, seed=2).run()
    oracle.report('term history_length 3 (+ reset fill)', 'CircularBuffer', worst,
                  'oldest first; every slot holds the first sample after a reset')
    assert worst <= oracle.TOLERANCE


def test_group_history_overrides_terms():
    il_terms, card_terms = _all_terms(history_length=2)
    worst = Rig(il_terms, card_terms, group={'history_length': 4},
                card_group={'history_length': 4}, seed=3).run()
    oracle.report('group history_length 4 over terms of 2', 'ObservationGroupCfg', worst,
                  'the group value wins')
    assert worst <= oracle.TOLERANCE


def test_unflattened_history_matches_isaaclab():
    il_terms = {'jp': term(il.mdp.joint_pos_rel, scale=0.5)}
    card_terms = [{'name': 'joint_pos_rel', 'scale': 0.5}]
    rig = Rig(il_terms, card_terms, group={'history_length': 5, 'flatten_history_dim': False},
              card_group={'history_length': 5, 'flatten_history_dim': False}, seed=4)
    assert rig.card.inputs[0].shape == (1, 5, len(JOINTS))
    worst = rig.run()
    oracle.report('flatten_history_dim false (H, D)', 'ObservationManager.compute', worst, '')
    assert worst <= oracle.TOLERANCE


def test_oracle_sees_a_wrong_order():
    # The harness must be able to fail: history newest-first is a difference it reports.
    rig = Rig({'jp': term(il.mdp.joint_pos, history_length=3)},
              [{'name': 'joint_pos', 'history_length': 3}], seed=5)
    rig.run(ticks=5, resets=())
    history = rig.builder.inputs['obs'][0].reshape(3, -1)
    expected = oracle.to_numpy(rig.env.observation_manager.compute()['policy']).reshape(3, -1)
    assert oracle.max_abs_diff(expected, history) <= oracle.TOLERANCE
    assert oracle.max_abs_diff(expected, history[::-1]) > 0.1
