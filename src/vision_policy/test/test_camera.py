"""The camera contract without ROS: card image.camera, FOV crop, CameraInfo checks, depth rays."""

from dataclasses import replace
import math
import re

from conftest import rgb_image, workspace_root  # noqa: I100 (test helper)
import cv2
import numpy as np
import pytest
from vision_policy.action import SafetyLimits
from vision_policy.camera import (camera_from_info, CameraError, CameraInfoError, Distortion,
                                  FovError, FrameSizeError, Intrinsics, match_fov,
                                  needs_camera_info, ray_distance_scale, setup_camera,
                                  undistort_maps, Undistortion)
from vision_policy.card import card_from_dict, CardError, ImageSpec, load_card
from vision_policy.core import PolicyCore
from vision_policy.image import ImagePipeline
from vision_policy.monitor import Ages, Hold, HoldReason, InputMonitor
from vision_policy.runtime import load_policy, PolicyRuntime, RuntimeOptions
import yaml

# Training camera of the hand-computed cases: 100x100, f = 50 px, centred (90 x 90 deg).
TRAINING = Intrinsics(100, 100, 50.0, 50.0, 50.0, 50.0)


def ros_k(fx, fy, cx, cy):
    """Row-major 3x3 K as sensor_msgs/CameraInfo carries it."""
    return [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]


# ---------------------------------------------------------------- card image.camera

def card_data(**camera):
    data = yaml.safe_load((workspace_root() / 'models' / 'reach_policy.yaml').read_text())
    if camera:
        data['image']['camera'] = camera
    return data


def test_card_pinhole_fields_give_isaaclab_intrinsics():
    # Isaac Lab's Camera: fx = fy = width x focal_length / horizontal_aperture, centred.
    card = card_from_dict(card_data(width=100, height=50, focal_length=24.0,
                                    horizontal_aperture=20.955, vertical_aperture=None))
    cam = card.image.camera
    assert (cam.width, cam.height) == (100, 50)
    assert cam.fx == pytest.approx(100 * 24.0 / 20.955) == pytest.approx(114.53114)
    assert cam.fy == cam.fx
    assert (cam.cx, cam.cy) == (50.0, 25.0)
    # A vertical aperture for square pixels is accepted; the card writes back what it read.
    card = card_from_dict(card_data(width=100, height=50, focal_length=24.0,
                                    horizontal_aperture=20.955, vertical_aperture=10.4775))
    assert card_from_dict(card.to_dict()) == card
    assert card.to_dict()['image']['camera']['focal_length'] == 24.0


def test_card_explicit_k_round_trips():
    card = card_from_dict(card_data(width=640, height=480, K=[400, 410.5, 330, 235]))
    assert card.image.camera.k == (400.0, 410.5, 330.0, 235.0)
    assert card.image.camera.pinhole is None
    assert card_from_dict(card.to_dict()) == card
    assert card.to_dict()['image']['camera'] == {'width': 640, 'height': 480,
                                                 'K': [400.0, 410.5, 330.0, 235.0]}


@pytest.mark.parametrize('camera, message', [
    ({'height': 480, 'K': [1, 1, 1, 1]}, 'image.camera.width: required'),
    ({'width': 0, 'height': 480, 'K': [1, 1, 1, 1]}, 'image.camera.width: expected pixels'),
    ({'width': 64, 'height': 64}, 'give either K'),
    ({'width': 64, 'height': 64, 'K': [50, 50, 32, 32], 'focal_length': 24.0},
     'give either K'),
    ({'width': 64, 'height': 64, 'K': [50, 50, 32]}, 'image.camera.K: expected 4 values'),
    ({'width': 64, 'height': 64, 'K': [0, 50, 32, 32]}, 'expected fx, fy > 0'),
    ({'width': 64, 'height': 64, 'K': [50, 50, 80, 32]}, 'lies outside the 64x64 image'),
    ({'width': 64, 'height': 64, 'K': [50, float('nan'), 32, 32]}, 'image.camera.K[1]'),
    ({'width': 64, 'height': 64, 'focal_length': 24.0},
     'image.camera.horizontal_aperture: required'),
    ({'width': 64, 'height': 64, 'focal_length': -1.0, 'horizontal_aperture': 20.0},
     'image.camera.focal_length: expected > 0'),
    ({'width': 64, 'height': 32, 'focal_length': 24.0, 'horizontal_aperture': 20.0,
      'vertical_aperture': 20.0}, 'image.camera.vertical_aperture: Isaac Lab renders square'),
    ({'width': 64, 'height': 64, 'focal_length': 24.0, 'horizontal_aperture': 20.0,
      'horizontal_aperture_offset': 1.0}, 'image.camera.horizontal_aperture_offset'),
    ({'width': 64, 'height': 64, 'K': [50, 50, 32, 32], 'lens': 'wide'},
     "image.camera: unknown field(s) ['lens']"),
])
def test_card_camera_errors_name_the_field(camera, message):
    with pytest.raises(CardError, match=re.escape(message)):
        card_from_dict(card_data(**camera))


