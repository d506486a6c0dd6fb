"""The twin camera's field of view option: the render and camera_info follow camera_fovy."""
import math

from mujoco_twin.sim import ReachArmSim, SimConfig, SimConfigError
import numpy as np
import pytest
from ros_probe import TwinUnderTest


def test_sim_camera_fovy_sets_the_render_and_intrinsics(rendering):
    nominal = ReachArmSim(SimConfig(image_width=160, image_height=120), seed=3)
    wide = ReachArmSim(SimConfig(image_width=160, image_height=120, camera_fovy=70.0), seed=3)
    try:
        assert nominal.camera_fovy == pytest.approx(55.0)
        assert wide.camera_fovy == pytest.approx(70.0)
        f = 60.0 / math.tan(math.radians(35.0))  # (height / 2) / tan(fovy / 2)
        assert wide.camera_intrinsics() == pytest.approx((f, f, 79.5, 59.5))
        # A wider view shows the red target smaller: fewer red pixels, same scene.
        red = [int(((im[..., 0] > 150) & (im[..., 1] < 60) & (im[..., 2] < 60)).sum())
               for im in (nominal.render(), wide.render())]
        assert red[0] > 0 and 0 < red[1] < red[0]
    finally:
        nominal.close()
        wide.close()


@pytest.mark.parametrize('fovy', [-1.0, 0.5, 175.0, math.nan])
def test_sim_camera_fovy_refused(fovy):
    with pytest.raises(SimConfigError, match='SimConfig.camera_fovy'):
        ReachArmSim(SimConfig(camera_fovy=fovy))


def test_node_camera_info_follows_camera_fovy(rendering):
    under_test = TwinUnderTest(image_width=160, image_height=120, camera_rate=10.0,
                               camera_fovy=70.0)
    try:
        probe = under_test.probe
        assert probe.wait_for(lambda: len(probe.infos) > 0, 10.0), 'no camera_info'
        f = 60.0 / np.tan(np.radians(70.0) / 2.0)
        np.testing.assert_allclose(probe.infos[-1].k, [f, 0, 79.5, 0, f, 59.5, 0, 0, 1])
    finally:
        under_test.close()
