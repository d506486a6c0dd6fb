"""
Parity of the standard Isaac Lab vocabulary with Isaac Lab 2.3's own definitions.

Each reference below transcribes the Isaac Lab code path in torch (observations.py
``height_scan``, patterns.py ``grid_pattern``, ``UniformPoseCommand``, and
``actions/*.py`` ``process_actions``); the card pipeline must give the same numbers.
"""

import numpy as np
import pytest
from vision_policy.action import ActionMapper
from vision_policy.card import card_from_dict
from vision_policy.observation import ObservationBuilder, Sample
from vision_policy.sources import HEIGHT_MAP, POSE_COMMAND

torch = pytest.importorskip('torch', reason='torch is needed for the Isaac Lab references')

JOINTS = ['a0', 'a1', 'a2', 'g0']
DEFAULTS = [0.1, -0.2, 0.3, 0.04]
RNG = np.random.default_rng(12)


def card(terms, width, action_terms=None):
    return card_from_dict({
        'control_dt': 0.02, 'joint_names': JOINTS, 'default_joint_pos': DEFAULTS,
        'inputs': [{'name': 'obs', 'shape': [1, width], 'group': 'policy'}],
        'observations': {'policy': {'terms': terms}},
        'action': {'terms': action_terms} if action_terms else {'scale': 1.0}})


def sample(**extras):
    return Sample(joint_pos=np.zeros(4, np.float32), joint_vel=np.zeros(4, np.float32),
                  last_action=np.zeros(4, np.float32), extras=extras)


def isaaclab_grid(size, resolution, ordering):
    """Ray start xy in Isaac Lab's order: patterns.grid_pattern."""
    indexing = ordering if ordering == 'xy' else 'ij'
    x = torch.arange(start=-size[0] / 2, end=size[0] / 2 + 1.0e-9, step=resolution)
    y = torch.arange(start=-size[1] / 2, end=size[1] / 2 + 1.0e-9, step=resolution)
    grid_x, grid_y = torch.meshgrid(x, y, indexing=indexing)
    return grid_x.flatten(), grid_y.flatten()


@pytest.mark.parametrize('ordering', ['xy', 'yx'])
def test_height_scan_grid_order_offset_clip_and_misses(ordering):
    size, res, offset = [1.6, 1.0], 0.1, 0.5
    nx, ny = 17, 11
    # Terrain: a slope in x and a bump in y, heights of the hit points in the scanner frame.
    xs, ys = np.linspace(-0.8, 0.8, nx), np.linspace(-0.5, 0.5, ny)
    terrain = (-0.6 + 0.3 * xs[None, :] + 0.2 * np.cos(4 * ys[:, None])).astype(np.float32)
    terrain[3, 5] = np.nan                       # a ray that hits nothing
    params = {'size': size, 'resolution': res, 'ordering': ordering, 'offset': offset}
    c = card([{'name': 'height_scan', 'params': params, 'clip': [-1.0, 1.0]}], nx * ny)
    builder = ObservationBuilder(c)
    assert builder.needs == {'height_map'}
    got = builder.build(sample(height_map=terrain))['obs'].ravel()
    # Isaac Lab: sensor z - ray_hit z - offset per ray; a miss hits at +inf (-> -inf).
    gx, gy = isaaclab_grid(size, res, ordering)
    ix = torch.round((gx + size[0] / 2) / res).long()
    iy = torch.round((gy + size[1] / 2) / res).long()
    hits = torch.from_numpy(np.nan_to_num(terrain, nan=np.inf))[iy, ix]
    want = torch.clamp(torch.tensor(0.0) - hits - offset, -1.0, 1.0).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert got.min() == -1.0


def test_height_map_source_and_shape_check():
    from std_msgs.msg import Float32MultiArray, MultiArrayDimension
    msg = Float32MultiArray(data=[float(v) for v in range(6)])
    msg.layout.dim = [MultiArrayDimension(label='y', size=2, stride=6),
                      MultiArrayDimension(label='x', size=3, stride=3)]
    grid = HEIGHT_MAP.read(msg)['height_map']
    assert grid.tolist() == [[0, 1, 2], [3, 4, 5]]
    params = {'size': [0.2, 0.2], 'resolution': 0.1, 'offset': 0.0}
    builder = ObservationBuilder(card([{'name': 'height_scan', 'params': params}], 9))
    with pytest.raises(ValueError, match=r'shape \(2, 3\), the card grid is \(ny, nx\) = '
                                         r'\(3, 3\)'):
        builder.build(sample(height_map=grid))


