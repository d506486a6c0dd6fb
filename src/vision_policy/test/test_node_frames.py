"""The running node over real topics: frames missing from the camera's stamps, provider."""

import array

from rclpy.qos import HistoryPolicy, ReliabilityPolicy
from sensor_msgs.msg import Image
from test_node import Rig  # noqa: I100 (test helper)

PERIOD_NS = 33_333_333  # a 30 Hz camera


def send_with_gaps(rig, width: int, height: int, frames: int = 90) -> int:
    """Send a 30 Hz camera's frames but every fourth (lost on the way); return how many."""
    msg = Image(height=height, width=width, encoding='rgb8', step=width * 3)
    msg.data = array.array('B', bytes(width * height * 3))
    base = rig.peer.get_clock().now().nanoseconds
    skipped = 0
    for k in range(frames):
        if k % 4 == 3:  # the camera sent it; the transport lost it
            skipped += 1
            continue
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(base + k * PERIOD_NS,
                                                                1_000_000_000)
        before = rig.node.stats.counters.images_received

        def arrived():
            rig.image_pub.publish(msg)  # best effort: resend until this frame arrives
            return rig.node.stats.counters.images_received > before
        assert rig.h.wait_for(arrived, timeout=10, period=0.05), f'frame {k} never arrived'
    return skipped


def diagnostic_values(rig) -> dict:
    return {kv.key: kv.value for kv in rig.node.diagnostics().values}


def test_frames_missing_from_the_stamp_sequence_are_counted(harness, model_path):
    rig = Rig(harness, model_path)
    skipped = send_with_gaps(rig, 64, 48)
    # A resent frame has the same stamp: out of order, never counted as lost.
    assert rig.counter('images_lost') == skipped
    values = diagnostic_values(rig)
    assert abs(float(values['camera_rate_hz']) - 30.0) < 0.5
    assert 0.2 < float(values['image_loss_fraction']) < 0.3
    assert values['provider'] == values['providers'].split(',')[0]
    # Frames this small fit Fast DDS's default shared memory: no transport hint.
    rig.node._check_frame_loss()
    assert 'image_loss_hint' not in diagnostic_values(rig)


def test_lost_frames_over_the_default_segment_name_the_profile(harness, model_path):
    """The usual cause on a robot: the camera driver started without the large-image profile."""
    rig = Rig(harness, model_path)
    send_with_gaps(rig, 640, 480)
    assert rig.h.wait_for(lambda: 'image_loss_hint' in diagnostic_values(rig), timeout=30), \
        'no image_loss_hint on /diagnostics'
    hint = diagnostic_values(rig)['image_loss_hint']
    assert "of the camera's frames lost (0.9 MB each): Fast DDS" in hint
    assert 'start the driver with FASTRTPS_DEFAULT_PROFILES_FILE=' in hint
    assert hint.split('FASTRTPS_DEFAULT_PROFILES_FILE=')[1].split(' ')[0].endswith(
        'fastdds_large_images.xml')


def test_the_camera_subscription_keeps_only_the_newest_frame(harness, model_path):
    # A deeper queue kept every frame a stall piled up: DDS's sample pool holds on to them.
    rig = Rig(harness, model_path)
    (camera,) = [s for s in rig.node._subs if s.topic_name == '/camera/image_raw']
    qos = camera.qos_profile
    assert (qos.history, qos.depth, qos.reliability) == (
        HistoryPolicy.KEEP_LAST, 1, ReliabilityPolicy.BEST_EFFORT)
