"""Image views and the card's pipeline against values computed by hand."""

import cv2
import numpy as np
import pytest

from vision_policy.card import ImageSpec
from vision_policy.image import (area_weights, AreaResize, ImageError, ImagePipeline,
                                 limit_blas_threads, view_image)


def padded(img: np.ndarray, pad: int) -> tuple:
    """Bytes of img with pad bytes after each row, and the step."""
    rows = img.reshape(img.shape[0], -1).view(np.uint8)
    step = rows.shape[1] + pad
    out = np.full((img.shape[0], step), 0xEE, np.uint8)
    out[:, :rows.shape[1]] = rows
    return out.tobytes(), step


def test_view_skips_row_padding_without_copy():
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    data, step = padded(img, 7)
    buf = bytearray(data)
    view = view_image(buf, 5, 4, 'rgb8', step)
    np.testing.assert_array_equal(view, img)
    buf[step + 3] = 200  # row 1, pixel 1, channel 0: the view sees the payload itself
    assert view[1, 1, 0] == 200


def test_16uc1_big_and_little_endian():
    depth_mm = np.array([[1000, 2500], [0, 65535]], dtype=np.uint16)
    little = view_image(depth_mm.astype('<u2').tobytes(), 2, 2, '16UC1', 4, False)
    big = view_image(depth_mm.astype('>u2').tobytes(), 2, 2, '16UC1', 4, True)
    np.testing.assert_array_equal(little[:, :, 0], depth_mm)
    np.testing.assert_array_equal(big[:, :, 0], depth_mm)


@pytest.mark.parametrize('kwargs, message', [
    ({'encoding': 'yuv422'}, "encoding 'yuv422' is not supported"),
    ({'width': 0}, 'size 0x2 is outside'),
    ({'step': 5}, 'step 5 is smaller than width x pixel size (6 bytes)'),
    ({'data': b'\x00' * 11}, 'payload has 11 bytes, expected step x height = 12'),
    ({'data': b'\x00' * 13}, 'payload has 13 bytes'),
])
def test_view_rejects_bad_messages(kwargs, message):
    args = {'data': b'\x00' * 12, 'width': 2, 'height': 2, 'encoding': 'rgb8', 'step': 6}
    args.update(kwargs)
    with pytest.raises(ImageError) as err:
        view_image(args['data'], args['width'], args['height'], args['encoding'], args['step'])
    assert message in str(err.value)


def spec(**kw):
    base = {'width': 2, 'height': 2, 'interpolation': 'area', 'normalize': 'scale',
            'layout': 'NHWC'}
    base.update(kw)
    return ImageSpec(**base)


RGB = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)


def test_rgb_scale_nhwc():
    out = ImagePipeline(spec()).process(RGB, 'rgb8')
    np.testing.assert_allclose(out, RGB / 255.0, rtol=1e-6)


def test_bgr_source_is_reordered_to_rgb():
    bgr = RGB[:, :, ::-1].copy()
    out = ImagePipeline(spec()).process(bgr, 'bgr8')
    np.testing.assert_allclose(out, RGB / 255.0, rtol=1e-6)


def test_rgba_and_bgra_drop_alpha():
    rgba = np.concatenate([RGB, np.full((2, 2, 1), 7, np.uint8)], axis=2)
    np.testing.assert_allclose(ImagePipeline(spec()).process(rgba, 'rgba8'), RGB / 255.0)
    bgra = np.ascontiguousarray(rgba[:, :, [2, 1, 0, 3]])
    np.testing.assert_allclose(ImagePipeline(spec()).process(bgra, 'bgra8'), RGB / 255.0)


def test_card_in_bgr_order():
    out = ImagePipeline(spec(color_order='bgr')).process(RGB, 'rgb8')
    np.testing.assert_allclose(out, RGB[:, :, ::-1] / 255.0)


def test_nchw_layout():
    out = ImagePipeline(spec(layout='NCHW')).process(RGB, 'rgb8')
    assert out.shape == (3, 2, 2)
    np.testing.assert_allclose(out, RGB.transpose(2, 0, 1) / 255.0)


