"""Shared test setup: a private ROS domain and an offscreen GL backend, set before imports."""
import os

# Tests talk over real DDS: keep them off the domain a developer's nodes use (42, or
# MUJOCO_TWIN_TEST_DOMAIN_ID where several test runs share one machine).
os.environ['ROS_DOMAIN_ID'] = os.environ.get('MUJOCO_TWIN_TEST_DOMAIN_ID', '42')
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from mujoco_twin.sim import ReachArmSim, RenderError, SimConfig  # noqa: E402
import pytest  # noqa: E402


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
