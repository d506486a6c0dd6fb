"""The importer's training cameras: image.camera, depth_type, one card camera per sensor."""

import copy

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import pytest
from vision_policy.card import card_from_dict, load_card
from vision_policy.isaaclab.env_yaml import camera_block, image_spec
from vision_policy.isaaclab.importer import import_run
from vision_policy.isaaclab.report import ImportReport
from vision_policy.isaaclab.yaml_loader import load_file
from vision_policy.tools.import_isaaclab import main as import_main
import yaml


def test_cartpole_tiled_camera_fixture(fixtures_dir, tmp_path):
    # TiledCameraCfg, PinholeCameraCfg spawn: focal_length 24, horizontal_aperture 20.955,
    # vertical_aperture null, 100x100: fx = fy = 100 x 24 / 20.955 = 114.531, centred.
    run = fixtures_dir / 'cartpole_rgb_camera_direct__minseo104_IsaacLab_UR_reach'
    out = tmp_path / 'card.yaml'
    assert import_main([str(run), '--output', str(out)]) == 3  # effort action: see fixtures
    data = yaml.safe_load(out.read_text())
    assert data['image']['camera'] == {'width': 100, 'height': 100, 'focal_length': 24.0,
                                       'horizontal_aperture': 20.955}
    image = data['image']
    card = card_from_dict({
        'control_dt': 0.02, 'joint_names': ['j'], 'image': image,
        'inputs': [{'name': 'image', 'shape': [1, 100, 100, 3], 'group': 'camera'}],
        'observations': {'camera': {'terms': [{'name': 'image'}]}},
        'action': {'joint_names': ['j']}})
    camera = card.image.camera
    assert camera.k == pytest.approx((114.53114, 114.53114, 50.0, 50.0))


def test_ray_caster_camera_k_from_pattern():
    # RayCasterCamera._compute_intrinsic_matrices: fx = W f / ha = 80 x 24 / 20.955 =
    # 91.6249; va = ha x 60 / 80, so fy = fx; cx = offset x fx + W / 2 = 0.1 x 91.6249 + 40.
    cfg = {'class_type': 'isaaclab.sensors.ray_caster.ray_caster_camera:RayCasterCamera',
           'pattern_cfg': {'focal_length': 24.0, 'horizontal_aperture': 20.955,
                           'vertical_aperture': None, 'horizontal_aperture_offset': 0.1,
                           'vertical_aperture_offset': 0.0, 'width': 80, 'height': 60}}
    block, notes = camera_block(cfg)
    assert block['width'] == 80 and block['height'] == 60
    assert block['K'] == pytest.approx([91.62491, 91.62491, 49.162491, 30.0])
    assert notes == []
    # An explicit vertical aperture is used: fy = 60 x 24 / 10 = 144.
    cfg['pattern_cfg']['vertical_aperture'] = 10.0
    assert camera_block(cfg)[0]['K'][1] == pytest.approx(144.0)


def test_camera_spawn_fields_isaaclab_ignores_are_noted():
    cfg = {'width': 64, 'height': 48,
           'spawn': {'projection_type': 'pinhole', 'focal_length': 18.0,
                     'horizontal_aperture': 20.955, 'vertical_aperture': 20.955,
                     'horizontal_aperture_offset': 0.5, 'vertical_aperture_offset': 0.0}}
    report = ImportReport('test')
    spec = image_spec(cfg, 'distance_to_camera', report=report)
    assert spec['camera'] == {'width': 64, 'height': 48, 'focal_length': 18.0,
                              'horizontal_aperture': 20.955}
    assert spec['depth_type'] == 'distance_to_camera'
    assert any('vertical_aperture 20.955 ignored' in w for w in report.warnings)
    assert any('horizontal_aperture_offset 0.5 ignored' in w for w in report.warnings)
    # Isaac Lab's 'depth' and 'distance_to_image_plane' are z-depth.
    for data_type in ('depth', 'distance_to_image_plane'):
        assert image_spec(cfg, data_type)['depth_type'] == 'distance_to_image_plane'
    assert 'depth_type' not in image_spec(cfg, 'rgb')


def test_non_pinhole_camera_gets_no_block():
    cfg = {'width': 64, 'height': 48, 'spawn': {'projection_type': 'fisheyePolynomial',
                                                'focal_length': 18.0,
                                                'horizontal_aperture': 20.955}}
    report = ImportReport('test')
    spec = image_spec(cfg, 'rgb', report=report)
    assert 'camera' not in spec
    assert "camera spawn 'fisheyePolynomial'" in report.warnings[0]