def test_card_depth_type():
    data = card_data()
    data['image']['depth_type'] = 'distance_to_camera'
    with pytest.raises(CardError, match='image.depth_type: only for depth images'):
        card_from_dict(data)
    data['image'].update(data_type='depth', source_encodings=['16UC1'], normalize='none')
    data['inputs'][1]['shape'] = [1, 1, 64, 64]
    card = card_from_dict(data)
    assert card.image.depth_type == 'distance_to_camera'
    assert card_from_dict(card.to_dict()) == card
    data['image']['depth_type'] = 'range'
    with pytest.raises(CardError, match=r"image.depth_type: expected one of \['distance_to_"):
        card_from_dict(data)


# ---------------------------------------------------------------- CameraInfo checks

def test_camera_info_to_isaaclab_pixel_convention():
    # ROS puts pixel centres at integers: a centred 640x480 camera has cx = 319.5.
    real, warnings = camera_from_info(640, 480, ros_k(500.0, 500.0, 319.5, 239.5))
    assert real == Intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0)
    assert warnings == ()
    _, warnings = camera_from_info(640, 480, ros_k(500.0, 500.0, 319.5, 239.5),
                                   d=[0.1, 0.0, 0.0, 0.0, 0.0])
    assert 'distortion [0.1, 0.0, 0.0, 0.0, 0.0] is ignored' in warnings[0]


@pytest.mark.parametrize('args, extra, message', [
    ((0, 0, [0.0] * 9), {}, 'size 0x0'),
    ((640, 480, [0.0] * 9), {}, 'all zeros: the camera is not calibrated'),
    ((640, 480, ros_k(math.nan, 500, 319.5, 239.5)), {}, 'contains NaN/Inf'),
    ((640, 480, ros_k(500, math.inf, 319.5, 239.5)), {}, 'contains NaN/Inf'),
    ((640, 480, [500.0] * 4), {}, 'expected 9 values'),
    ((640, 480, ros_k(-500, 500, 319.5, 239.5)), {}, 'expected fx, fy > 0'),
    ((640, 480, [500, 2, 319.5, 0, 500, 239.5, 0, 0, 1]), {}, 'pinhole K'),
    ((640, 480, ros_k(500, 500, 700, 239.5)), {}, 'lies outside'),
    ((640, 480, ros_k(500, 500, 319.5, 239.5)), {'binning_x': 2}, 'binning'),
    ((640, 480, ros_k(500, 500, 319.5, 239.5)), {'roi': (10, 10, 100, 100)},
     'region of interest'),
])
def test_camera_info_refused_with_the_reason(args, extra, message):
    with pytest.raises(CameraInfoError, match=message):
        camera_from_info(*args, **extra)


# ---------------------------------------------------------------- field-of-view crop

def test_crop_by_hand_wider_real_camera():
    # Real 200x100, f = 25 px, centred: scale 25 / 50 = 0.5 real px per training px, so
    # the training view is 50x50 real px around the centre (100, 50): x 75..125, y 25..75.
    real, _ = camera_from_info(200, 100, ros_k(25.0, 25.0, 99.5, 49.5))
    match = match_fov(TRAINING, real)
    assert match.crop == (75, 25, 50, 50)
    assert match.training_fov_deg == pytest.approx((90.0, 90.0))
    # 2 atan(100 / 25) and 2 atan(50 / 25)
    assert match.real_fov_deg == pytest.approx((151.9275, 126.8699), abs=1e-4)
    assert match.warnings == ()


def test_crop_by_hand_twin_cameras():
    # Training: the twin's fovy 55 at 640x480, f = 240 / tan(27.5 deg) = 461.036.
    # Real: fovy 70, f = 240 / tan(35 deg) = 342.757; ratio 0.743447, so
    # w = 640 x 0.743447 = 475.8 -> 476, h = 356.9 -> 357, x = 320 - 237.9 = 82.1 -> 82,
    # y = 240 - 178.4 = 61.6 -> 62.
    f_t = 240 / math.tan(math.radians(27.5))
    f_r = 240 / math.tan(math.radians(35.0))
    real, _ = camera_from_info(640, 480, ros_k(f_r, f_r, 319.5, 239.5))
    match = match_fov(Intrinsics(640, 480, f_t, f_t, 320.0, 240.0), real)
    assert match.crop == (82, 62, 476, 357)
    assert match.training_fov_deg == pytest.approx((69.5282, 55.0), abs=1e-4)
    assert match.real_fov_deg == pytest.approx((86.0671, 70.0), abs=1e-4)


