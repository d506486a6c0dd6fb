"""
Camera images: a zero-copy view of a ``sensor_msgs/Image`` payload, then the card's pipeline.

The pipeline runs crop -> resize -> colour order -> normalisation -> layout, in that
order, into a preallocated float32 buffer. Normalisation follows Isaac Lab's
``mdp.image`` term: RGB ``scale`` is /255, ``isaaclab`` is /255 then minus each
image's per-channel mean over HxW; depth sets inf/NaN to 0 (and clips to
``max_depth`` when the card gives one).

The card's ``area`` downscale of a colour image runs as ``AreaResize``: the exact area
mean in integer arithmetic, uint16 row sums then two small matrix products instead of
OpenCV's general non-integer INTER_AREA loop (one thread, 2-core x86 VM, -> 64x64: VGA
0.12 ms against 0.53 ms, 1080p 0.54 ms against 4.3 ms; 0.9 ms for a 1080p frame not in
the cache, where reading it from memory is most of the time). It never differs from
``cv2.INTER_AREA`` by more than 1 (of 255), and on every size test_image.py tries it
differs only where the exact mean is a tie (k + 1/2 exactly), which OpenCV's float32
rounding sends either way and this rounds up (0.1 % of the values of a random VGA
frame).
"""

from __future__ import annotations

from math import gcd
from typing import Any, Optional

import cv2
import numpy as np

from .card import ImageSpec

# encoding -> (element dtype, channels)
ENCODINGS = {
    'rgb8': (np.uint8, 3),
    'bgr8': (np.uint8, 3),
    'rgba8': (np.uint8, 4),
    'bgra8': (np.uint8, 4),
    'mono8': (np.uint8, 1),
    '16UC1': (np.uint16, 1),
    '32FC1': (np.float32, 1),
}
MAX_SIDE = 16384

_INTERPOLATION = {
    'nearest': cv2.INTER_NEAREST,
    'linear': cv2.INTER_LINEAR,
    'area': cv2.INTER_AREA,
    'cubic': cv2.INTER_CUBIC,
}
# (source encoding, card colour order) -> cv2 conversion to a 3-channel image
_TO_COLOR = {
    ('rgb8', 'bgr'): cv2.COLOR_RGB2BGR,
    ('bgr8', 'rgb'): cv2.COLOR_BGR2RGB,
    ('rgba8', 'rgb'): cv2.COLOR_RGBA2RGB,
    ('rgba8', 'bgr'): cv2.COLOR_RGBA2BGR,
    ('bgra8', 'rgb'): cv2.COLOR_BGRA2RGB,
    ('bgra8', 'bgr'): cv2.COLOR_BGRA2BGR,
    ('mono8', 'rgb'): cv2.COLOR_GRAY2RGB,
    ('mono8', 'bgr'): cv2.COLOR_GRAY2BGR,
}


class ImageError(ValueError):
    """An image cannot be used; the message says what was found and what was expected."""


def view_image(data: Any, width: int, height: int, encoding: str, step: int,
               is_bigendian: bool = False) -> np.ndarray:
    """
    View an Image payload as an (H, W, C) array without copying it.

    ``data`` is any buffer (rclpy gives ``array.array('B')``). Row padding
    (``step`` > width x pixel size) is skipped by the strides. Big-endian
    multi-byte pixels are viewed with a big-endian dtype.
    """
    if encoding not in ENCODINGS:
        raise ImageError(f'encoding {encoding!r} is not supported; expected one of '
                         f'{sorted(ENCODINGS)}')
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ImageError(f'size {width}x{height} is outside 1..{MAX_SIDE} pixels per side')
    base, channels = ENCODINGS[encoding]
    dtype = np.dtype(base).newbyteorder('>' if is_bigendian else '<')
    row = width * channels * dtype.itemsize
    if step < row:
        raise ImageError(f'step {step} is smaller than width x pixel size ({row} bytes)')
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size != step * height:
        raise ImageError(f'payload has {buf.size} bytes, expected step x height = '
                         f'{step * height}')
    return np.ndarray((height, width, channels), dtype=dtype, buffer=buf,
                      strides=(step, channels * dtype.itemsize, dtype.itemsize))


# Integer sums stay exact in float32 below 2**24: the largest is 255 x the denominator.
_FLOAT32_EXACT = 2 ** 24