def test_isaaclab_normalize_subtracts_per_image_channel_mean():
    # Isaac Lab mdp.image(normalize=True) for rgb: images/255, minus mean over (H, W).
    out = ImagePipeline(spec(normalize='isaaclab')).process(RGB, 'rgb8')
    expected = RGB / 255.0
    expected = expected - expected.mean(axis=(0, 1), keepdims=True)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), 0.0, atol=1e-6)


def test_none_normalize_keeps_0_255():
    out = ImagePipeline(spec(normalize='none')).process(RGB, 'rgb8')
    np.testing.assert_allclose(out, RGB.astype(np.float32))


def test_mono8_to_rgb():
    gray = np.array([[[10], [20]], [[30], [40]]], np.uint8)
    spec_mono = spec(normalize='none', source_encodings=('mono8',))
    out = ImagePipeline(spec_mono).process(gray, 'mono8')
    np.testing.assert_allclose(out, np.repeat(gray, 3, axis=2))


def test_crop_then_resize_area():
    img = np.zeros((6, 8, 3), np.uint8)
    img[2:4, 4:8] = [[[0, 100, 200]] * 4, [[40, 60, 80]] * 4]
    # crop x=4, y=2, w=4, h=2 -> 2x4; area resize to 2x1 averages pairs of columns
    pipe = ImagePipeline(spec(width=2, height=1, crop=(4, 2, 4, 2), normalize='none'))
    out = pipe.process(img, 'rgb8')
    np.testing.assert_allclose(out, [[[20, 80, 140], [20, 80, 140]]])


def test_resize_matches_opencv_with_padded_rows():
    img = np.random.default_rng(3).integers(0, 256, (48, 64, 3), np.uint8)
    data, step = padded(img, 5)
    view = view_image(data, 64, 48, 'rgb8', step)
    pipe = ImagePipeline(spec(width=16, height=12, interpolation='linear', normalize='none'))
    want = cv2.resize(img, (16, 12), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    np.testing.assert_array_equal(pipe.process(view, 'rgb8'), want)


def test_depth_32fc1_inf_nan_to_zero_and_max_depth():
    d = np.array([[1.5, np.inf], [np.nan, 12.0]], np.float32)
    pipe = ImagePipeline(spec(data_type='depth', normalize='none', max_depth=10.0,
                              source_encodings=('32FC1',)))
    view = view_image(d.tobytes(), 2, 2, '32FC1', 8)
    np.testing.assert_allclose(pipe.process(view, '32FC1')[:, :, 0], [[1.5, 0.0], [0.0, 10.0]])


def test_depth_16uc1_millimetres_big_endian():
    mm = np.array([[1500, 250], [0, 4000]], np.uint16)
    pipe = ImagePipeline(spec(data_type='depth', normalize='none', layout='NCHW',
                              source_encodings=('16UC1',)))
    view = view_image(mm.astype('>u2').tobytes(), 2, 2, '16UC1', 4, True)
    np.testing.assert_allclose(pipe.process(view, '16UC1')[0], [[1.5, 0.25], [0.0, 4.0]])


def test_source_checks():
    pipe = ImagePipeline(spec(crop=(0, 0, 4, 4), source_encodings=('rgb8',)))
    with pytest.raises(ImageError, match="'bgr8' is not accepted by the policy card"):
        pipe.check_source('bgr8', 10, 10)
    with pytest.raises(ImageError, match='does not fit a 3x10 image'):
        pipe.check_source('rgb8', 3, 10)


def test_resolution_change_mid_stream():
    pipe = ImagePipeline(spec(normalize='none'))
    a = pipe.process(np.full((4, 4, 3), 10, np.uint8), 'rgb8').copy()
    b = pipe.process(np.full((6, 2, 3), 30, np.uint8), 'rgb8')
    np.testing.assert_allclose(a, 10)
    np.testing.assert_allclose(b, 30)


# ---------------------------------------------------------------- exact area resize

def opencv_reference(src, encoding, width, height, color_order='rgb', crop=None):
    """Return the card's resize + colour order done by OpenCV alone (the slower path)."""
    if crop is not None:
        x, y, w, h = crop
        src = src[y:y + h, x:x + w]
    if src.shape[2] == 1:
        src = src[:, :, 0]
    out = cv2.resize(np.ascontiguousarray(src), (width, height), interpolation=cv2.INTER_AREA)
    code = {('rgb8', 'bgr'): cv2.COLOR_RGB2BGR, ('bgr8', 'rgb'): cv2.COLOR_BGR2RGB,
            ('rgba8', 'rgb'): cv2.COLOR_RGBA2RGB, ('rgba8', 'bgr'): cv2.COLOR_RGBA2BGR,
            ('bgra8', 'rgb'): cv2.COLOR_BGRA2RGB, ('bgra8', 'bgr'): cv2.COLOR_BGRA2BGR,
            ('mono8', 'rgb'): cv2.COLOR_GRAY2RGB,
            ('mono8', 'bgr'): cv2.COLOR_GRAY2BGR}.get((encoding, color_order))
    return (out if code is None else cv2.cvtColor(out, code)).astype(np.float64)


def exact_area_mean(src, width, height):
    """Compute the area mean in float64 from dense weights (slow, independent of AreaResize)."""
    def axis(n_in, n_out):
        w = np.zeros((n_out, n_in))
        for j in range(n_out):
            lo, hi = j * n_in / n_out, (j + 1) * n_in / n_out
            for i in range(n_in):
                w[j, i] = max(0.0, min(hi, i + 1) - max(lo, i))
        return w / w.sum(axis=1, keepdims=True)
    wy, wx = axis(src.shape[0], height), axis(src.shape[1], width)
    rows = np.tensordot(wy, src.astype(np.float64), axes=(1, 0))    # (height, W, C)
    return np.tensordot(rows, wx, axes=(1, 1)).transpose(0, 2, 1)   # (height, width, C)


def test_area_weights_by_hand():
    block, p, q = area_weights(5, 2)  # each output covers 2.5 inputs
    assert (p, q) == (5, 2)
    np.testing.assert_array_equal(block, [[2, 2, 1, 0, 0], [0, 0, 1, 2, 2]])
    block, p, q = area_weights(640, 64)
    assert (p, q) == (10, 1) and block.tolist() == [[1] * 10]
    block, p, q = area_weights(1080, 64)  # 16.875 rows per output
    assert (p, q) == (135, 8) and set(block.sum(axis=1)) == {135}


ENC_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}


