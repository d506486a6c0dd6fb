"""Smoke: a few CPU iterations learn, and the export runs the same in onnxruntime."""
import numpy as np
import pytest
from reach_training.env import ReachEnv
from reach_training.evaluate import make_core
from reach_training.randomization import RandomizationConfig
from reach_training.task import TaskConfig
from reach_training.train import SMOKE, SMOKE_TASK, train
from vision_policy.tools.export import export_policy

torch = pytest.importorskip('torch')
pytest.importorskip('onnxruntime')


def test_smoke_training_learns_and_exports(rendering, card_path, card, tmp_path):
    result = train(tmp_path, SMOKE, SMOKE_TASK, card_path=card_path, log=lambda _: None)
    # DAgger regression on a fixed early batch: the loss falls by more than half.
    assert result['probe_loss_last'] < 0.5 * result['probe_loss_first'], result
    assert result['env_steps'] == SMOKE.iterations * SMOKE.num_envs
    assert (tmp_path / 'student.pt').is_file() and (tmp_path / 'training.png').is_file()
    policy = result['policy'].eval()
    onnx_path = tmp_path / 'reach_policy.onnx'
    assert export_policy(policy, card, onnx_path) < 1e-4
    # The exported file, run by the node's pure core on a real env observation, gives
    # the raw action PyTorch gives.
    core = make_core(onnx_path, TaskConfig())
    env = ReachEnv(card, TaskConfig(), RandomizationConfig(), seed=9)
    try:
        inputs = env.observation()
        core.set_image(env.renderer.tile(env.slot), 'rgb8')
        core.step(env.joint_pos, env.joint_vel)
        with torch.no_grad():
            expected = policy(torch.from_numpy(inputs['obs']),
                              torch.from_numpy(inputs['image'])).numpy().reshape(-1)
        np.testing.assert_allclose(core.tick.raw, expected, atol=1e-4)
    finally:
        env.close()
