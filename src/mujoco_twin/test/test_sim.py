"""The pure simulator: seeded targets, servo convergence, camera images and intrinsics."""
import math

import mujoco
from mujoco_twin.sim import (
    HOME, JOINT_NAMES, pinhole_intrinsics, ReachArmSim, SimConfig, SimConfigError)
import numpy as np
import pytest


def red_mask(image: np.ndarray) -> np.ndarray:
    """Return the pixels of the red target sphere."""
    rgb = image.astype(int)
    return (rgb[..., 0] > 150) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)


def test_reset_draws_seeded_targets():
    a, b = ReachArmSim(seed=1), ReachArmSim(seed=1)
    np.testing.assert_array_equal(a.target_position, b.target_position)
    first = a.target_position
    a.reset()
    b.reset()
    assert a.episode == 1
    np.testing.assert_array_equal(a.target_position, b.target_position)
    assert np.linalg.norm(a.target_position - first) > 1e-3
    other = ReachArmSim(seed=2)
    assert np.linalg.norm(other.target_position - first) > 1e-3
    a.reset(seed=1)
    np.testing.assert_array_equal(a.target_position, first)


def test_targets_lie_in_the_reachable_region_in_front():
    sim = ReachArmSim(seed=5)
    for _ in range(50):
        x, _, z = sim.target_position
        assert x >= 0.15 and 0.05 <= z <= 0.45
        # The stored joint solution really reaches the target.
        sim.data.qpos[:3] = sim.target_joint_positions
        sim.data.qvel[:] = 0.0
        sim.set_position_targets(sim.target_joint_positions)
        sim.step(1)
        assert sim.ee_distance < 2e-3
        sim.reset()


def test_reset_restores_home_and_keeps_time_running():
    sim = ReachArmSim(seed=0)
    sim.set_position_targets([1.0, 1.0, 1.0])
    sim.step(200)
    t = sim.time
    assert t == pytest.approx(0.4)
    sim.reset()
    assert sim.time == pytest.approx(t)
    np.testing.assert_allclose(sim.joint_positions, HOME)
    np.testing.assert_allclose(sim.joint_velocities, 0.0)
    np.testing.assert_allclose(sim.position_targets, HOME)


def test_step_command_converges():
    sim = ReachArmSim(seed=3)
    start = sim.ee_distance
    assert start > 0.1
    sim.set_position_targets(sim.target_joint_positions)
    sim.step(750)  # 1.5 s
    np.testing.assert_allclose(sim.joint_positions, sim.target_joint_positions, atol=1e-3)
    assert np.max(np.abs(sim.joint_velocities)) < 1e-2
    assert sim.ee_distance < 5e-3


def test_targets_are_clipped_to_joint_limits_and_checked():
    sim = ReachArmSim()
    sim.set_position_targets([5.0, -5.0, 0.0])
    np.testing.assert_allclose(sim.position_targets, [2.0, -1.5, 0.0])
    with pytest.raises(ValueError, match='3 finite values'):
        sim.set_position_targets([0.0, 0.0])
    with pytest.raises(ValueError, match='3 finite values'):
        sim.set_position_targets([0.0, math.nan, 0.0])
    assert JOINT_NAMES == ('shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint')
    np.testing.assert_allclose(sim.joint_limits, [[-2.0, 2.0], [-1.5, 1.5], [-2.5, 2.5]])


@pytest.mark.parametrize('field, value, message', [
    ('timestep', 0.0, 'SimConfig.timestep'),
    ('image_width', 0, 'SimConfig.image_width'),
    ('image_height', 5000, 'SimConfig.image_height'),
    ('model_path', '/nonexistent/arm.xml', 'SimConfig.model_path'),
])
def test_bad_config_names_the_field(field, value, message):
    with pytest.raises(SimConfigError, match=message):
        ReachArmSim(SimConfig(**{field: value}))


def test_pinhole_intrinsics_convention():
    fx, fy, cx, cy = pinhole_intrinsics(90.0, 640, 480)
    assert fx == pytest.approx(240.0) and fy == pytest.approx(240.0)
    assert (cx, cy) == (319.5, 239.5)


def test_render_shows_the_red_target_where_the_camera_model_projects_it(rendering):
    sim = ReachArmSim(SimConfig(image_width=160, image_height=120), seed=4)
    try:
        for _ in range(3):
            image = sim.render()
            assert image.shape == (120, 160, 3) and image.dtype == np.uint8
            mask = red_mask(image)
            assert mask.sum() >= 10, 'target sphere not visible'
            # Project the target centre with camera_pose + camera_intrinsics (ROS optical).
            pos, quat = sim.camera_pose()
            rot = np.zeros(9)
            mujoco.mju_quat2Mat(rot, quat)
            p = rot.reshape(3, 3).T @ (sim.target_position - pos)
            fx, fy, cx, cy = sim.camera_intrinsics()
            u, v = cx + fx * p[0] / p[2], cy + fy * p[1] / p[2]
            rows, cols = np.nonzero(mask)
            assert abs(cols.mean() - u) < 1.5 and abs(rows.mean() - v) < 1.5
            sim.reset()
    finally:
        sim.close()


def test_render_64x64_keeps_the_target_visible(rendering):
    sim = ReachArmSim(SimConfig(image_width=64, image_height=64), seed=0)
    try:
        for _ in range(10):
            assert red_mask(sim.render()).sum() >= 4
            sim.reset()
    finally:
        sim.close()
