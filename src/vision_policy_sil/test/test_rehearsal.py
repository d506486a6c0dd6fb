"""Rehearsal in the twin: perturbation hooks, cells and a short sweep of the bundled policy."""
from pathlib import Path

import numpy as np
import pytest

sim_module = pytest.importorskip('mujoco_twin.sim')
from vision_policy_sil import rehearsal  # noqa: E402


def bundled_model() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / 'models' / 'reach_policy.onnx').is_file():
            return parent / 'models' / 'reach_policy.onnx'
    raise FileNotFoundError('models/reach_policy.onnx not found above the tests')


@pytest.fixture(scope='module')
def sim():
    twin = sim_module.ReachArmSim(sim_module.SimConfig(image_width=160, image_height=120))
    try:
        twin.render()
    except sim_module.RenderError as exc:
        pytest.skip(f'no offscreen rendering: {exc}')
    yield twin
    twin.close()


def test_camera_offset_moves_the_view_and_zero_restores_it(sim):
    nominal = sim.render()
    position, _ = sim.camera_pose()
    sim.set_camera_offset((0.02, 0.0, 0.0), (0.0, 2.0, 0.0))
    moved = sim.render()
    assert np.allclose(sim.camera_pose()[0], position + (0.02, 0.0, 0.0))
    assert np.abs(moved.astype(int) - nominal).mean() > 1.0
    sim.set_camera_offset()
    assert np.array_equal(sim.render(), nominal)
    with pytest.raises(ValueError, match='set_camera_offset'):
        sim.set_camera_offset((0.0, np.nan, 0.0))


def test_lighting_scales_brightness_and_restores(sim):
    nominal = sim.render()
    sim.set_lighting(0.5)
    darker = sim.render()
    sim.set_lighting(1.0)
    assert darker.mean() < 0.75 * nominal.mean()
    assert np.array_equal(sim.render(), nominal)
    with pytest.raises(ValueError, match='set_lighting'):
        sim.set_lighting(-1.0)


def test_camera_link_delays_and_drops():
    link = rehearsal.CameraLink(0.1, 0.0, np.random.default_rng(0))
    assert link.send(0.0, lambda: 'a') and link.send(0.05, lambda: 'b')
    assert link.receive(0.09) is None
    assert link.receive(0.1) == 'a'
    assert link.receive(0.2) == 'b' and link.receive(0.3) is None
    link = rehearsal.CameraLink(0.0, 0.0, np.random.default_rng(0))
    link.send(0.0, lambda: 'a')
    link.send(0.0, lambda: 'b')
    assert link.receive(0.0) == 'b'  # the newest frame that has arrived
    rendered = []
    lossy = rehearsal.CameraLink(0.0, 0.25, np.random.default_rng(0))
    kept = sum(lossy.send(0.0, lambda: rendered.append(1)) for _ in range(4000))
    assert kept == len(rendered) and abs(kept / 4000 - 0.75) < 0.03


def test_cells_vary_one_factor_at_a_time():
    cells = rehearsal.cells()
    assert cells[0][0] == 'nominal' and cells[0][2] == rehearsal.Perturbation()
    assert len(cells) == 2 + sum(len(v) - 1 for v in rehearsal.SWEEP.values())
    assert cells[-1][0] == 'combined' and cells[-1][2] == rehearsal.COMBINED
    assert all(vars(rehearsal.COMBINED)[k] != v for k, v in vars(rehearsal.Perturbation()).items())
    for factor, value, p in cells[1:-1]:
        changed = {k for k, v in vars(p).items() if v != vars(rehearsal.Perturbation())[k]}
        assert changed == {factor} and getattr(p, factor) == value
    with pytest.raises(ValueError, match='drop'):
        rehearsal.Perturbation(drop=1.0).validate()


def test_nominal_succeeds_and_a_moved_camera_fails(sim, tmp_path):
    """The margin is real: the bundled policy reaches, but not with a 5 cm / 5 deg camera."""
    setup = rehearsal.Setup(model_path=str(bundled_model()), episodes=3, episode_s=4.0)
    nominal = rehearsal.run_cell(setup, rehearsal.Perturbation())
    moved = rehearsal.run_cell(setup, rehearsal.Perturbation(pose=5.0))
    assert nominal['success'] == 1.0, nominal['final_distances']
    assert moved['success'] < 1.0 and moved['median_final_distance'] > 0.05
    results = [('nominal', None, nominal), ('pose', 5.0, moved)]
    assert '| pose | 5 |' in rehearsal.table(results)
    png = rehearsal.plot(results, tmp_path / 'r.png', {'pose': (0.0, 5.0)})
    assert png.stat().st_size > 5000
