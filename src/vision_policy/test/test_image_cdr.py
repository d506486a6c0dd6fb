"""The in-place CDR view of sensor_msgs/Image against rclpy's own serializer and real DDS."""

import array

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from vision_policy.image import ENCODINGS, ImageError, view_image
from vision_policy.image_cdr import CdrError, parse_image


def make_message(width, height, encoding, pad=0, frame_id='cam', bigendian=False, seed=0):
    """Build an Image of random pixels with pad bytes after each row."""
    base, channels = ENCODINGS[encoding]
    row = width * channels * np.dtype(base).itemsize
    step = row + pad
    payload = np.random.default_rng(seed).integers(0, 256, step * height, dtype=np.uint8)
    msg = Image(width=width, height=height, encoding=encoding, step=step,
                is_bigendian=int(bigendian))
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000 + seed, 123_456_789
    msg.data = array.array('B', payload.tobytes())
    return msg


def deserialized_view(msg):
    """View a deserialized message the way the deserializing path does (view_image)."""
    return view_image(msg.data, msg.width, msg.height, msg.encoding, msg.step,
                      bool(msg.is_bigendian))


CASES = [(w, h, enc, pad, frame, be)
         for enc in sorted(ENCODINGS)
         for (w, h, pad) in ((1, 1, 0), (3, 5, 1), (7, 2, 3), (64, 48, 0), (33, 17, 5))
         for frame in ('', 'a', 'wrist_camera_optical_frame')
         for be in ((False, True) if ENCODINGS[enc][0] != np.uint8 else (False,))]


@pytest.mark.parametrize('width, height, encoding, pad, frame_id, bigendian', CASES)
def test_matches_rclpy_deserialization(width, height, encoding, pad, frame_id, bigendian):
    msg = make_message(width, height, encoding, pad, frame_id, bigendian)
    raw = serialize_message(msg)
    got = parse_image(raw)
    assert (got.sec, got.nanosec) == (msg.header.stamp.sec, msg.header.stamp.nanosec)
    assert got.stamp_ns == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
    assert got.frame_id == frame_id
    assert (got.height, got.width, got.step) == (height, width, msg.step)
    assert got.encoding == encoding
    assert got.is_bigendian == bigendian
    assert raw[got.data_offset:got.data_offset + msg.step * height] == bytes(msg.data)
    want = deserialized_view(deserialize_message(raw, Image))
    assert got.pixels.dtype == want.dtype and got.pixels.shape == want.shape
    np.testing.assert_array_equal(got.pixels, want)


def test_pixels_are_a_view_of_the_serialized_bytes():
    raw = bytearray(serialize_message(make_message(4, 3, 'rgb8', pad=2)))
    got = parse_image(raw)
    assert np.shares_memory(got.pixels, np.frombuffer(raw, np.uint8))
    raw[got.data_offset + got.step + 3] ^= 0xFF  # row 1, pixel 1, channel 0
    assert got.pixels[1, 1, 0] == raw[got.data_offset + got.step + 3]


def test_big_endian_cdr_encapsulation():
    """A CDR_BE payload (allowed by DDS, rare in ROS) reads its lengths big-endian."""
    msg = make_message(3, 2, 'mono8', frame_id='xy')
    le = serialize_message(msg)
    fields = [(0, 4, 'i'), (4, 4, 'I'), (8, 4, 'I'), (16, 4, 'I'), (20, 4, 'I'),
              (24, 4, 'I'), (36, 4, 'I'), (40, 4, 'I')]
    be = bytearray(le)
    be[0:2] = b'\x00\x00'
    for offset, size, _ in fields:
        start = 4 + offset
        be[start:start + size] = le[start:start + size][::-1]
    got = parse_image(bytes(be))
    assert (got.width, got.height, got.step, got.frame_id) == (3, 2, 3, 'xy')
    np.testing.assert_array_equal(got.pixels[:, :, 0],
                                  np.frombuffer(bytes(msg.data), np.uint8).reshape(2, 3))


def test_every_truncation_is_rejected_with_an_image_error():
    raw = serialize_message(make_message(5, 3, 'bgra8', pad=1, frame_id='cam1'))
    for n in range(len(raw)):
        with pytest.raises(ImageError):
            parse_image(raw[:n])


