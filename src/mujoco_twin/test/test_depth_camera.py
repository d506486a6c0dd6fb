"""depth_camera and wrist_camera in the pure simulator, against geometry computed by hand."""
import math
from pathlib import Path

from camera_geometry import optical_rotation, table_depth
import mujoco
from mujoco_twin.sim import MODEL_PATH, ReachArmSim, SimConfig, SimConfigError
from mujoco_twin.twin_node import encode_depth, TwinConfig, TwinParameterError
import numpy as np
import pytest

DEPTH = 'depth_camera'
WRIST = 'wrist_camera'


def segmentation(sim: ReachArmSim, camera: str) -> np.ndarray:
    """(object id, object type) seen at each pixel (-1, -1: nothing), rendered by MuJoCo."""
    width, height = sim.config.camera_size(camera)
    renderer = mujoco.Renderer(sim.model, height, width)
    try:
        renderer.enable_segmentation_rendering()
        renderer.update_scene(sim.data, camera=sim.model.camera(camera).id)
        ids = renderer.render()
    finally:
        renderer.close()
    return ids


def test_depth_camera_is_registered_to_scene_camera_with_its_own_intrinsics():
    sim = ReachArmSim(SimConfig(depth_width=80, depth_height=60))
    for offset, turn in (((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), ((0.02, -0.01, 0.0), (3, 0, 1))):
        sim.set_camera_offset(offset, turn)
        for got, want in zip(sim.camera_pose(DEPTH), sim.camera_pose()):
            np.testing.assert_allclose(got, want, atol=1e-12)
    assert sim.fovy(DEPTH) == pytest.approx(58.0)  # the model's
    f = 30.0 / math.tan(math.radians(29.0))  # (height / 2) / tan(fovy / 2)
    assert sim.camera_intrinsics(DEPTH) == pytest.approx((f, f, 39.5, 29.5))
    sim = ReachArmSim(SimConfig(depth_fovy=70.0, wrist_width=96, wrist_height=72,
                                wrist_fovy=45.0))
    f = 120.0 / math.tan(math.radians(35.0))
    assert sim.camera_intrinsics(DEPTH) == pytest.approx((f, f, 159.5, 119.5))
    f = 36.0 / math.tan(math.radians(22.5))
    assert sim.camera_intrinsics(WRIST) == pytest.approx((f, f, 47.5, 35.5))
    assert sim.camera_fovy == pytest.approx(55.0)  # scene_camera unchanged


def test_depth_of_a_wall_square_to_the_optical_axis_is_its_distance_everywhere(
        rendering, tmp_path):
    # z-depth of a plane square to the optical axis is one number; the distance along each
    # pixel's ray (distance_to_camera) grows towards the corners: 20 % at this corner.
    distance, thickness = 0.5, 0.01
    probe = ReachArmSim()
    position, _ = probe.camera_pose(DEPTH)
    rotation = optical_rotation(probe, DEPTH)
    centre = position + (distance + thickness) * rotation[:, 2]
    # A MuJoCo frame given by x and y axes: the optical x and -y (so z is the optical -z).
    axes = ' '.join(f'{a:.9f}' for a in (*rotation[:, 0], *-rotation[:, 1]))
    wall = (f'<geom name="wall" type="box" size="3 3 {thickness}" contype="0" conaffinity="0" '
            f'pos="{" ".join(f"{c:.9f}" for c in centre)}" xyaxes="{axes}"/>')
    scene = Path(MODEL_PATH).read_text().replace('<worldbody>', '<worldbody>' + wall, 1)
    model = tmp_path / 'walled.xml'
    model.write_text(scene)
    sim = ReachArmSim(SimConfig(model_path=str(model), depth_width=160, depth_height=120))
    try:
        depth = sim.render_depth()
        assert depth.shape == (120, 160) and depth.dtype == np.float32
        np.testing.assert_allclose(depth, distance, atol=1e-4)
        fx, fy, cx, cy = sim.camera_intrinsics(DEPTH)
        ray = distance * math.hypot(1.0, cx / fx, cy / fy)
        assert ray > 1.2 * distance and abs(depth[0, 0] - distance) < 1e-4
    finally:
        sim.close()


def test_depth_of_the_table_matches_ray_plane_intersection(rendering):
    sim = ReachArmSim(SimConfig(depth_width=160, depth_height=120), seed=2)
    try:
        depth = sim.render_depth()
        seen = segmentation(sim, DEPTH)
        table = ((seen[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)) &
                 (seen[..., 0] == sim.model.geom('table').id))
        assert 0.3 < table.mean() < 0.9, table.mean()  # mostly table, some arm and sky
        v, u = np.nonzero(table)
        position, _ = sim.camera_pose(DEPTH)
        want = table_depth(position, optical_rotation(sim, DEPTH),
                           sim.camera_intrinsics(DEPTH), u, v)
        assert 0.8 < want.min() and want.max() < 3.0
        # Measured: worst 1.3e-6 m at 160x120; a half-pixel error in cx, cy would give 3 cm.
        err = np.abs(depth[v, u] - want)
        assert err.max() < 1e-4, f'worst {err.max():.2e} m at pixel {u[err.argmax()]}, ' \
                                 f'{v[err.argmax()]}'
        # Nothing hit (beyond the table's edge): no return, as NaN; everything hit is finite.
        nothing = seen[..., 0] < 0
        np.testing.assert_array_equal(np.isnan(depth), nothing)
        assert nothing.sum() > 100
    finally:
        sim.close()


def test_sky_is_no_return(rendering):
    sim = ReachArmSim(SimConfig(depth_width=32, depth_height=24))
    try:
        sim.set_camera_offset(rotation_deg=(80.0, 0.0, 0.0))  # tilt up: only sky
        assert np.isnan(sim.render_depth()).all()
    finally:
        sim.close()


def test_wrist_camera_rides_on_the_forearm(rendering):
    sim = ReachArmSim(SimConfig(wrist_width=96, wrist_height=72), seed=1)
    try:
        def mount():
            position, _ = sim.camera_pose(WRIST)
            forearm = sim.data.body('forearm')
            offset = forearm.xmat.reshape(3, 3).T @ (position - forearm.xpos)
            return position, offset, optical_rotation(sim, WRIST)
        before = mount()
        image = sim.render(WRIST)
        assert image.shape == (72, 96, 3) and image.dtype == np.uint8
        blue = (image[..., 2] > 150) & (image[..., 0] < 80)
        assert blue.sum() > 20  # the end effector sphere ahead of the camera
        sim.set_position_targets([0.6, 0.8, 0.4])
        sim.step(1000)
        after = mount()
        assert np.linalg.norm(after[0] - before[0]) > 0.1
        np.testing.assert_allclose(after[1], [0.08, 0.0, 0.06], atol=1e-9)
        np.testing.assert_allclose(before[1], [0.08, 0.0, 0.06], atol=1e-9)
        # It looks along the forearm, 20 degrees down from it.
        axis = sim.data.body('forearm').xmat.reshape(3, 3)[:, 0]
        assert math.degrees(math.acos(after[2][:, 2] @ axis)) == pytest.approx(20.0, abs=0.01)
        assert not np.array_equal(sim.render(WRIST), image)
    finally:
        sim.close()


def test_extra_cameras_render_only_when_asked(rendering):
    sim = ReachArmSim(SimConfig(image_width=32, image_height=24))
    try:
        sim.render()
        assert list(sim._renderers) == [('scene_camera', False)]
        sim.render_depth()
        assert len(sim._renderers) == 2
    finally:
        sim.close()


@pytest.mark.parametrize('field, value', [
    ('depth_fovy', 0.5), ('depth_fovy', math.inf), ('wrist_fovy', 171.0),
    ('depth_width', 0), ('wrist_height', 5000), ('wrist_width', 1.5)])
def test_bad_camera_config_is_refused_naming_the_field(field, value):
    with pytest.raises(SimConfigError, match=f'SimConfig.{field}: '):
        ReachArmSim(SimConfig(**{field: value}))


def test_unknown_camera_is_refused():
    with pytest.raises(SimConfigError, match="camera 'top_camera': expected one of"):
        ReachArmSim().render('top_camera')


def test_encode_depth_by_hand():
    depth = np.array([[1.2344, 1.2346, 0.0004], [np.nan, np.inf, 70.0]], np.float32)
    mm = encode_depth(depth, '16UC1')
    assert mm.dtype == np.uint16
    np.testing.assert_array_equal(mm, [[1234, 1235, 0], [0, 0, 0]])  # 70 m does not fit
    metres = encode_depth(depth, '32FC1')
    assert metres.dtype == np.float32
    np.testing.assert_array_equal(metres[0], depth[0])
    assert np.isnan(metres[1, :2]).all() and metres[1, 2] == np.float32(70.0)
    with pytest.raises(TwinParameterError, match="depth encoding 'mono16'"):
        encode_depth(depth, 'mono16')


@pytest.mark.parametrize('field, value, message', [
    ('depth_encoding', 'mono16', "mujoco_twin.depth_encoding: 'mono16', expected 16UC1"),
    ('depth_stamp_delay', -0.01, 'mujoco_twin.depth_stamp_delay: -0.01 s, expected 0..1 s'),
    ('wrist_stamp_delay', 1.5, 'mujoco_twin.wrist_stamp_delay: 1.5 s, expected 0..1 s'),
    ('wrist_width', 0, 'mujoco_twin.wrist_width: 0, expected 1..4096 pixels')])
def test_bad_twin_camera_parameters_are_refused(field, value, message):
    with pytest.raises(TwinParameterError, match=message):
        TwinConfig(**{field: value}).validate()


def test_a_depth_camera_away_from_the_scene_camera_is_refused(tmp_path):
    scene = Path(MODEL_PATH).read_text()
    moved = scene.replace('<camera name="depth_camera" mode="fixed" pos="1.0 -0.6 0.9"',
                          '<camera name="depth_camera" mode="fixed" pos="1.0 -0.6 1.0"', 1)
    assert moved != scene
    model = tmp_path / 'moved.xml'
    model.write_text(moved)
    with pytest.raises(SimConfigError, match='depth_camera at .*expected the pose of '
                                             'scene_camera'):
        ReachArmSim(SimConfig(model_path=str(model)))