def area_weights(n_in: int, n_out: int) -> tuple:
    """
    Return the integer area weights of one axis as (block, p, q) for n_in -> n_out pixels.

    The scale n_in / n_out = p / q in lowest terms. In units of 1/q pixel, output j
    covers [j p, (j + 1) p) and input i covers [i q, (i + 1) q); the weight is their
    overlap, an integer, and every output's weights add up to p. The pattern repeats
    every p inputs and q outputs, so one (q, p) block describes the whole axis.
    """
    g = gcd(n_in, n_out)
    p, q = n_in // g, n_out // g
    block = np.zeros((q, p), dtype=np.int64)
    for j in range(q):
        lo, hi = j * p, (j + 1) * p
        for i in range(lo // q, -(-hi // q)):
            block[j, i] = min(hi, (i + 1) * q) - max(lo, i * q)
    return block, p, q


def limit_blas_threads(threads: int = 1) -> Optional[int]:
    """
    Set the thread count of numpy's OpenBLAS; returns the previous count (None: not found).

    AreaResize's products are small and memory-bound, so more threads do not speed them
    up, while OpenBLAS's waiting threads spin: at 1080p60 the node kept all 16 cores of an
    H200 host busy (1515 % of a core). A process that runs the pipeline at camera rate
    (the node's main) calls this once; it changes nothing where numpy uses another BLAS.
    """
    import ctypes
    import glob
    import os
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, 'numpy.libs',
                                  '*openblas*'))
    for path in libs:
        lib = ctypes.CDLL(path)  # already loaded by numpy: the same handle
        for prefix in ('scipy_openblas', 'openblas'):
            for suffix in ('64_', ''):
                setter = getattr(lib, f'{prefix}_set_num_threads{suffix}', None)
                getter = getattr(lib, f'{prefix}_get_num_threads{suffix}', None)
                if setter is not None and getter is not None:
                    previous = getter()
                    setter(int(threads))
                    return previous
    return None