@pytest.mark.parametrize('mutate, message', [
    (lambda b: b[:2], 'fewer than the 4-byte encapsulation header'),
    (lambda b: b'\x00\x03' + b[2:], 'encapsulation 0x0003 is not plain CDR'),
    (lambda b: b + b'\x00' * 4, '4 bytes after the end of data'),
    (lambda b: b[:8 + 4] + (0).to_bytes(4, 'little') + b[16:], 'string length 0'),
    (lambda b: b[:8 + 4] + (1 << 30).to_bytes(4, 'little') + b[16:],
     'serialized Image ends inside header.frame_id'),
    (lambda b: b[:16] + b'ab\x01' + b[19:], 'header.frame_id: string of 3 bytes is not '
                                            'NUL-terminated'),
    (lambda b: b[:16] + b'\xff\xfe\x00' + b[19:], 'header.frame_id: not UTF-8'),
])
def test_malformed_cdr_names_the_field(mutate, message):
    raw = serialize_message(make_message(2, 2, 'rgb8', frame_id='ab'))
    with pytest.raises(CdrError) as err:
        parse_image(mutate(raw))
    assert message in str(err.value)


@pytest.mark.parametrize('field, value, message', [
    ('encoding', 'yuv422', "encoding 'yuv422' is not supported"),
    ('width', 0, 'size 0x4 is outside'),
    ('step', 5, 'step 5 is smaller than width x pixel size (12 bytes)'),
    ('data', b'\x00' * 47, 'payload has 47 bytes, expected step x height = 48'),
])
def test_bad_image_fields_fail_as_view_image_fails(field, value, message):
    msg = make_message(4, 4, 'rgb8')
    if field == 'data':
        msg.data = array.array('B', value)
    else:
        setattr(msg, field, value)
    with pytest.raises(ImageError) as err:
        parse_image(serialize_message(msg))
    assert message in str(err.value)
    with pytest.raises(ImageError) as err:
        deserialized_view(msg)
    assert message in str(err.value)


def test_garbage_never_raises_anything_but_image_error():
    rng = np.random.default_rng(1)
    valid = serialize_message(make_message(6, 4, 'rgb8', pad=2))
    accepted = 0
    for i in range(3000):
        if i % 2:
            raw = bytearray(valid)
            for pos in rng.integers(0, len(raw), rng.integers(1, 4)):
                raw[pos] = rng.integers(0, 256)
        else:
            raw = rng.integers(0, 256, rng.integers(0, 120), dtype=np.uint8).tobytes()
        try:
            got = parse_image(bytes(raw))
        except ImageError:
            continue
        accepted += 1
        # Whatever is accepted is what rclpy itself would deserialize and view.
        want = deserialized_view(deserialize_message(bytes(raw), Image))
        np.testing.assert_array_equal(got.pixels, want)
    assert accepted > 100  # flips in the pixel bytes still give valid images


def test_raw_subscription_over_dds(harness):
    """Bytes from a real DDS raw subscription parse to the published image."""
    node = harness.node('cdr_raw_listener')
    got = []
    node.create_subscription(Image, 'cdr_test/image', got.append, qos_profile_sensor_data,
                             raw=True)
    pub = node.create_publisher(Image, 'cdr_test/image', qos_profile_sensor_data)
    msgs = [make_message(w, h, enc, pad, seed=i)
            for i, (w, h, enc, pad) in enumerate([(641, 3, 'rgb8', 1), (5, 7, '32FC1', 0),
                                                  (9, 2, '16UC1', 2), (2, 2, 'mono8', 3)])]
    assert harness.wait_for(lambda: pub.get_subscription_count() > 0, timeout=10)

    def all_arrived():
        for m in msgs:
            pub.publish(m)
        return {parse_image(b).stamp_ns for b in list(got)} >= {
            m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in msgs}
    # Best effort may drop a sample: publish the set again until each has arrived once.
    assert harness.wait_for(all_arrived, timeout=20, period=0.2)
    for raw in list(got):
        assert isinstance(raw, bytes)
        frame = parse_image(raw)
        msg = next(m for m in msgs if m.header.stamp.sec == frame.sec)
        np.testing.assert_array_equal(frame.pixels, deserialized_view(msg))


def test_cdr_error_is_an_image_error():
    assert issubclass(CdrError, ImageError)
    with pytest.raises(CdrError):
        parse_image(b'')