def test_same_camera_crops_the_whole_image():
    # A card K rounded to 4 decimals still matches the camera it was written from.
    f = 240 / math.tan(math.radians(27.5))
    real, _ = camera_from_info(640, 480, ros_k(f, f, 319.5, 239.5))
    training = Intrinsics(640, 480, round(f, 4), round(f, 4), 320.0, 240.0)
    assert match_fov(training, real).crop == (0, 0, 640, 480)


def test_narrower_camera_refused_naming_both_fields_of_view():
    # f = 100 px on 100 px: 2 atan(0.5) = 53.13 deg against training's 90.
    real, _ = camera_from_info(100, 100, ros_k(100.0, 100.0, 49.5, 49.5))
    with pytest.raises(FovError, match=r'sees 53.13 x 53.13 deg, the policy was trained on '
                                       r'90.00 x 90.00 deg: the horizontal field of view'):
        match_fov(TRAINING, real)
    # Wide enough across but not vertically: 200x60 at f = 50 (2 atan(0.6) = 61.93 deg).
    real, _ = camera_from_info(200, 60, ros_k(50.0, 50.0, 99.5, 29.5))
    with pytest.raises(FovError, match='the vertical field of view is narrower'):
        match_fov(TRAINING, real)


def test_principal_point_off_centre_warns_and_moves_the_crop():
    # Real 200x200, f = 50 (scale 1), principal point (120, 100): crop x = 120 - 50 = 70;
    # training's principal point lies at the centre (100, 100) of a 200x200 image: 20 px off.
    real, _ = camera_from_info(200, 200, ros_k(50.0, 50.0, 119.5, 99.5))
    match = match_fov(TRAINING, real)
    assert match.crop == (70, 50, 100, 100)
    assert match.principal_offset_px == pytest.approx((20.0, 0.0))
    assert '(+20.0, +0.0) px' in match.warnings[0]
    # 2 px off: no warning.
    real, _ = camera_from_info(200, 200, ros_k(50.0, 50.0, 101.5, 99.5))
    assert match_fov(TRAINING, real).warnings == ()
    # Principal point at 170: the training view would need x 120..220 of a 200 px image.
    real, _ = camera_from_info(200, 200, ros_k(50.0, 50.0, 169.5, 99.5))
    with pytest.raises(FovError, match=r'horizontal crop \[120.0, 220.0\) leaves the image'):
        match_fov(TRAINING, real)


# ---------------------------------------------------------------- depth: z -> range

def test_ray_distance_scale_by_hand():
    # 4x2 image, f = 2, ROS principal point (1.5, 0.5). Pixel (0, 0): a = (0 - 1.5) / 2 =
    # -0.75, b = (0 - 0.5) / 2 = -0.25, sqrt(1 + 0.5625 + 0.0625) = sqrt(1.625).
    real, _ = camera_from_info(4, 2, ros_k(2.0, 2.0, 1.5, 0.5))
    scale = ray_distance_scale(real)
    assert scale.shape == (2, 4) and scale.dtype == np.float32
    a = np.array([-0.75, -0.25, 0.25, 0.75])
    b = np.array([-0.25, 0.25])
    want = np.sqrt(1 + a[None, :] ** 2 + b[:, None] ** 2)
    np.testing.assert_allclose(scale, want, rtol=1e-7)
    assert scale[0, 0] == pytest.approx(math.sqrt(1.625))
    assert scale[1, 1] == pytest.approx(math.sqrt(1.125))
    # A crop takes the same factors of the pixels it keeps.
    np.testing.assert_array_equal(ray_distance_scale(real, (1, 1, 2, 1)), scale[1:2, 1:3])


def depth_spec(**kw):
    fields = {'width': 4, 'height': 2, 'data_type': 'depth', 'normalize': 'none',
              'source_encodings': ('16UC1', '32FC1'), 'interpolation': 'nearest',
              'depth_type': 'distance_to_camera'}
    fields.update(kw)
    return ImageSpec(**fields)


