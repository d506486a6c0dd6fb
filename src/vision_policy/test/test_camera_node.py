"""policy_inference with a card image.camera over real DDS: camera_info holds, crop, bad info."""

from dataclasses import replace
import math
import time

from conftest import rgb_image, workspace_root  # noqa: I100 (test helpers)
import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo
from test_node import Rig
from vision_policy.camera import camera_from_info, Undistortion
from vision_policy.image import ImagePipeline
from vision_policy.monitor import Hold, HoldReason

CARD = workspace_root() / 'models' / 'reach_policy_camera.yaml'


def camera_info(fovy_deg=70.0, width=640, height=480, k=None):
    """Make a twin-like CameraInfo: square pixels, centred, fovy as given."""
    f = (height / 2) / math.tan(math.radians(fovy_deg) / 2)
    msg = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    msg.k = k if k is not None else [f, 0.0, (width - 1) / 2, 0.0, f, (height - 1) / 2,
                                     0.0, 0.0, 1.0]
    msg.d = [0.0] * 5
    return msg


class CameraRig(Rig):
    """Rig plus a camera_info publisher; inputs are fed until a condition holds."""

    def __init__(self, harness, model_path, **params):
        super().__init__(harness, model_path, card_path=str(CARD), max_image_age=30.0,
                         max_joint_state_age=30.0, **params)
        self.info_pub = self.peer.create_publisher(CameraInfo, '/camera/camera_info',
                                                   qos_profile_sensor_data)
        if params.get('fov_matching', True):
            assert harness.wait_for(lambda: self.info_pub.get_subscription_count() > 0)
        self.image = rgb_image(640, 480, seed=1)

    def feed_until(self, condition, info=None, image=None, timeout=30.0):
        """Send joints, an image and (if given) camera_info every 50 ms until condition()."""
        end = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < end, f'condition not reached; hold {self.node.hold}'
            self.send_joints([0.0, 0.3, -0.6])
            self.send_image(self.image if image is None else image)
            if info is not None:
                info.header.stamp = self.stamp()
                self.info_pub.publish(info)
            time.sleep(0.05)

    def values(self):
        return {kv.key: kv.value for kv in self.node.diagnostics().values}


def test_waits_for_camera_info_then_crops_to_the_training_view(harness, model_path):
    rig = CameraRig(harness, model_path)
    counters = rig.node.stats.counters
    no_info = Hold(HoldReason.NO_CAMERA_INFO, '/camera/camera_info')
    rig.feed_until(lambda: rig.node.monitor.seq('image') > 3 and rig.node.hold == no_info)
    assert counters.commands == 0
    # The twin at fovy 70 against training's 55: the crop of test_camera's hand numbers.
    rig.feed_until(lambda: counters.commands >= 3, info=camera_info(70.0))
    assert rig.node.core.camera.crop == (82, 62, 476, 357)
    values = rig.values()
    assert values['camera_crop'] == '[82, 62, 476, 357]'
    assert values['camera_fov_deg'] == '86.07 x 70.00 deg'
    assert values['training_fov_deg'] == '69.53 x 55.00 deg'
    # A K that changes mid-run holds with the reason; the first one back resumes.
    rig.feed_until(lambda: rig.node.hold is not None and
                   rig.node.hold.reason is HoldReason.CAMERA_INFO_INVALID,
                   info=camera_info(60.0))
    assert 'camera_info changed while configured' in rig.node.hold.detail
    assert counters.camera_infos_rejected > 0
    commands = counters.commands
    rig.feed_until(lambda: counters.commands > commands + 2, info=camera_info(70.0))
    # Images of another size than camera_info's: held, with both sizes named.
    rig.feed_until(lambda: rig.node.hold == Hold(
        HoldReason.CAMERA_INFO_INVALID, 'image is 320x240 but camera_info says 640x480'),
        info=camera_info(70.0), image=rgb_image(320, 240))
    commands = counters.commands
    rig.feed_until(lambda: counters.commands > commands + 2, info=camera_info(70.0))


def test_unusable_camera_info_holds_with_the_reason(harness, model_path):
    rig = CameraRig(harness, model_path)
    counters = rig.node.stats.counters
    for info, text in [
            (camera_info(k=[0.0] * 9), 'all zeros: the camera is not calibrated'),
            (camera_info(width=0, height=0), 'size 0x0'),
            (camera_info(k=[math.nan] + [0.0] * 8), 'contains NaN/Inf'),
            # fovy 40 is narrower than training's 55: refused, both fields of view named.
            (camera_info(40.0), 'sees 51.77 x 40.00 deg, the policy was trained on '
                                '69.53 x 55.00 deg')]:
        rig.feed_until(lambda: rig.node.hold is not None and
                       rig.node.hold.reason is HoldReason.CAMERA_INFO_INVALID and
                       text in rig.node.hold.detail, info=info)
        assert 'holding: camera_info unusable' in rig.node.diagnostics().message
    assert counters.commands == 0 and counters.camera_infos_rejected >= 4
    assert rig.node._state_machine.current_state[1] == 'active'
    # fov_matching off would not have waited; a good camera_info now lets it command.
    rig.feed_until(lambda: counters.commands >= 2, info=camera_info(55.0))
    assert rig.node.core.camera.crop == (0, 0, 640, 480)


