"""
Parity of our observation terms with Isaac Lab's definitions, on hand-computed values.

Source read: isaac-sim/IsaacLab ``source/isaaclab/isaaclab/envs/mdp/observations.py``
(commit 0036fed), ``isaaclab/utils/math.py`` (``scale_transform``),
``isaaclab/managers/observation_manager.py`` (compute -> noise -> clip -> scale
-> history), ``isaaclab/assets/articulation`` (soft joint limits).
"""

import math

import numpy as np
import pytest

from vision_policy.card import card_from_dict, ImageSpec, TermSpec
from vision_policy.image import ImagePipeline
from vision_policy.observation import ExtraSourceError, gravity_in_body, \
    ObservationBuilder, resolve_term, Sample
from vision_policy.registry import load_registry

JOINTS = ['j0', 'j1', 'j2']
DEFAULTS = [0.1, -0.2, 0.3]


def make_card(terms, action_joints=JOINTS):
    return card_from_dict({
        'control_dt': 0.02, 'joint_names': JOINTS, 'default_joint_pos': DEFAULTS,
        'inputs': [{'name': 'obs', 'shape': [1, 1], 'group': 'policy'}],
        'observations': {'policy': {'terms': terms}},
        'action': {'joint_names': action_joints, 'scale': 1.0, 'offset': 0.0}})


def run_term(name, params=None, sample=None, card=None):
    card = card or make_card([{'name': name}])
    term = resolve_term(card, TermSpec(name=name, params=params or {}), 'test')
    out = np.zeros(term.shape, dtype=np.float32)
    term.compute(sample, out)
    return out


def sample(**extras):
    return Sample(joint_pos=np.array([0.5, -1.0, 2.0], dtype=np.float32),
                  joint_vel=np.array([1.5, 0.0, -3.0], dtype=np.float32),
                  last_action=np.array([0.25, -0.5, 0.75], dtype=np.float32), extras=extras)


def test_joint_pos():
    # Isaac Lab: joint_pos = asset.data.joint_pos[:, asset_cfg.joint_ids]
    assert run_term('joint_pos', {'joint_names': ['j2', 'j0']}, sample()).tolist() == [2.0, 0.5]


def test_joint_pos_rel():
    # Isaac Lab: joint_pos_rel = joint_pos[:, ids] - default_joint_pos[:, ids]
    np.testing.assert_allclose(run_term('joint_pos_rel', {}, sample()), [0.4, -0.8, 1.7],
                               rtol=1e-6)


def test_joint_vel_and_rel():
    # Isaac Lab: joint_vel = joint_vel[:, ids]; joint_vel_rel subtracts default_joint_vel,
    # which is zero for a deployed robot (the importer refuses non-zero defaults).
    assert run_term('joint_vel', {}, sample()).tolist() == [1.5, 0.0, -3.0]
    assert run_term('joint_vel_rel', {'joint_names': ['j2']}, sample()).tolist() == [-3.0]


def test_joint_pos_limit_normalized():
    # Isaac Lab: scale_transform(joint_pos, soft_lo, soft_hi) = 2 * (x - (lo + hi) / 2) / (hi - lo)
    # with soft limits = mid -/+ 0.5 * (hi - lo) * soft_joint_pos_limit_factor.
    limits = [[0.0, 1.0], [-2.0, 2.0], [1.0, 3.0]]
    out = run_term('joint_pos_limit_normalized', {'soft_joint_pos_limits': limits}, sample())
    np.testing.assert_allclose(out, [0.0, -0.5, 0.0], atol=1e-7)
    card = make_card([{'name': 'joint_pos'}])
    with pytest.raises(Exception, match='soft_joint_pos_limits'):
        resolve_term(card, TermSpec('joint_pos_limit_normalized', params={}), 'x')


def test_last_action():
    # Isaac Lab: last_action = env.action_manager.action (the raw policy output).
    assert run_term('last_action', {}, sample()).tolist() == [0.25, -0.5, 0.75]


@pytest.mark.parametrize('name, key', [('base_ang_vel', 'imu_angular_velocity'),
                                       ('base_lin_vel', 'base_lin_vel'),
                                       ('velocity_commands', 'velocity_command'),
                                       ('generated_commands', 'velocity_command')])
def test_base_vectors(name, key):
    # Isaac Lab: base_lin_vel = root_lin_vel_b, base_ang_vel = root_ang_vel_b (root frame);
    # generated_commands = command_manager.get_command(name): [vx, vy, wz] for a
    # UniformVelocityCommand.
    out = run_term(name, {}, sample(**{key: np.array([0.1, -0.2, 0.3])}))
    np.testing.assert_allclose(out, [0.1, -0.2, 0.3], rtol=1e-6)
    with pytest.raises(ExtraSourceError, match=key):
        run_term(name, {}, sample())


S = math.sqrt(0.5)