def test_depth_pipeline_converts_z_to_range_with_invalid_pixels():
    real, _ = camera_from_info(4, 2, ros_k(2.0, 2.0, 1.5, 0.5))
    spec = depth_spec(max_depth=2.5)
    setup = setup_camera(spec, real, fov_matching=True)
    pipeline = ImagePipeline(spec)
    pipeline.depth_scale = setup.depth_scale
    scale = ray_distance_scale(real)
    # 16UC1 millimetres: 2000 mm everywhere but one invalid 0.
    mm = np.full((2, 4, 1), 2000, dtype=np.uint16)
    mm[0, 1] = 0
    out = pipeline.process(mm, '16UC1').copy()
    want = np.float32(2.0) * scale
    want[0, 1] = 0.0
    want = np.minimum(want, np.float32(2.5))  # max_depth after the conversion
    np.testing.assert_allclose(out[0], want, rtol=1e-6)
    assert out[0, 0, 0] == pytest.approx(2.5)  # 2 x 1.2748 = 2.55, clipped
    # 32FC1 metres: NaN and inf are invalid (0), as the image term's inf -> 0.
    metres = np.full((2, 4, 1), 1.0, dtype=np.float32)
    metres[0, 0], metres[1, 3] = np.nan, np.inf
    out = pipeline.process(metres, '32FC1')
    want = scale.copy()
    want[0, 0] = want[1, 3] = 0.0
    np.testing.assert_allclose(out[0], want, rtol=1e-6)


def test_setup_decisions():
    spec = depth_spec(depth_type='distance_to_image_plane')
    real, _ = camera_from_info(4, 2, ros_k(2.0, 2.0, 1.5, 0.5))
    assert setup_camera(spec, real, True).depth_scale is None  # z-depth in and out
    assert not needs_camera_info(spec, True)
    assert needs_camera_info(depth_spec(), False)  # distance_to_camera needs K regardless
    card = load_card(workspace_root() / 'models' / 'reach_policy_camera.yaml')
    assert needs_camera_info(card.image, True) and not needs_camera_info(card.image, False)
    # The card's explicit crop wins over field-of-view matching (and needs no CameraInfo).
    with_crop = ImageSpec(**{**vars(card.image), 'crop': (0, 0, 320, 240)})
    assert not needs_camera_info(with_crop, True)
    real, _ = camera_from_info(640, 480, ros_k(300.0, 300.0, 319.5, 239.5))
    setup = setup_camera(with_crop, real, True)
    assert setup.crop == (0, 0, 320, 240) and setup.match is None
    small, _ = camera_from_info(200, 100, ros_k(100.0, 100.0, 99.5, 49.5))
    with pytest.raises(CameraError, match=r'image.crop \[0, 0, 320, 240\] does not fit'):
        setup_camera(with_crop, small, True)


# ---------------------------------------------------------------- PolicyCore

def camera_core():
    path = workspace_root() / 'models'
    session, card = load_policy(path / 'reach_policy.onnx', path / 'reach_policy_camera.yaml',
                                RuntimeOptions(('CPUExecutionProvider',)))
    limits = SafetyLimits.from_card(card, [-math.inf], [math.inf], [0.1])
    return PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs), limits)


def test_core_crops_to_the_training_field_of_view():
    core = camera_core()
    f = 240 / math.tan(math.radians(35.0))
    real, _ = camera_from_info(640, 480, ros_k(f, f, 319.5, 239.5))
    setup = core.update_camera(real, True)
    assert setup.crop == (82, 62, 476, 357)
    assert dict(setup.values())['camera_crop'] == '[82, 62, 476, 357]'
    assert dict(setup.values())['training_fov_deg'] == '69.53 x 55.00 deg'
    # The core's image is the card pipeline with that crop, bit for bit.
    img = rgb_image(640, 480, seed=3)
    core.set_image(img, 'rgb8')
    pos = np.array([0.0, 0.3, -0.6])
    core.step(pos, np.zeros(3))
    reference = ImagePipeline(ImageSpec(**{**vars(core.card.image), 'crop': setup.crop}))
    np.testing.assert_array_equal(core.tick.inputs['image'][0], reference.process(img, 'rgb8'))
    # The same calibration again changes nothing; another one is refused, the crop kept.
    assert core.update_camera(real, True) is None
    other, _ = camera_from_info(640, 480, ros_k(f + 1.0, f + 1.0, 319.5, 239.5))
    with pytest.raises(CameraInfoError, match='camera_info changed while configured'):
        core.update_camera(other, True)
    assert core.camera.crop == (82, 62, 476, 357)
    # A frame of another size than camera_info's is refused.
    with pytest.raises(FrameSizeError, match='image is 320x240 but camera_info says 640x480'):
        core.check_image('rgb8', 320, 240)
    with pytest.raises(FrameSizeError):
        core.set_image(rgb_image(320, 240), 'rgb8')


