"""The importer's training camera: image.camera and depth_type from Isaac Lab camera cfgs."""

import pytest
from vision_policy.card import card_from_dict
from vision_policy.isaaclab.env_yaml import camera_block, image_spec
from vision_policy.isaaclab.report import ImportReport
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
