"""Replay of a camera card from a raw bag: its camera_info sets the crop up, as the node does."""

import math

from conftest import rgb_image, workspace_root  # noqa: I100 (test helpers)
import numpy as np
import pytest

pytest.importorskip('mcap.reader', reason='mcap not installed')

from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from vision_policy.camera import camera_from_info  # noqa: E402
from vision_policy.core import PolicyCore  # noqa: E402
from vision_policy.recording import McapFile, RecordingError  # noqa: E402
from vision_policy.replay import default_params, replay_recording  # noqa: E402
from vision_policy.runtime import load_policy, PolicyRuntime, RuntimeOptions  # noqa: E402

CARD = workspace_root() / 'models' / 'reach_policy_camera.yaml'
POS, VEL = [0.1, 0.3, -0.6], [0.0, 0.2, 0.0]
IMAGE = rgb_image(640, 480, seed=9)


def ros_k(fovy_deg):
    """Return the row-major K of a centred 640x480 camera with this vertical FOV."""
    f = 240 / math.tan(math.radians(fovy_deg) / 2)
    return [f, 0.0, 319.5, 0.0, f, 239.5, 0.0, 0.0, 1.0]


def stamped(msg, t_ns):
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t_ns, 1_000_000_000)
    return msg


def write_bag(path, names, fovy_deg=None, info_from=4):
    """Write 1 s of a `ros2 bag record`: joints 100 Hz, one unchanging image and info 20 Hz."""
    bag = McapFile(path)
    for k in range(100):
        t_ns = 5_000_000_000 + k * 10_000_000
        if k % 5 == 0:
            image = Image(height=480, width=640, encoding='rgb8', step=640 * 3,
                          data=IMAGE.tobytes())
            bag.write('/camera/image_raw', 'sensor_msgs/msg/Image',
                      serialize_message(stamped(image, t_ns)), t_ns)
            if fovy_deg is not None and k >= info_from * 5:
                info = CameraInfo(width=640, height=480, distortion_model='plumb_bob',
                                  k=ros_k(fovy_deg), d=[0.0] * 5)
                bag.write('/camera/camera_info', 'sensor_msgs/msg/CameraInfo',
                          serialize_message(stamped(info, t_ns)), t_ns)
        joints = JointState(name=list(names), position=POS, velocity=VEL)
        bag.write('/joint_states', 'sensor_msgs/msg/JointState',
                  serialize_message(stamped(joints, t_ns)), t_ns)
    bag.close()
    return path


def first_command(model_path, fovy_deg=None):
    """Return a fresh core's first command on IMAGE (cropped for fovy_deg; None: whole)."""
    session, card = load_policy(model_path, CARD, RuntimeOptions(('CPUExecutionProvider',)))
    core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs),
                      default_params().limits(card))
    if fovy_deg is not None:
        core.update_camera(camera_from_info(640, 480, ros_k(fovy_deg))[0], True)
    core.set_image(IMAGE, 'rgb8')
    return core.step(np.array(POS), np.array(VEL)).copy(), card


def test_raw_bag_camera_info_sets_the_crop_up(tmp_path, model_path):
    want, card = first_command(model_path, 70.0)
    uncropped, _ = first_command(model_path)
    assert not np.array_equal(want, uncropped)  # the crop changes what the policy does
    bag = write_bag(tmp_path / 'bag.mcap', card.joint_names, fovy_deg=70.0)
    result = replay_recording(bag, model=str(model_path), card=str(CARD))
    # Held until the camera_info at 0.2 s, and on that tick for a frame cropped as it says
    # (the one received with it was processed before it, and is dropped as the node does).
    assert result.holds == {'no camera_info: /camera/camera_info': 4,
                            'no valid input: image': 1}, result.summary()
    assert result.commands == result.ticks - 5 > 10
    np.testing.assert_array_equal(result.commanded[0][1], want)


def test_raw_bag_without_the_camera_info_it_needs_is_refused(tmp_path, model_path):
    _, card = first_command(model_path)
    bag = write_bag(tmp_path / 'bag.mcap', card.joint_names)
    with pytest.raises(RecordingError, match=r"the card's camera needs its camera_info "
                                             r'.*found none'):
        replay_recording(bag, model=str(model_path), card=str(CARD))