@pytest.mark.parametrize('src_size, size', [
    ((640, 480), (64, 64)), ((1280, 720), (64, 64)), ((800, 600), (64, 64)),
    ((640, 480), (84, 84)), ((640, 480), (96, 72)), ((100, 77), (13, 9)),
    ((64, 48), (16, 12)), ((64, 48), (64, 12)), ((37, 5), (36, 5)),
    ((20, 600), (3, 2))])  # 300 rows per output: past uint16 row sums
@pytest.mark.parametrize('encoding', sorted(ENC_CHANNELS))
def test_area_equals_opencv_except_at_exact_ties(src_size, size, encoding):
    (sw, sh), (w, h) = src_size, size
    rng = np.random.default_rng(sw * 7 + h)
    for kind in ('noise', 'coarse', 'binary'):
        img = rng.integers(0, 256, (sh, sw, ENC_CHANNELS[encoding]), np.uint8)
        if kind == 'coarse':  # few levels: many ties
            img = (img // 85 * 85).astype(np.uint8)
        elif kind == 'binary':
            img = (img > 127).astype(np.uint8) * 255
        for order in ('rgb', 'bgr'):
            pipe = ImagePipeline(spec(width=w, height=h, normalize='none', color_order=order,
                                      source_encodings=(encoding,)))
            got = pipe.process(img, encoding).astype(np.float64)
            want = opencv_reference(img, encoding, w, h, order)
            diff = got != want
            assert np.abs(got - want).max() <= 1
            if diff.any():
                src = img if encoding != 'mono8' else img[:, :, :1]
                mean = exact_area_mean(src[:, :, :3], w, h)
                if encoding.startswith('bgr') != (order == 'bgr') and mean.shape[2] == 3:
                    mean = mean[:, :, ::-1]
                mean = np.broadcast_to(mean, got.shape)
                # Every difference is at a tie k + 1/2, which AreaResize rounds up.
                frac = mean[diff] - np.floor(mean[diff])
                np.testing.assert_allclose(frac, 0.5, atol=1e-9)
                np.testing.assert_array_equal(got[diff], np.floor(mean[diff]) + 1)


def test_area_1080p_equals_opencv_except_at_exact_ties():
    rng = np.random.default_rng(11)
    for img in (rng.integers(0, 256, (1080, 1920, 3), np.uint8),
                (rng.integers(0, 4, (1080, 1920, 3)) * 85).astype(np.uint8)):
        got = ImagePipeline(spec(width=64, height=64, normalize='none')).process(img, 'rgb8')
        want = opencv_reference(img, 'rgb8', 64, 64)
        diff = got != want
        assert np.abs(got - want).max() <= 1
        mean = exact_area_mean(img, 64, 64)[diff]
        np.testing.assert_allclose(mean - np.floor(mean), 0.5, atol=1e-9)


def test_area_ties_round_up():
    img = np.zeros((2, 4, 3), np.uint8)
    img[0, 0] = [4, 12, 20]  # means 0.5, 1.5, 2.5 over 8 pixels
    out = ImagePipeline(spec(width=1, height=1, normalize='none')).process(img, 'rgb8')
    np.testing.assert_array_equal(out[0, 0], [1, 2, 3])


def test_area_through_padding_crop_and_resolution_change():
    img = np.random.default_rng(5).integers(0, 256, (60, 90, 4), np.uint8)
    data, step = padded(img, 3)
    view = view_image(data, 90, 60, 'rgba8', step)
    pipe = ImagePipeline(spec(width=8, height=6, normalize='none', crop=(10, 6, 80, 48)))
    want = opencv_reference(img, 'rgba8', 8, 6, crop=(10, 6, 80, 48))
    assert np.abs(pipe.process(view, 'rgba8') - want).max() <= 1
    small = img[:30, :40]
    want = opencv_reference(small[6:, 10:], 'rgba8', 8, 6)
    pipe = ImagePipeline(spec(width=8, height=6, normalize='none', crop=(10, 6, 30, 24)))
    pipe.process(view, 'rgba8')
    assert np.abs(pipe.process(small, 'rgba8') - want).max() <= 1


def test_area_enlarging_is_left_to_opencv():
    img = np.random.default_rng(6).integers(0, 256, (24, 32, 3), np.uint8)
    pipe = ImagePipeline(spec(width=64, height=20, normalize='none'))
    want = cv2.resize(img, (64, 20), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(pipe.process(img, 'rgb8'), want)
    assert not AreaResize.supports(24, 32, 20, 64)
    assert not AreaResize.supports(4000, 4001, 64, 63)  # 255 x D would pass 2**24


def test_no_large_allocation_per_frame():
    """After the first frame, a frame allocates no image-sized temporaries (rgb, depth)."""
    import tracemalloc
    rgb = np.random.default_rng(7).integers(0, 256, (480, 640, 3), np.uint8)
    depth = np.random.default_rng(8).uniform(0.1, 9.0, (480, 640, 1)).astype(np.float32)
    depth[::7, ::5] = np.inf
    cases = [(ImagePipeline(spec(width=64, height=64, normalize='isaaclab', layout='NCHW')),
              rgb, 'rgb8'),
             (ImagePipeline(spec(width=64, height=64, data_type='depth', normalize='none',
                                 source_encodings=('32FC1',))), depth, '32FC1'),
             (ImagePipeline(spec(width=64, height=64, data_type='depth', normalize='none',
                                 source_encodings=('16UC1',))),
              (np.nan_to_num(depth, posinf=0.0) * 1000).astype('>u2'), '16UC1')]
    for pipe, img, encoding in cases:
        pipe.process(img, encoding)
        tracemalloc.start()
        for _ in range(3):
            pipe.process(img, encoding)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # numpy's casting iterators buffer a few 10 KB; one VGA frame is 900 KB or more.
        assert peak < 256 * 1024, (encoding, peak)


def test_blas_threads_can_be_limited_and_restored():
    previous = limit_blas_threads(1)
    if previous is None:
        pytest.skip("numpy's BLAS is not OpenBLAS here")
    assert previous >= 1
    assert limit_blas_threads(previous) == 1  # it was 1; now back as it was