class AreaResize:
    """
    cv2.INTER_AREA of a uint8 image to a smaller (or equal) size, exactly, in integers.

    With the weights of ``area_weights`` on both axes the weighted sum S of the source
    pixels is an integer and the area mean is S / D, D = p_y x p_x; round(S / D) =
    (2 S + D) // (2 D) in int32. OpenCV computes the same mean in float32 with fractional
    weights and rounds to nearest: both are within half a level (plus OpenCV's float
    error) of S / D, hence never more than 1 apart, and equal unless OpenCV's error
    crosses a rounding boundary. A non-tie S / D is at least 1 / (2 D) from one; a tie
    sits on it. test_image.py compares every value for VGA, 720p, 800x600, 1080p and odd
    sizes: only ties differ.

    S is computed in three steps, cheapest on the full-size image first:

    1. Rows. Within a block of p_y source rows (the vertical pattern repeats every p_y
       rows and q_y outputs), consecutive rows with the same weights form a segment: the
       rows wholly inside one output, or one row shared by two. Each segment is summed in
       uint16 over all blocks with one ``np.add.reduce`` (a few calls per frame; the image
       is read once, as uint8: 1080p rgb8 0.36 ms, where converting it to float32 alone
       took 0.67 ms).
    2. Columns: a float32 matrix product of the small segment sums with the horizontal
       weights (which also drop an alpha channel, so an rgba8 view is read in place).
    3. A float32 product with each segment's weights per output row.

    Every partial sum is an integer below 255 x D < 2**24, so the float32 products are
    exact in any summation order (BLAS may use FMA or reorder freely).
    """

    def __init__(self, src_height: int, src_width: int, channels: int, height: int,
                 width: int, src_channels: Optional[int] = None):
        src_channels = channels if src_channels is None else src_channels
        if not self.supports(src_height, src_width, height, width) or \
                channels > src_channels:
            raise ValueError(f'AreaResize: {src_width}x{src_height}x{src_channels} -> '
                             f'{width}x{height}x{channels} is not an exact integer '
                             f'downscale')
        by, py, qy = area_weights(src_height, height)
        bx, px, qx = area_weights(src_width, width)
        self.denominator = py * px
        self.shape = (src_height, src_width, src_channels)
        self.channels = channels
        self._blocks = src_height // py
        # Segments of a block: runs of rows whose weight columns are equal.
        bounds = [0] + [i for i in range(1, py) if not np.array_equal(by[:, i], by[:, i - 1])]
        self._segments = list(zip(bounds, bounds[1:] + [py]))
        longest = max(b - a for a, b in self._segments)
        row = src_width * src_channels
        self._sums_f = np.zeros((len(self._segments), self._blocks, row), dtype=np.float32)
        # uint16 holds the sum of up to 257 rows of uint8; longer runs sum in float32.
        self._sums = np.zeros_like(self._sums_f, dtype=np.uint16) if 255 * longest < 2 ** 16 \
            else self._sums_f
        # Horizontal weights for interleaved channels: each kept channel summed on its own.
        select = np.eye(src_channels)[:, :channels]
        self._kx = np.kron(bx.T, select).astype(np.float32)
        self._cols = self._sums_f.reshape(-1, px * src_channels)
        self._h = np.zeros((self._cols.shape[0], qx * channels), dtype=np.float32)
        self._hr = self._h.reshape(len(self._segments), self._blocks * width * channels)
        self._wy = np.stack([by[:, a] for a, _ in self._segments], axis=1).astype(np.float32)
        self._v = np.zeros((qy, self._blocks * width * channels), dtype=np.float32)
        # Output row block x q_y + j is row j of block `block` in _v.
        self._vr = self._v.reshape(qy, self._blocks, width, channels).transpose(1, 0, 2, 3)
        self._out = np.zeros((height, width, channels), dtype=np.int32)
        self._outr = self._out.reshape(self._blocks, qy, width, channels)

    @staticmethod
    def supports(src_height: int, src_width: int, height: int, width: int) -> bool:
        """Return True when the resize is a downscale (or equal) with exact float32 sums."""
        if src_height < height or src_width < width:
            return False  # OpenCV's INTER_AREA interpolates linearly when enlarging
        denominator = (src_height // gcd(src_height, height)) * (
            src_width // gcd(src_width, width))
        return 255 * denominator < _FLOAT32_EXACT

    def __call__(self, src: np.ndarray) -> np.ndarray:
        """
        Resize an (H, W, C) uint8 view; returns the int32 (h, w, channels) result.

        The first ``channels`` source channels are resized. Any row stride (padding, a
        crop) is read in place; a view whose pixels are not contiguous within a row is
        copied once by the reshape.
        """
        blocks, sums = self._blocks, self._sums
        rows = src.reshape(blocks, src.shape[0] // blocks, -1)
        for s, (a, b) in enumerate(self._segments):
            np.add.reduce(rows[:, a:b], axis=1, dtype=sums.dtype, out=sums[s])
        if sums is not self._sums_f:
            np.copyto(self._sums_f, sums, casting='unsafe')
        np.matmul(self._cols, self._kx, out=self._h)
        np.matmul(self._wy, self._hr, out=self._v)
        out = self._out
        np.copyto(self._outr, self._vr, casting='unsafe')  # integer-valued floats: exact
        out *= 2
        out += self.denominator
        np.floor_divide(out, 2 * self.denominator, out=out)
        return out


class ImagePipeline:
    """Turns viewed camera images into the model's image tensor, as the card says."""

    def __init__(self, spec: ImageSpec):
        self.spec = spec
        if spec.layout == 'NCHW':
            shape = (spec.channels, spec.height, spec.width)
        else:
            shape = (spec.height, spec.width, spec.channels)
        self.out = np.zeros(shape, dtype=np.float32)
        # One contiguous resize target per source channel count, so OpenCV writes in place.
        self._resized = {c: np.zeros((spec.height, spec.width, c) if c > 1 else
                                     (spec.height, spec.width), dtype=np.uint8)
                         for c in (1, 3, 4)}
        self._color = np.zeros((spec.height, spec.width, 3), dtype=np.uint8)
        self._depth = np.zeros((spec.height, spec.width), dtype=np.float32)
        self._hwc = self.out.transpose(1, 2, 0) if spec.layout == 'NCHW' else self.out
        self._mean = np.zeros(3, dtype=np.float32)
        # Per source size, rebuilt when the camera changes resolution: the exact area
        # resize, and the depth path's metres and mask buffers.
        self._area: Optional[AreaResize] = None
        self._metres = np.zeros((0, 0), dtype=np.float32)
        self._invalid = np.zeros((0, 0), dtype=bool)
        # range / z per pixel of the (cropped) source, set by PolicyCore from the real
        # camera's CameraInfo when the card's depth is distance_to_camera (camera.py).
        self.depth_scale: Optional[np.ndarray] = None
        # The real camera's undistortion (camera.Undistortion, set by PolicyCore when the
        # node's undistort is on): a callable (H, W, C) -> (H, W, C) run before the crop.
        self.undistort: Optional[Any] = None

    def check_source(self, encoding: str, width: int, height: int) -> None:
        """Raise ImageError if a source of this encoding and size cannot feed the card."""
        spec = self.spec
        if encoding not in spec.source_encodings:
            raise ImageError(f'encoding {encoding!r} is not accepted by the policy card '
                             f'(image.source_encodings = {list(spec.source_encodings)})')
        if spec.crop is not None:
            x, y, w, h = spec.crop
            if x + w > width or y + h > height:
                raise ImageError(f'crop [x={x}, y={y}, w={w}, h={h}] does not fit a '
                                 f'{width}x{height} image')

    def process(self, src: np.ndarray, encoding: str) -> np.ndarray:
        """Run the pipeline on an (H, W, C) view; returns the preallocated output."""
        height, width = src.shape[:2]
        self.check_source(encoding, width, height)
        if self.undistort is not None:
            src = self.undistort(src)
        if self.spec.crop is not None:
            x, y, w, h = self.spec.crop
            src = src[y:y + h, x:x + w]
        # Multi-byte (depth) pixels in big-endian order are swapped by the depth path's
        # copy into native float32, which OpenCV needs.
        if self.spec.data_type == 'depth':
            self._process_depth(src, encoding)
        else:
            self._process_rgb(src, encoding)
        return self.out

    def _resize(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        spec = self.spec
        if src.shape[0] == spec.height and src.shape[1] == spec.width:
            return src
        return cv2.resize(src, (spec.width, spec.height), dst=dst,
                          interpolation=_INTERPOLATION[spec.interpolation])

    def _exact_area(self, src: np.ndarray) -> Optional[AreaResize]:
        """Return the exact area resize for this source, or None where OpenCV is used."""
        spec = self.spec
        height, width, channels = src.shape
        if spec.interpolation != 'area' or (height, width) == (spec.height, spec.width) or \
                not AreaResize.supports(height, width, spec.height, spec.width):
            return None
        kept = 1 if channels == 1 else 3  # alpha is dropped by the resize's weights
        if self._area is None or self._area.shape != (height, width, channels):
            self._area = AreaResize(height, width, kept, spec.height, spec.width, channels)
        return self._area

    def _process_rgb(self, src: np.ndarray, encoding: str) -> None:
        hwc = self._hwc
        area = self._exact_area(src)
        if area is not None:
            # Resizing is per channel, so choosing and ordering channels in or after it is
            # the same as _TO_COLOR's conversion: drop alpha, swap R and B, repeat mono.
            resized = area(src)
            source_order = 'bgr' if encoding.startswith('bgr') else 'rgb'
            if resized.shape[2] == 3 and source_order != self.spec.color_order:
                resized = resized[:, :, ::-1]
            np.copyto(hwc, resized, casting='unsafe')
        else:
            channels = src.shape[2]
            if channels == 1:
                src = src[:, :, 0]
            resized = self._resize(src, self._resized[channels])
            code = _TO_COLOR.get((encoding, self.spec.color_order))
            if code is not None:
                resized = cv2.cvtColor(resized, code, dst=self._color)
            np.copyto(hwc, resized, casting='unsafe')
        if self.spec.normalize in ('scale', 'isaaclab'):
            np.multiply(self.out, np.float32(1.0 / 255.0), out=self.out)
        if self.spec.normalize == 'isaaclab':
            # A float64 sum: float32 accumulation over H x W strays 2e-6 (100x100) to 1e-5
            # (VGA) from the mean torch.mean gives Isaac Lab (test_oracle_direct.py).
            np.subtract(hwc, hwc.mean(axis=(0, 1), dtype=np.float64, out=self._mean), out=hwc)

    def _process_depth(self, src: np.ndarray, encoding: str) -> None:
        plane = src[:, :, 0]
        if self._metres.shape != plane.shape:
            self._metres = np.zeros(plane.shape, dtype=np.float32)
            self._invalid = np.zeros(plane.shape, dtype=bool)
        metres = self._metres
        np.copyto(metres, plane, casting='unsafe')  # also native byte order for OpenCV
        if encoding == '16UC1':
            # millimetres -> metres; dividing rounds once (x 0.001f is 1-2 ulp off the metres)
            metres /= np.float32(1000.0)
        else:
            # Isaac Lab's image term: inf -> 0; NaN (no return) is treated the same here.
            # (Millimetres from integers are always finite.)
            np.isfinite(metres, out=self._invalid)
            np.logical_not(self._invalid, out=self._invalid)
            np.copyto(metres, 0.0, where=self._invalid)
        if self.depth_scale is not None:
            np.multiply(metres, self.depth_scale, out=metres)  # invalid (0) pixels stay 0
        depth = self._resize(metres, self._depth)
        if self.spec.max_depth is not None:
            np.minimum(depth, np.float32(self.spec.max_depth), out=depth)
        self._hwc[:, :, 0] = depth


def image_from_message(msg: Any, pipeline: Optional[ImagePipeline]) -> np.ndarray:
    """View a sensor_msgs/Image and run it through the pipeline."""
    view = view_image(msg.data, msg.width, msg.height, msg.encoding, msg.step,
                      bool(msg.is_bigendian))
    return pipeline.process(view, msg.encoding)