@pytest.mark.parametrize('unique', [False, True])
def test_pose_command_from_pose_stamped(unique):
    from geometry_msgs.msg import PoseStamped
    msg = PoseStamped()
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = 0.4, -0.1, 0.3
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = 0.0, 0.6, 0.0, -0.8
    c = card([{'name': 'pose_command', 'params': {'make_quat_unique': unique}}], 7)
    got = ObservationBuilder(c).build(sample(**POSE_COMMAND.read(msg)))['obs'].ravel()
    # UniformPoseCommand.pose_command_b: pos, quat (w, x, y, z); quat_unique makes w >= 0.
    quat = torch.tensor([-0.8, 0.0, 0.6, 0.0])
    if unique:
        quat = torch.where(quat[0:1] < 0, -quat, quat)
    np.testing.assert_allclose(got, [0.4, -0.1, 0.3] + quat.tolist(), atol=1e-6)


def isaaclab_joint_action(raw, scale, offset, clip):
    """JointAction.process_actions."""
    out = torch.as_tensor(raw) * scale + offset
    return out if clip is None else torch.clamp(out, clip[:, 0], clip[:, 1])


def test_binary_velocity_relative_and_hold_terms_over_ticks():
    clip = torch.tensor([[-0.5, 0.5], [-1.0, 1.0]], dtype=torch.float64)
    terms = [
        {'type': 'relative_joint_position', 'joint_names': ['a0', 'a1'], 'scale': 0.1,
         'offset': 0.0, 'clip': clip.tolist()},
        {'type': 'joint_velocity', 'joint_names': ['a2'], 'scale': 2.0, 'offset': 0.5},
        {'type': 'binary_joint_position', 'joint_names': ['g0'], 'open': 0.04, 'close': 0.0},
    ]
    c = card([{'name': 'last_action'}], 4, terms)
    mapper = ActionMapper(c)
    assert mapper.width == 4 and mapper.velocity_joints == ('a2',)
    for _ in range(100):
        raw = RNG.standard_normal(4).astype(np.float32) * 2
        pos = RNG.uniform(-1, 1, 4)
        got = mapper.map(raw, pos)
        raw64 = torch.as_tensor(raw, dtype=torch.float64)
        # RelativeJointPositionAction: processed (scale, offset, clip) + current positions.
        rel = isaaclab_joint_action(raw64[:2], 0.1, 0.0, clip) + torch.as_tensor(pos[:2])
        vel = isaaclab_joint_action(raw64[2:3], 2.0, 0.5, None)
        # BinaryJointAction.process_actions: actions < 0 close, else open.
        grip = torch.where(raw64[3:] < 0, torch.tensor(0.0, dtype=torch.float64),
                           torch.tensor(0.04, dtype=torch.float64))
        np.testing.assert_allclose(got, torch.cat([rel, vel, grip]).numpy(), atol=1e-12)


def test_zero_width_hold_is_not_counted_in_last_action():
    terms = [{'type': 'joint_position', 'joint_names': ['a0', 'a1', 'a2'], 'scale': 0.5},
             {'type': 'hold_default', 'joint_names': ['g0']}]
    c = card([{'name': 'joint_pos_rel'}, {'name': 'last_action'}], 4 + 3, terms)
    builder, mapper = ObservationBuilder(c), ActionMapper(c)
    assert mapper.width == 3 and builder.inputs['obs'].shape == (1, 7)
    got = mapper.map(np.array([1.0, -1.0, 0.0], np.float32), np.zeros(4))
    np.testing.assert_allclose(got, [0.6, -0.7, 0.3, 0.04])


@pytest.mark.parametrize('ema', [False, True])
def test_position_to_limits_and_ema_over_ticks_and_reset(ema):
    limits = torch.tensor([[-1.0, 2.0], [0.0, 0.5], [-3.0, -1.0]], dtype=torch.float64)
    alpha = torch.tensor([0.3, 1.0, 0.7], dtype=torch.float64)
    term = {'type': 'ema_joint_position_to_limits' if ema else 'joint_position_to_limits',
            'joint_names': ['a0', 'a1', 'a2'], 'scale': 1.5,
            'soft_joint_pos_limits': limits.tolist()}
    if ema:
        term['alpha'] = alpha.tolist()
    mapper = ActionMapper(card([{'name': 'last_action'}], 3, [term]))
    for episode in range(2):
        pos = RNG.uniform(-1, 0.5, 4)
        prev = torch.as_tensor(pos[:3])          # EMA starts from the joints at reset
        mapper.reset()
        for _ in range(50):
            raw = RNG.standard_normal(3).astype(np.float32)
            got = mapper.map(raw, pos)
            # JointPositionToLimitsAction: raw x scale, clamp to [-1, 1], unscale_transform.
            x = torch.clamp(torch.as_tensor(raw, dtype=torch.float64) * 1.5, -1.0, 1.0)
            want = 0.5 * (x + 1.0) * (limits[:, 1] - limits[:, 0]) + limits[:, 0]
            if ema:
                want = torch.clamp(alpha * want + (1.0 - alpha) * prev, limits[:, 0],
                                   limits[:, 1])
                prev = want
            np.testing.assert_allclose(got, want.numpy(), atol=1e-12)