def test_fov_matching_off_needs_no_camera_info(harness, model_path):
    rig = CameraRig(harness, model_path, fov_matching=False)
    rig.feed_until(lambda: rig.node.stats.counters.commands >= 2)
    assert rig.node.core.camera is None
    assert rig.info_pub.get_subscription_count() == 0


def distorted_info(d=(-0.1, 0.01, 0.001, 0.0, 0.0), model='plumb_bob', fovy_deg=70.0):
    """Make camera_info(fovy_deg) with a lens distortion."""
    msg = camera_info(fovy_deg)
    msg.distortion_model, msg.d = model, list(d)
    return msg


def test_undistorts_then_crops_and_holds_on_bad_distortion(harness, model_path):
    rig = CameraRig(harness, model_path, undistort=True)
    counters = rig.node.stats.counters
    info = distorted_info()
    rig.feed_until(lambda: counters.commands >= 3, info=info)
    values = rig.values()
    assert values['camera_undistortion'] == 'plumb_bob'
    assert values['camera_crop'] == '[82, 62, 476, 357]'  # undistorted to the same K
    # What the policy sees: the frame undistorted, then the card's crop and resize.
    real, _ = camera_from_info(640, 480, info.k, info.d, distortion_model='plumb_bob',
                               undistort=True)
    spec = replace(rig.node.core.card.image, crop=(82, 62, 476, 357))
    want = ImagePipeline(spec).process(Undistortion(real, nearest=False)(rig.image), 'rgb8')
    with rig.node._lock:
        np.testing.assert_array_equal(rig.node.core.cameras[''].image, want)
    for bad, text in [
            (distorted_info(d=(-0.2, 0.0, 0.0, 0.0, 0.0)), 'camera_info changed while '
                                                           'configured'),
            (distorted_info(d=(math.nan, 0.0, 0.0, 0.0, 0.0)), 'camera_info.d: contains '
                                                               'NaN/Inf'),
            (distorted_info(model='fisheye_polynomial'), "'fisheye_polynomial' with "
                                                         'distortion'),
            (distorted_info(d=(-0.1, 0.01, 0.001, 0.0)), 'plumb_bob takes 5 coefficients, '
                                                         'found 4')]:
        rig.feed_until(lambda: rig.node.hold is not None and
                       rig.node.hold.reason is HoldReason.CAMERA_INFO_INVALID and
                       text in rig.node.hold.detail, info=bad)
    commands = counters.commands
    rig.feed_until(lambda: counters.commands > commands + 2, info=info)
    assert counters.camera_infos_rejected >= 4


def test_distortion_without_undistort_is_reported_not_applied(harness, model_path):
    rig = CameraRig(harness, model_path)
    counters = rig.node.stats.counters
    rig.feed_until(lambda: counters.commands >= 2, info=distorted_info())
    values = rig.values()
    assert values['camera_undistortion'] == 'none'
    assert 'distortion [-0.1, 0.01, 0.001, 0.0, 0.0] is ignored' in values['camera_warnings']
    assert rig.node.core.cameras[''].pipeline.undistort is None


def test_recording_keeps_camera_info_and_replay_reproduces_the_crop(harness, model_path,
                                                                    tmp_path, monkeypatch):
    pytest.importorskip('mcap.reader', reason='mcap not installed')
    from vision_policy import replay
    path = tmp_path / 'camera.mcap'
    rig = CameraRig(harness, model_path, undistort=True, record_path=str(path))
    counters = rig.node.stats.counters
    no_info = Hold(HoldReason.NO_CAMERA_INFO, '/camera/camera_info')
    rig.feed_until(lambda: counters.ticks > 2 and rig.node.hold == no_info)
    rig.feed_until(lambda: counters.commands >= 10, info=distorted_info())
    assert rig.node.core.camera.crop == (82, 62, 476, 357)
    rig.node.trigger_deactivate()
    rig.node.trigger_cleanup()  # closes the recording
    source = replay.McapSource(path)
    assert source.info.input_topics['camera_info'] == '/camera/camera_info'
    assert source.counts[next(cid for cid, topic in source.channel_topics.items()
                              if topic == '/camera/camera_info')] == 1  # once, when taken
    source.close()
    result = replay.replay_recording(path)
    assert result.identical, result.summary()
    assert result.commands == counters.commands
    # Without the recorded camera_info the replayed frames are neither undistorted nor
    # cropped: the image term differs from the first commanded tick on.
    monkeypatch.setattr(replay._Inputs, 'camera_info', lambda self, msg, camera='': None)
    result = replay.replay_recording(path)
    assert not result.identical and result.first.item == 'camera/image', result.summary()