# ---------------------------------------------------------------- several cameras

SO101_RUN = 'so101_pickplace_bowl__JianwenCao_robot_learning'
CARTPOLE_RUN = 'cartpole_rgb_camera_direct__minseo104_IsaacLab_UR_reach'
SO101 = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
IMAGE_FUNC = 'isaaclab.envs.mdp.observations:image'


class IsaacLabDumper(yaml.SafeDumper):
    """Write tuples and slices with the two Python tags Isaac Lab's dumps carry."""


IsaacLabDumper.add_representer(tuple, lambda d, v: d.represent_sequence(
    'tag:yaml.org,2002:python/tuple', list(v)))
IsaacLabDumper.add_representer(slice, lambda d, v: d.represent_sequence(
    'tag:yaml.org,2002:python/object/apply:builtins.slice', [v.start, v.stop, v.step]))


def camera_cfg(fixtures_dir, width, height, focal_length, data_type):
    """Return the cartpole fixture's TiledCameraCfg (a direct env's), resized and refocused."""
    env = load_file(fixtures_dir / CARTPOLE_RUN / 'params' / 'env.yaml')
    cfg = copy.deepcopy(env['tiled_camera'])
    cfg.update(width=width, height=height, data_types=[data_type])
    cfg['spawn']['focal_length'] = focal_length
    return cfg


def image_group(policy_group, sensor, data_type):
    """Return an observation group of one Isaac Lab image term, shaped as the fixture's."""
    group = {k: v for k, v in policy_group.items() if not isinstance(v, dict)}
    term = copy.deepcopy(policy_group['joint_pos'])
    term.update(func=IMAGE_FUNC, params={'sensor_cfg': {'name': sensor, 'joint_names': None},
                                         'data_type': data_type, 'normalize': True})
    group['image'] = term
    return group


def so101_with_cameras(fixtures_dir, tmp_path, cameras):
    """
    Write the so101 run with its vision groups on: cameras is [(group, sensor, cfg, type)].

    The policy group keeps its built-in terms (joint_pos, joint_vel, last_action: 18
    values); the exported ONNX takes obs and one input per image group.
    """
    run = fixtures_dir / SO101_RUN
    env = load_file(run / 'params' / 'env.yaml')
    agent = load_file(run / 'params' / 'agent.yaml')
    policy = env['observations']['policy']
    for name in ('gripper_state', 'bowl_xy', 'ee_proj_xy', 'ee_to_bowl_xy',
                 'cube_pos_xy_noisy'):
        del policy[name]  # the project's own terms (test_isaaclab_fixtures refuses them)
    del env['observations']['wrist_image']
    inputs = [helper.make_tensor_value_info('obs', TensorProto.FLOAT, [1, 18])]
    for group, sensor, cfg, data_type in cameras:
        env['scene'][sensor] = cfg
        env['observations'][group] = image_group(policy, sensor, data_type)
        agent['obs_groups']['policy'].append(group)
        c, h, w = (3 if data_type == 'rgb' else 1), cfg['height'], cfg['width']
        shape = [1, h, w, c] if c == 3 else [1, c, h, w]  # NHWC colour, NCHW depth
        inputs.append(helper.make_tensor_value_info(group, TensorProto.FLOAT, shape))
    folder = tmp_path / 'run'
    (folder / 'params').mkdir(parents=True)
    (folder / 'exported').mkdir()
    for name, data in (('env.yaml', env), ('agent.yaml', agent)):
        (folder / 'params' / name).write_text(yaml.dump(data, Dumper=IsaacLabDumper))
    weights = np.zeros((18, 6), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node('MatMul', ['obs', 'W'], ['actions'])], 'so101', inputs,
        [helper.make_tensor_value_info('actions', TensorProto.FLOAT, [1, 6])],
        [numpy_helper.from_array(weights, 'W')])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]),
              folder / 'exported' / 'policy.onnx')
    return folder