def test_imu_terms_from_a_real_imu_message():
    from sensor_msgs.msg import Imu
    from vision_policy.sources import IMU
    msg = Imu()
    o = msg.orientation
    o.x, o.y, o.z, o.w = 0.0, 0.0, 0.6, -0.8
    a = msg.linear_acceleration
    a.x, a.y, a.z = 0.1, -0.2, 9.81
    extras = IMU.read(msg)
    got = [ObservationBuilder(card([{'name': 'imu_orientation', 'params': params},
                                    {'name': 'imu_lin_acc'}], 7)).build(
        sample(**extras))['obs'].ravel().tolist() for params in ({}, {'make_quat_unique': True})]
    # Isaac Lab: imu.data.quat_w (w, x, y, z); root_quat_w with quat_unique; lin_acc_b.
    quat = torch.tensor([-0.8, 0.0, 0.0, 0.6])
    unique = torch.where(quat[0:1] < 0, -quat, quat)
    np.testing.assert_allclose(got, [quat.tolist() + [0.1, -0.2, 9.81],
                                     unique.tolist() + [0.1, -0.2, 9.81]], atol=1e-6)


def test_base_pos_z_and_episode_clocks_over_a_reset():
    from nav_msgs.msg import Odometry
    from vision_policy.sources import ODOM
    msg = Odometry()
    msg.pose.pose.position.z = 0.42
    terms = [{'name': 'base_pos_z'}, {'name': 'current_time_s'},
             {'name': 'remaining_time_s', 'params': {'episode_length_s': 20.0}}]
    builder = ObservationBuilder(card(terms, 3))
    seen = []
    for tick in range(5):
        if tick == 3:
            builder.reset()
        seen.append(builder.build(sample(**ODOM.read(msg)))['obs'].ravel().tolist())
    # episode_length_buf x step_dt, counted from the reset; max_episode_length_s minus it.
    steps = [0, 1, 2, 0, 1]
    np.testing.assert_allclose(seen, [[0.42, s * 0.02, 20.0 - s * 0.02] for s in steps],
                               atol=1e-6)


def test_importer_maps_the_new_core_funcs():
    from vision_policy.isaaclab import env_yaml
    from vision_policy.isaaclab.report import ImportReport
    obs = 'isaaclab.envs.mdp.observations:'
    env = {'sim': {'dt': 0.005}, 'decimation': 4, 'episode_length_s': 12.5,
           'scene': {'robot': {}},
           'actions': {'j': {'class_type': 'isaaclab.envs.mdp.actions.joint_actions:'
                                           'JointPositionAction', 'joint_names': ['.*']}},
           'observations': {'policy': {
               'q': {'func': obs + 'root_quat_w', 'params': {'make_quat_unique': True}},
               'acc': {'func': obs + 'imu_lin_acc', 'params': {}},
               'z': {'func': obs + 'base_pos_z', 'params': {}},
               'left': {'func': obs + 'remaining_time_s', 'params': {}}}}}
    report = ImportReport('t')
    tr = env_yaml.translate(env, None, JOINTS, report)
    assert report.ok, report.render()
    assert list(tr.terms) == [{'name': 'imu_orientation', 'params': {'make_quat_unique': True}},
                              {'name': 'imu_lin_acc'}, {'name': 'base_pos_z'},
                              {'name': 'remaining_time_s', 'params': {'episode_length_s': 12.5}}]
    assert tr.width == 4 + 3 + 1 + 1


@pytest.mark.parametrize('positive', [True, False])
def test_abs_binary_joint_position_threshold(positive):
    term = {'type': 'abs_binary_joint_position', 'joint_names': ['g0'], 'open': 0.04,
            'close': 0.0, 'threshold': 0.3, 'positive_threshold': positive}
    mapper = ActionMapper(card([{'name': 'last_action'}], 1, [term]))
    for raw in RNG.uniform(-1, 1, 50).astype(np.float32):
        # AbsBinaryJointPositionAction.process_actions: the mask picks the open command.
        t = torch.tensor([raw])
        mask = t > 0.3 if positive else t < 0.3
        want = torch.where(mask, torch.tensor(0.04), torch.tensor(0.0))
        assert mapper.map(np.array([raw]), np.zeros(4))[0] == pytest.approx(float(want))


def test_height_map_source_honours_data_offset_and_refuses_a_short_payload():
    from std_msgs.msg import Float32MultiArray, MultiArrayDimension
    from vision_policy.sources import HEIGHT_MAP, InputError
    msg = Float32MultiArray(data=[9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    msg.layout.dim = [MultiArrayDimension(label='y', size=2),
                      MultiArrayDimension(label='x', size=3)]
    msg.layout.data_offset = 1
    grid = HEIGHT_MAP.read(msg)['height_map']
    np.testing.assert_array_equal(grid, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    msg.layout.data_offset = 2  # one value short of the layout: refused, not a crash
    with pytest.raises(InputError, match='data_offset 2'):
        HEIGHT_MAP.read(msg)