def test_core_refuses_a_narrower_camera_and_keeps_its_pipeline():
    core = camera_core()
    # fovy 40 < 55: f = 240 / tan(20 deg) = 659.39, horizontal 2 atan(320 / 659.39) = 51.77
    f = 240 / math.tan(math.radians(40.0 / 2))
    real, _ = camera_from_info(640, 480, ros_k(f, f, 319.5, 239.5))
    with pytest.raises(FovError, match='sees 51.77 x 40.00 deg, the policy was trained on '
                                       '69.53 x 55.00 deg'):
        core.update_camera(real, True)
    assert core.camera is None


def test_monitor_condition_holds_until_cleared():
    monitor = InputMonitor(['joint_states', 'image'])
    monitor.joints_valid = True
    for name in ('joint_states', 'image'):
        monitor.accept(name, 1_000_000_000)
    ages = Ages(1.0, 1.0, 1.0)
    assert monitor.decide(1_000_000_000, ages) is None
    hold = Hold(HoldReason.NO_CAMERA_INFO, '/camera/camera_info')
    monitor.set_condition('camera_info', hold)
    assert monitor.decide(1_000_000_000, ages) == hold
    monitor.set_condition('camera_info', None)
    assert monitor.decide(1_000_000_000, ages) is None
    # A new crop: the frame held was preprocessed without it, so wait for the next one.
    monitor.forget('image')
    assert monitor.decide(1_000_000_000, ages) == Hold(HoldReason.NO_INPUT, 'image')