def test_two_camera_sensors_give_two_named_cameras(fixtures_dir, tmp_path):
    # A wrist RGB camera (64x48, f 18) and a scene depth camera (80x60, f 24, range).
    run = so101_with_cameras(fixtures_dir, tmp_path, [
        ('wrist_image', 'wrist_cam', camera_cfg(fixtures_dir, 64, 48, 18.0, 'rgb'), 'rgb'),
        ('scene_depth', 'scene_cam', camera_cfg(fixtures_dir, 80, 60, 24.0,
                                                'distance_to_camera'), 'distance_to_camera')])
    out = tmp_path / 'card.yaml'
    assert import_main([str(run), '--joint-names', ','.join(SO101), '--output',
                        str(out)]) == 0
    data = yaml.safe_load(out.read_text())
    assert 'image' not in data and list(data['images']) == ['wrist_cam', 'scene_cam']
    wrist, scene = data['images']['wrist_cam'], data['images']['scene_cam']
    assert (wrist['data_type'], wrist['resize'], wrist['layout']) == ('rgb', [64, 48], 'NHWC')
    assert wrist['camera'] == {'width': 64, 'height': 48, 'focal_length': 18.0,
                               'horizontal_aperture': 20.955}
    assert (scene['data_type'], scene['depth_type'], scene['resize'], scene['layout']) == (
        'depth', 'distance_to_camera', [80, 60], 'NCHW')
    assert data['observations']['wrist_image'] == {
        'terms': [{'name': 'image', 'params': {'camera': 'wrist_cam'}}]}
    assert data['observations']['scene_depth']['terms'] == [
        {'name': 'image', 'params': {'camera': 'scene_cam'}}]
    assert [(i['name'], i['shape']) for i in data['inputs']] == [
        ('obs', [1, 18]), ('wrist_image', [1, 48, 64, 3]), ('scene_depth', [1, 1, 60, 80])]
    card = load_card(out)
    assert [spec.name for spec in card.images] == ['wrist_cam', 'scene_cam']
    # Each camera's own intrinsics: fx = W f / ha = 64 x 18 / 20.955 and 80 x 24 / 20.955.
    assert card.camera('wrist_cam').camera.k == pytest.approx((54.97495, 54.97495, 32.0, 24.0))
    assert card.camera('scene_cam').camera.k == pytest.approx((91.62491, 91.62491, 40.0, 30.0))


def test_one_camera_keeps_the_single_image_section(fixtures_dir, tmp_path):
    run = so101_with_cameras(fixtures_dir, tmp_path, [
        ('wrist_image', 'wrist_cam', camera_cfg(fixtures_dir, 64, 48, 18.0, 'rgb'), 'rgb')])
    out = tmp_path / 'card.yaml'
    assert import_main([str(run), '--joint-names', ','.join(SO101), '--output',
                        str(out)]) == 0
    data = yaml.safe_load(out.read_text())
    assert 'images' not in data and data['image']['resize'] == [64, 48]
    assert data['observations']['wrist_image'] == {'terms': [{'name': 'image'}]}
    assert load_card(out).image.name == ''


def test_rgb_and_depth_of_one_sensor_are_two_cameras(fixtures_dir, tmp_path):
    # One RGB-D sensor read by two terms: a camera per data type, named with it.
    cfg = camera_cfg(fixtures_dir, 64, 48, 18.0, 'rgb')
    cfg['data_types'] = ['rgb', 'distance_to_image_plane']
    run = so101_with_cameras(fixtures_dir, tmp_path, [
        ('wrist_rgb', 'wrist_cam', cfg, 'rgb'),
        ('wrist_depth', 'wrist_cam', cfg, 'distance_to_image_plane')])
    result = import_run(run, joint_names=SO101)
    assert result.card is not None, result.report.render()
    assert [s.name for s in result.card.images] == ['wrist_cam_rgb',
                                                    'wrist_cam_distance_to_image_plane']
    assert any("several cameras ['wrist_cam_rgb', 'wrist_cam_distance_to_image_plane']" in w
               for w in result.report.warnings)


def test_a_camera_name_that_is_no_identifier_is_a_problem(fixtures_dir, tmp_path):
    run = so101_with_cameras(fixtures_dir, tmp_path, [
        ('wrist_image', 'wrist-cam', camera_cfg(fixtures_dir, 64, 48, 18.0, 'rgb'), 'rgb'),
        ('scene_rgb', 'scene_cam', camera_cfg(fixtures_dir, 80, 60, 24.0, 'rgb'), 'rgb')])
    result = import_run(run, joint_names=SO101)
    assert result.card is None
    assert "camera 'wrist-cam' (scene.wrist-cam) cannot name a card camera" in \
        result.report.render()
