"""depth_camera as 16UC1 millimetres with a stamp delay, the wrist camera off (own twin)."""
from camera_geometry import bottom_row_table_depth, ns, plain
import numpy as np
from ros_probe import TwinUnderTest

DEPTH_DELAY = 0.03


def test_16uc1_millimetres_and_a_delayed_depth_camera(rendering):
    under_test = TwinUnderTest(image_width=64, image_height=48, camera_rate=10.0,
                               depth_camera=True, depth_width=64, depth_height=48,
                               depth_stamp_delay=DEPTH_DELAY)
    try:
        probe = under_test.probe
        assert probe.wait_for(lambda: len(probe.depth_images) >= 3, 20.0), 'no depth image'
        image = probe.depth_images[-1]
        assert (image.encoding, image.step, image.width, image.height) == ('16UC1', 128, 64, 48)
        mm = plain(image)
        assert (mm[0] == 0).all()  # no return
        u, want = bottom_row_table_depth(64, 48, 0.0)
        np.testing.assert_allclose(mm[-1, u], np.rint(want * 1000.0), atol=1)
        scene = [ns(m) for m in probe.images]
        for msg in probe.depth_images[1:3]:
            assert min(abs(s - ns(msg) - DEPTH_DELAY * 1e9) for s in scene) < 1000
        # wrist_camera off: not even a publisher.
        assert probe.count_publishers('/wrist_camera/image_raw') == 0
        assert probe.wrist_images == []
    finally:
        under_test.close()
