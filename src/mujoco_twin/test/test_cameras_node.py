"""The twin's depth and wrist cameras over real DDS: topics, encodings, camera_info, stamps."""
import math

from camera_geometry import bottom_row_table_depth, ns, plain
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from ros_probe import TwinUnderTest

WRIST_DELAY = 0.05


def focal(height: int, fovy: float) -> float:
    return (height / 2.0) / math.tan(math.radians(fovy) / 2.0)


@pytest.fixture(scope='module')
def ros(rendering):
    under_test = TwinUnderTest(
        image_width=160, image_height=120, camera_rate=10.0, use_sim_time=True,
        depth_camera=True, depth_encoding='32FC1', depth_width=80, depth_height=60,
        depth_fovy=50.0, wrist_camera=True, wrist_width=96, wrist_height=72,
        wrist_stamp_delay=WRIST_DELAY)
    probe = under_test.probe
    assert probe.wait_for(lambda: len(probe.images) >= 3 and len(probe.depth_images) >= 3
                          and len(probe.wrist_images) >= 3, 20.0), \
        f'{len(probe.images)} scene, {len(probe.depth_images)} depth, ' \
        f'{len(probe.wrist_images)} wrist images'
    yield under_test
    under_test.close()


def test_depth_image_32fc1_is_metres_with_nan_for_no_return(ros):
    image = ros.probe.depth_images[-1]
    assert (image.width, image.height, image.encoding) == (80, 60, '32FC1')
    assert image.step == 80 * 4 and len(image.data) == 80 * 4 * 60 and image.is_bigendian == 0
    assert image.header.frame_id == 'depth_camera_optical'
    depth = plain(image)
    assert np.isnan(depth[0]).all()  # the top row looks past the table: no return
    u, want = bottom_row_table_depth(80, 60, 50.0)
    np.testing.assert_allclose(depth[-1, u], want, atol=1e-4)


def test_wrist_image(ros):
    image = ros.probe.wrist_images[-1]
    assert (image.width, image.height, image.encoding, image.step) == (96, 72, 'rgb8', 288)
    assert image.header.frame_id == 'wrist_camera_optical'
    pixels = np.frombuffer(bytes(image.data), np.uint8).reshape(72, 96, 3).astype(int)
    assert ((pixels[..., 2] > 150) & (pixels[..., 0] < 80)).sum() > 20  # end effector


def test_camera_info_of_each_camera_follows_its_size_and_fovy(ros):
    probe = ros.probe
    for infos, images, size, fovy in (
            (probe.infos, probe.images, (160, 120), 55.0),
            (probe.depth_infos, probe.depth_images, (80, 60), 50.0),
            (probe.wrist_infos, probe.wrist_images, (96, 72), 60.0)):
        info, image = infos[-1], images[-1]
        f, (w, h) = focal(size[1], fovy), size
        assert (info.width, info.height) == size == (image.width, image.height)
        np.testing.assert_allclose(info.k, [f, 0, (w - 1) / 2, 0, f, (h - 1) / 2, 0, 0, 1])
        np.testing.assert_allclose(
            info.p, [f, 0, (w - 1) / 2, 0, 0, f, (h - 1) / 2, 0, 0, 0, 1, 0])
        assert info.distortion_model == 'plumb_bob' and list(info.d) == [0.0] * 5
        assert info.header.frame_id == image.header.frame_id
        assert {ns(m) for m in infos} >= {ns(m) for m in images[-3:]}


def test_frames_of_one_step_share_a_stamp_and_the_delay_offsets_one(ros):
    probe = ros.probe
    assert probe.wait_for(lambda: len(probe.depth_images) >= 6 and len(probe.wrist_images) >= 7,
                          10.0)
    scene = {ns(m) for m in probe.images}
    depth = [ns(m) for m in probe.depth_images[1:6]]
    assert set(depth) <= scene, 'a depth frame stamped unlike every scene frame'
    wrist = np.array([ns(m) for m in probe.wrist_images[2:7]])
    nearest = np.array([min(scene, key=lambda s: abs(s - (w + WRIST_DELAY * 1e9)))
                        for w in wrist])
    np.testing.assert_allclose((nearest - wrist) * 1e-9, WRIST_DELAY, atol=1e-6)


def test_stamp_delay_is_set_at_run_time_and_other_parameters_are_read_only(ros):
    probe = ros.probe
    client = AsyncParameterClient(probe, 'mujoco_twin')
    assert client.wait_for_services(timeout_sec=10.0)

    def set_parameter(name, value):
        future = client.set_parameters([Parameter(name, value=value)])
        assert probe.wait_for(future.done, 10.0), f'no answer setting {name}'
        return future.result().results[0]

    refused = set_parameter('wrist_stamp_delay', 2.0)
    assert not refused.successful
    assert 'mujoco_twin.wrist_stamp_delay: 2.0 s, expected 0..1 s' in refused.reason
    assert not set_parameter('camera_rate', 5.0).successful  # read-only
    assert ros.twin.config.camera_rate == 10.0
    assert set_parameter('wrist_stamp_delay', 0.0).successful
    count = len(probe.wrist_images)
    assert probe.wait_for(lambda: len(probe.wrist_images) >= count + 3, 10.0)
    scene = {ns(m) for m in probe.images}
    assert {ns(m) for m in probe.wrist_images[count + 1:count + 3]} <= scene
