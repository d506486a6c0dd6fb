"""
Camera images: a zero-copy view of a ``sensor_msgs/Image`` payload, then the card's pipeline.

The pipeline runs crop -> resize -> colour order -> normalisation -> layout, in that
order, into a preallocated float32 buffer. Normalisation follows Isaac Lab's
``mdp.image`` term: RGB ``scale`` is /255, ``isaaclab`` is /255 then minus each
image's per-channel mean over HxW; depth sets inf/NaN to 0 (and clips to
``max_depth`` when the card gives one).
"""

from __future__ import annotations

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
        if self.spec.crop is not None:
            x, y, w, h = self.spec.crop
            src = src[y:y + h, x:x + w]
        if src.dtype.byteorder == '>':
            src = src.astype(src.dtype.newbyteorder('<'))  # OpenCV reads native order only
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

    def _process_rgb(self, src: np.ndarray, encoding: str) -> None:
        channels = src.shape[2]
        if channels == 1:
            src = src[:, :, 0]
        resized = self._resize(src, self._resized[channels])
        code = _TO_COLOR.get((encoding, self.spec.color_order))
        if code is not None:
            resized = cv2.cvtColor(resized, code, dst=self._color)
        hwc = self._hwc
        np.copyto(hwc, resized, casting='unsafe')
        if self.spec.normalize in ('scale', 'isaaclab'):
            np.multiply(self.out, np.float32(1.0 / 255.0), out=self.out)
        if self.spec.normalize == 'isaaclab':
            hwc -= hwc.mean(axis=(0, 1), dtype=np.float32)

    def _process_depth(self, src: np.ndarray, encoding: str) -> None:
        plane = src[:, :, 0]
        if encoding == '16UC1':
            metres = plane.astype(np.float32)
            # millimetres -> metres; dividing rounds once (x 0.001f is 1-2 ulp off the metres)
            metres /= np.float32(1000.0)
        else:
            metres = np.array(plane, dtype=np.float32)
        # Isaac Lab's image term: inf -> 0; NaN (no return) is treated the same here.
        metres[~np.isfinite(metres)] = 0.0
        depth = self._resize(metres, self._depth)
        if self.spec.max_depth is not None:
            np.minimum(depth, np.float32(self.spec.max_depth), out=depth)
        self._hwc[:, :, 0] = depth


def image_from_message(msg: Any, pipeline: Optional[ImagePipeline]) -> np.ndarray:
    """View a sensor_msgs/Image and run it through the pipeline."""
    view = view_image(msg.data, msg.width, msg.height, msg.encoding, msg.step,
                      bool(msg.is_bigendian))
    return pipeline.process(view, msg.encoding)
