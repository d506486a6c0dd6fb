"""Shared test setup: an offscreen GL backend before MuJoCo is imported, and fixtures."""
import os
from pathlib import Path

os.environ.setdefault('MUJOCO_GL', 'egl')

from mujoco_twin.sim import ReachArmSim, RenderError, SimConfig  # noqa: E402
import pytest  # noqa: E402
from reach_training.task import workspace_root  # noqa: E402
from vision_policy.card import load_card  # noqa: E402


@pytest.fixture(scope='session')
def rendering() -> None:
    """Skip the test, with the reason, when offscreen rendering cannot be set up here."""
    sim = ReachArmSim(SimConfig(image_width=8, image_height=8))
    try:
        sim.render()
    except RenderError as err:
        pytest.skip(f'no offscreen rendering: {err}')
    finally:
        sim.close()


@pytest.fixture(scope='session')
def card_path():
    """Return the workspace's bundled card (models/reach_policy.yaml)."""
    return workspace_root(Path(__file__).resolve().parent) / 'models' / 'reach_policy.yaml'


@pytest.fixture(scope='session')
def card(card_path):
    """Return the bundled card."""
    return load_card(card_path)