def depth_core(tmp_path):
    """Build a depth policy (actions = W @ flatten(depth)) and its distance_to_camera card."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    weights = np.random.default_rng(2).standard_normal((8, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node('Flatten', ['depth'], ['flat']),
         helper.make_node('MatMul', ['flat', 'W'], ['actions'])], 'depth',
        [helper.make_tensor_value_info('depth', TensorProto.FLOAT, [1, 1, 2, 4])],
        [helper.make_tensor_value_info('actions', TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(weights, 'W')])
    path = tmp_path / 'depth.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), path)
    card = card_data()
    card['inputs'] = [{'name': 'depth', 'shape': [1, 1, 2, 4], 'group': 'camera'}]
    card['observations'] = {'camera': {'terms': [{'name': 'image'}]}}
    card['image'] = {'data_type': 'depth', 'source_encodings': ['16UC1'], 'resize': [4, 2],
                     'interpolation': 'nearest', 'depth_type': 'distance_to_camera'}
    path.with_suffix('.yaml').write_text(yaml.safe_dump(card))
    session, card = load_policy(path, None, RuntimeOptions(('CPUExecutionProvider',)))
    limits = SafetyLimits.from_card(card, [-math.inf], [math.inf], [0.1])
    return PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs), limits)


def test_core_feeds_the_policy_range_from_z_depth(tmp_path):
    core = depth_core(tmp_path)
    assert needs_camera_info(core.card.image, fov_matching=False)
    real, _ = camera_from_info(4, 2, ros_k(2.0, 2.0, 1.5, 0.5))
    setup = core.update_camera(real, fov_matching=True)
    assert setup.crop is None and dict(setup.values())['camera_depth_conversion'] == 'true'
    mm = np.full((2, 4, 1), 3000, dtype=np.uint16)  # 3 m of z everywhere
    core.set_image(mm, '16UC1')
    core.step(np.array([0.0, 0.3, -0.6]), np.zeros(3))
    np.testing.assert_allclose(core.tick.inputs['depth'][0, 0],
                               np.float32(3.0) * ray_distance_scale(real), rtol=1e-6)
    assert core.tick.inputs['depth'][0, 0, 0, 0] == pytest.approx(3.0 * math.sqrt(1.625))


# ---------------------------------------------------------------- undistortion

# 201x201, f = 100 px, ROS principal point (100, 100): pixel 150 of the centre row looks
# along x = (150 - 100) / 100 = 0.5.
LENS_K = ros_k(100.0, 100.0, 100.0, 100.0)


def lens(model, d, size=201):
    real, warnings = camera_from_info(size, size, LENS_K, d, distortion_model=model,
                                      undistort=True)
    assert warnings == ()
    return real


def test_undistort_maps_plumb_bob_by_hand_and_by_opencv():
    # Radial k1 = -0.16: x_d = x (1 + k1 r^2). Centre row, x = 0.5: 0.5 x 0.96 = 0.48, so
    # pixel 150 samples the lens at 100 + 48 = 148. Diagonal (0.5, 0.5): r^2 = 0.5,
    # 0.5 x 0.92 = 0.46 -> (146, 146).
    real = lens('plumb_bob', [-0.16, 0.0, 0.0, 0.0, 0.0])
    assert real.distortion == Distortion('plumb_bob', (-0.16, 0.0, 0.0, 0.0, 0.0))
    map_x, map_y = undistort_maps(real)
    assert map_x.shape == (201, 201) and map_x.dtype == np.float32
    assert (map_x[100, 150], map_y[100, 150]) == (pytest.approx(148.0, abs=1e-4), 100.0)
    assert (map_x[150, 150], map_y[150, 150]) == (pytest.approx(146.0, abs=1e-4),
                                                  pytest.approx(146.0, abs=1e-4))
    # OpenCV's own inverse takes the distorted points back to their pinhole pixels.
    k, d = real.cv_matrix(), np.array(real.distortion.coefficients)
    back = cv2.undistortPoints(np.array([[[148.0, 100.0]], [[146.0, 146.0]]]), k, d, P=k)
    np.testing.assert_allclose(back[:, 0], [[150.0, 100.0], [150.0, 150.0]], atol=1e-3)


def test_undistort_maps_rational_polynomial_by_hand():
    # k4 = 0.2 (the first denominator term): x_d = x / (1 + k4 r^2) = 0.5 / 1.05 = 0.476190,
    # pixel 150 samples 100 + 47.6190; the tangential p1 = 0.01 adds 2 p1 x y + ... = 0 at
    # y = 0 to x_d and p1 (r^2 + 2 y^2) = 0.0025 to y_d: 0.25 px down.
    real = lens('rational_polynomial', [0.0, 0.0, 0.01, 0.0, 0.0, 0.2, 0.0, 0.0])
    map_x, map_y = undistort_maps(real)
    assert map_x[100, 150] == pytest.approx(100 + 100 * 0.5 / 1.05, abs=1e-4)
    assert map_y[100, 150] == pytest.approx(100.25, abs=1e-4)
    k, d = real.cv_matrix(), np.array(real.distortion.coefficients)
    back = cv2.undistortPoints(np.array([[[map_x[100, 150], map_y[100, 150]]]]), k, d, P=k)
    np.testing.assert_allclose(back[0, 0], [150.0, 100.0], atol=1e-3)


def test_undistort_maps_equidistant_fisheye_by_hand():
    # cv2.fisheye: theta = atan(r), theta_d = theta (1 + k1 theta^2); x_d = theta_d / r x.
    # Pixel 200 of the centre row: x = 1, theta = pi / 4, theta_d = 0.785398 x 1.061685 =
    # 0.833845 -> 100 + 83.3845.
    real = lens('equidistant', [0.1, 0.0, 0.0, 0.0])
    map_x, map_y = undistort_maps(real)
    theta = math.pi / 4
    assert map_x[100, 200] == pytest.approx(100 + 100 * theta * (1 + 0.1 * theta ** 2),
                                            abs=1e-3)
    assert map_x[100, 200] == pytest.approx(183.3845, abs=1e-3)
    k, d = real.cv_matrix(), np.array(real.distortion.coefficients)
    back = cv2.fisheye.undistortPoints(np.array([[[map_x[100, 200], 100.0]]]), k, d, P=k)
    np.testing.assert_allclose(back[0, 0], [200.0, 100.0], atol=1e-3)


def test_a_distorted_point_lands_on_its_pinhole_pixel():
    # One bright source pixel where the lens images pixel (150, 100)'s ray (148, 100):
    # undistorted, it sits at (150, 100), for depth (nearest) and colour (bilinear: on a
    # whole-pixel sample the weight is all on it).
    real = lens('plumb_bob', [-0.16, 0.0, 0.0, 0.0, 0.0])
    depth = np.zeros((201, 201, 1), dtype=np.uint16)
    depth[100, 148] = 1234
    out = Undistortion(real, nearest=True)(depth)
    assert out.shape == (201, 201, 1) and out.dtype == np.uint16
    assert out[100, 150, 0] == 1234
    assert out[100, 148, 0] == 0
    rgb = np.zeros((201, 201, 3), dtype=np.uint8)
    rgb[100, 148] = (10, 200, 255)
    out = Undistortion(real, nearest=False)(rgb)
    np.testing.assert_array_equal(out[100, 150], (10, 200, 255))


def test_depth_is_never_blended_across_an_edge():
    # A step from 1 m to 3 m: nearest keeps only values present in the source (and 0 where
    # a ray misses the sensor); bilinear colour blends the step into in-between values.
    real = lens('plumb_bob', [0.2, 0.05, 0.001, -0.002, 0.0])
    depth = np.full((201, 201, 1), 1000, dtype=np.uint16)
    depth[:, 101:] = 3000
    out = Undistortion(real, nearest=True)(depth)
    assert set(np.unique(out)) == {0, 1000, 3000}
    metres = depth.astype(np.float32) / 1000
    metres[0, 0] = np.nan  # an invalid pixel stays invalid, it is not spread
    out = Undistortion(real, nearest=True)(metres)
    values = np.unique(out[np.isfinite(out)])
    assert set(values) <= {0.0, 1.0, 3.0} and np.isnan(out).sum() <= 4
    grey = (depth // 20).astype(np.uint8)  # 50 and 150
    blended = np.unique(Undistortion(real, nearest=False)(grey))
    assert len(set(blended) - {0, 50, 150}) > 0


def test_zero_distortion_is_the_identity_bit_exact():
    # A CameraInfo with zero coefficients is taken as a pinhole camera: no remap at all.
    real, _ = camera_from_info(201, 201, LENS_K, [0.0] * 5, distortion_model='plumb_bob',
                               undistort=True)
    assert real.distortion is None
    assert setup_camera(depth_spec(width=201, height=201), real, True).undistortion is None
    # And the maps of a zero distortion are the identity, through the fixed-point remap.
    zero = Intrinsics(201, 201, 100.0, 100.0, 100.5, 100.5,
                      Distortion('plumb_bob', (0.0,) * 5))
    img = rgb_image(201, 201, seed=4)
    np.testing.assert_array_equal(Undistortion(zero, nearest=False)(img), img)
    depth = np.random.default_rng(5).random((201, 201, 1)).astype(np.float32)
    np.testing.assert_array_equal(Undistortion(zero, nearest=True)(depth), depth)


def test_undistortion_reads_row_padding_and_big_endian_depth():
    real = lens('plumb_bob', [-0.1, 0.0, 0.0, 0.0, 0.0])
    undistort = Undistortion(real, nearest=True)
    native = np.random.default_rng(6).integers(0, 5000, (201, 201, 1)).astype(np.uint16)
    want = undistort(native).copy()
    # A big-endian (is_bigendian) 16UC1 view with 6 bytes of row padding.
    step = 201 * 2 + 6
    buf = np.zeros(step * 201, dtype=np.uint8)
    view = np.ndarray((201, 201, 1), dtype='>u2', buffer=buf, strides=(step, 2, 2))
    view[...] = native
    np.testing.assert_array_equal(undistort(view), want)
    with pytest.raises(FrameSizeError, match='image is 200x201 but the undistortion maps '
                                             'are for 201x201'):
        undistort(native[:, :200])


@pytest.mark.parametrize('model, d, message', [
    ('fisheye_polynomial', [0.1, 0.0, 0.0, 0.0],
     r"'fisheye_polynomial' with distortion \[0.1, 0.0, 0.0, 0.0\] cannot be undistorted; "
     r'expected one of'),
    ('', [0.1, 0.0, 0.0, 0.0, 0.0], "distortion_model: '' with distortion"),
    ('plumb_bob', [0.1] * 8, 'plumb_bob takes 5 coefficients, found 8'),
    ('equidistant', [0.1] * 5, 'equidistant takes 4 coefficients, found 5'),
])
def test_distortion_the_node_cannot_undistort_is_refused(model, d, message):
    with pytest.raises(CameraInfoError, match=message):
        camera_from_info(640, 480, ros_k(500, 500, 319.5, 239.5), d, distortion_model=model,
                         undistort=True)
    # Without undistort the same message is a warning that the distortion is ignored.
    _, warnings = camera_from_info(640, 480, ros_k(500, 500, 319.5, 239.5), d,
                                   distortion_model=model)
    assert 'is ignored (the image is not undistorted; node parameter undistort)' in \
        warnings[0]


@pytest.mark.parametrize('undistort', [False, True])
def test_non_finite_distortion_is_refused(undistort):
    with pytest.raises(CameraInfoError, match=r'camera_info.d: contains NaN/Inf: \[nan, 0.0'):
        camera_from_info(640, 480, ros_k(500, 500, 319.5, 239.5), [math.nan, 0, 0, 0, 0],
                         distortion_model='plumb_bob', undistort=undistort)


def test_setup_with_undistortion_crops_the_undistorted_image():
    # Pincushion (k1 > 0): corner rays land outside the sensor, which the setup reports.
    real = lens('plumb_bob', [0.3, 0.0, 0.0, 0.0, 0.0])
    spec = ImageSpec(width=50, height=50, interpolation='area', crop=(50, 50, 100, 100))
    setup = setup_camera(spec, real, fov_matching=True)
    assert setup.crop == (50, 50, 100, 100)
    values = dict(setup.values())
    assert values['camera_undistortion'] == 'plumb_bob'
    assert 'plumb_bob [0.3, 0.0, 0.0, 0.0, 0.0]' in values['camera']
    assert 'undistorted (plumb_bob)' in setup.text()
    assert setup.warnings == ()  # the central crop sees the sensor everywhere
    whole = setup_camera(replace(spec, crop=None), real, fov_matching=True)
    assert 'of the (cropped) image sees no sensor pixel' in whole.warnings[0]
    # The pipeline undistorts, then crops and resizes: the same as doing it by hand.
    pipeline = ImagePipeline(spec)
    pipeline.undistort = setup.undistortion
    img = rgb_image(201, 201, seed=7)
    by_hand = ImagePipeline(spec).process(Undistortion(real, nearest=False)(img), 'rgb8')
    np.testing.assert_array_equal(pipeline.process(img, 'rgb8'), by_hand)
    assert not np.array_equal(by_hand, ImagePipeline(spec).process(img, 'rgb8'))
    # Another distortion is another calibration (a change mid-run is refused).
    assert not real.same_as(lens('plumb_bob', [0.31, 0.0, 0.0, 0.0, 0.0]))
    assert real.same_as(lens('plumb_bob', [0.3, 0.0, 0.0, 0.0, 0.0]))
    assert needs_camera_info(spec, fov_matching=False, undistort=True)
    assert not needs_camera_info(spec, fov_matching=False)


def test_core_undistorts_before_the_crop():
    core = camera_core()
    f = 240 / math.tan(math.radians(35.0))
    d = [-0.1, 0.01, 0.001, 0.0, 0.0]
    real, warnings = camera_from_info(640, 480, ros_k(f, f, 319.5, 239.5), d,
                                      distortion_model='plumb_bob', undistort=True)
    setup = core.update_camera(real, True, warnings)
    assert setup.crop == (82, 62, 476, 357)  # the same K: the same crop
    assert core.cameras[''].pipeline.undistort is setup.undistortion
    img = rgb_image(640, 480, seed=8)
    core.set_image(img, 'rgb8')
    spec = ImageSpec(**{**vars(core.card.image), 'crop': setup.crop})
    want = ImagePipeline(spec).process(Undistortion(real, nearest=False)(img), 'rgb8')
    np.testing.assert_array_equal(core.cameras[''].image, want)
    # The same K with another distortion is another calibration.
    other, _ = camera_from_info(640, 480, ros_k(f, f, 319.5, 239.5), [-0.2, 0, 0, 0, 0],
                                distortion_model='plumb_bob', undistort=True)
    with pytest.raises(CameraInfoError, match='camera_info changed while configured'):
        core.update_camera(other, True)


def test_a_change_of_calibration_is_told_from_float_noise():
    real = lens('plumb_bob', [0.3, 0.0, 0.0, 0.0, 0.0])
    assert real.same_as(lens('plumb_bob', [0.3 + 1e-12, 0.0, 0.0, 0.0, 1e-13]))
    assert not real.same_as(lens('plumb_bob', [0.3 + 1e-6, 0.0, 0.0, 0.0, 0.0]))
    assert not real.same_as(lens('rational_polynomial', [0.3] + [0.0] * 7))
    assert not real.same_as(camera_from_info(201, 201, LENS_K)[0])
    # The same K for another image size is another camera, mid-run refused by the core.
    core = camera_core()
    f = 240 / math.tan(math.radians(35.0))
    core.update_camera(camera_from_info(640, 480, ros_k(f, f, 319.5, 239.5))[0], True)
    bigger, _ = camera_from_info(800, 600, ros_k(f, f, 319.5, 239.5))
    with pytest.raises(CameraInfoError, match=r'camera_info changed while configured: was '
                                              r'640x480 .* now 800x600'):
        core.update_camera(bigger, True)


def test_maps_opencv_cannot_build_are_a_camera_info_error():
    # Three coefficients reach OpenCV only through a hand-made Intrinsics (camera_from_info
    # asks for five); OpenCV's refusal must come out as the node's CameraInfoError.
    bogus = Intrinsics(64, 48, 50.0, 50.0, 32.0, 24.0, Distortion('plumb_bob', (0.1, 0.2, 0.3)))
    with pytest.raises(CameraInfoError, match='cannot build the undistortion maps for 64x48'):
        Undistortion(bogus, nearest=True)
