"""The running node over real topics: frames missing from the camera's stamps, provider."""

import array

from rclpy.qos import HistoryPolicy, ReliabilityPolicy
from sensor_msgs.msg import Image
from test_node import Rig  # noqa: I100 (test helper)

PERIOD_NS = 33_333_333  # a 30 Hz camera


def test_frames_missing_from_the_stamp_sequence_are_counted(harness, model_path):
    rig = Rig(harness, model_path)
    msg = Image(height=48, width=64, encoding='rgb8', step=64 * 3)
    msg.data = array.array('B', bytes(64 * 48 * 3))
    base = rig.peer.get_clock().now().nanoseconds
    skipped = 0
    for k in range(90):
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
    # A resent frame has the same stamp: out of order, never counted as lost.
    assert rig.counter('images_lost') == skipped
    values = {kv.key: kv.value for kv in rig.node.diagnostics().values}
    assert abs(float(values['camera_rate_hz']) - 30.0) < 0.5
    assert 0.2 < float(values['image_loss_fraction']) < 0.3
    assert values['provider'] == values['providers'].split(',')[0]


def test_the_camera_subscription_keeps_only_the_newest_frame(harness, model_path):
    # A deeper queue kept every frame a stall piled up: DDS's sample pool holds on to them.
    rig = Rig(harness, model_path)
    (camera,) = [s for s in rig.node._subs if s.topic_name == '/camera/image_raw']
    qos = camera.qos_profile
    assert (qos.history, qos.depth, qos.reliability) == (
        HistoryPolicy.KEEP_LAST, 1, ReliabilityPolicy.BEST_EFFORT)