@pytest.mark.parametrize('quat_xyzw, expected', [
    ((0, 0, 0, 1), (0, 0, -1)),            # level: gravity straight down the body z
    ((S, 0, 0, S), (0, -1, 0)),            # rolled +90 deg about x
    ((0, S, 0, S), (1, 0, 0)),             # pitched +90 deg about y
    ((0, 0, S, S), (0, 0, -1)),            # yaw does not change the projection
    ((0, 0, 0, 2), (0, 0, -1)),            # not unit: normalised first
])
def test_projected_gravity(quat_xyzw, expected):
    # Isaac Lab: projected_gravity_b = quat_apply_inverse(root_quat_w, [0, 0, -1]) = R^T g.
    out = run_term('projected_gravity', {}, sample(imu_orientation=np.array(quat_xyzw, float)))
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_projected_gravity_matches_rotation_matrix():
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, y, z, w = q = rng.normal(size=4) / 1.0
        q = q / np.linalg.norm(q)
        x, y, z, w = q
        rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
        out = np.zeros(3)
        gravity_in_body(q, out)
        np.testing.assert_allclose(out, rot.T @ [0, 0, -1], atol=1e-12)


def test_image_rgb_nhwc_per_image_mean():
    # Isaac Lab image(): rgb -> float / 255, then minus the mean over (H, W) of each image,
    # per channel; layout NHWC as the camera gives it.
    src = np.zeros((2, 2, 3), dtype=np.uint8)
    src[..., 0] = [[0, 255], [255, 255]]
    src[..., 1] = 51
    src[..., 2] = [[0, 0], [0, 204]]
    pipe = ImagePipeline(ImageSpec(width=2, height=2, normalize='isaaclab', layout='NHWC'))
    out = pipe.process(src, 'rgb8')
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out[..., 0], [[-0.75, 0.25], [0.25, 0.25]], atol=1e-6)
    np.testing.assert_allclose(out[..., 1], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[..., 2], [[-0.2, -0.2], [-0.2, 0.6]], atol=1e-6)


def test_image_depth_inf_to_zero():
    # Isaac Lab image(): depth / distance_to_* -> images[images == inf] = 0.
    src = np.array([[[1.5], [np.inf]], [[0.25], [np.inf]]], dtype=np.float32)
    pipe = ImagePipeline(ImageSpec(width=2, height=2, data_type='depth',
                                   source_encodings=('32FC1',), normalize='none',
                                   layout='NHWC'))
    out = pipe.process(src, '32FC1')
    np.testing.assert_allclose(out[..., 0], [[1.5, 0.0], [0.25, 0.0]])


def test_manager_order_clip_scale_history():
    # ObservationManager: compute -> clip -> scale -> CircularBuffer (first push fills all
    # slots), flattened oldest first, terms concatenated in declaration order.
    card = card_from_dict({
        'control_dt': 0.02, 'joint_names': JOINTS, 'default_joint_pos': [0, 0, 0],
        'inputs': [{'name': 'obs', 'shape': [1, 9], 'group': 'policy'}],
        'observations': {'policy': {'terms': [
            {'name': 'joint_pos', 'clip': [-1.0, 1.0], 'scale': 2.0, 'history_length': 2},
            {'name': 'base_ang_vel'}]}},
        'action': {'scale': 1.0, 'offset': 0.0}})
    builder = ObservationBuilder(card)
    s = sample(imu_angular_velocity=np.array([7.0, 8.0, 9.0]))
    first = builder.build(s)['obs'].ravel().tolist()
    assert first == [1.0, -2.0, 2.0, 1.0, -2.0, 2.0, 7.0, 8.0, 9.0]
    s.joint_pos[:] = [0.25, 0.0, -0.5]
    second = builder.build(s)['obs'].ravel().tolist()
    assert second == [1.0, -2.0, 2.0, 0.5, 0.0, -1.0, 7.0, 8.0, 9.0]


def test_terms_declare_what_they_need():
    card = make_card([{'name': 'joint_pos'}])
    needs = {name: resolve_term(card, TermSpec(name), 'test').needs for name in
             ('projected_gravity', 'base_ang_vel', 'velocity_commands', 'base_lin_vel',
              'joint_pos', 'joint_vel', 'joint_vel_rel', 'last_action')}
    assert needs == {'projected_gravity': ('imu',), 'base_ang_vel': ('imu',),
                     'velocity_commands': ('cmd_vel',), 'base_lin_vel': ('odom',),
                     'joint_pos': (), 'joint_vel': ('joint_vel',),
                     'joint_vel_rel': ('joint_vel',), 'last_action': ()}
    wide = card_from_dict({
        'control_dt': 0.02, 'joint_names': JOINTS, 'default_joint_pos': DEFAULTS,
        'inputs': [{'name': 'obs', 'shape': [1, 9], 'group': 'policy'}],
        'observations': {'policy': {'terms': [{'name': 'projected_gravity'},
                                              {'name': 'velocity_commands'},
                                              {'name': 'joint_pos'}]}},
        'action': {'joint_names': JOINTS, 'scale': 1.0, 'offset': 0.0}})
    assert ObservationBuilder(wide).needs == {'imu', 'cmd_vel'}
    assert {'base_ang_vel', 'projected_gravity', 'base_lin_vel', 'velocity_commands',
            'generated_commands', 'joint_pos_limit_normalized'} <= \
        set(load_registry().observation_terms)
