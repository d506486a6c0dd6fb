"""
The real camera against the training camera: field-of-view crop, CameraInfo checks, depth rays.

No ROS here: the node hands over the fields of ``sensor_msgs/CameraInfo`` and PolicyCore
applies the result to its image pipeline.

Coordinates. Isaac Lab's intrinsics (and the card's ``image.camera``) put pixel *edges* at
integer coordinates: a centred principal point is (width / 2, height / 2), and pixel i
covers [i, i + 1). ROS CameraInfo (OpenCV) puts pixel *centres* there: a centred
principal point is ((width - 1) / 2, (height - 1) / 2). ``Intrinsics`` uses Isaac Lab's
convention; ``camera_from_info`` adds the half pixel.

Field-of-view matching. A pinhole camera maps the ray (a, b, 1) to pixel
(cx + fx a, cy + fy b). The training image spans a in [-cx_t / fx_t, (W_t - cx_t) / fx_t]
(b likewise); the same rays land in the real image on
x in [cx_r - cx_t fx_r / fx_t, cx_r + (W_t - cx_t) fx_r / fx_t]. That interval, rounded
to whole pixels, is the crop: it has the training camera's field of view and (after the
card's resize) its aspect ratio, and the training principal point falls on the real one.
Undistortion is not done: CameraInfo distortion coefficients are reported, not applied.

Depth. Isaac Lab's ``distance_to_camera`` is the range along each pixel's ray; real depth
cameras give ``distance_to_image_plane`` (z). For the pixel centred at u (ROS pixel
indices), range = z sqrt(1 + ((u - cx) / fx)^2 + ((v - cy) / fy)^2): one factor per
source pixel, computed once per CameraInfo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Optional, Sequence

import numpy as np

from .card import CameraSpec, ImageSpec
from .image import ImageError, MAX_SIDE

# Principal points further apart than this (real-image pixels) draw a warning.
PRINCIPAL_POINT_TOLERANCE_PX = 3.0
# Rounding the crop to whole pixels may overshoot the real image by up to half a pixel.
_EDGE_SLACK_PX = 0.5
# Two CameraInfo messages describe the same calibration when K agrees to this (pixels).
_SAME_K_PX = 1e-6


class CameraError(ValueError):
    """The real camera cannot give the training camera's view; the message says why."""


class CameraInfoError(CameraError):
    """A CameraInfo message is unusable (zeros, NaN, an unsupported model, a change)."""


class FovError(CameraError):
    """The real camera's field of view is narrower than the training camera's."""


class FrameSizeError(ImageError):
    """An image's size disagrees with the camera's CameraInfo."""


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera: size and K, pixel edges at integer coordinates (Isaac Lab's)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_spec(cls, spec: CameraSpec) -> 'Intrinsics':
        """Return the card's training camera."""
        return cls(spec.width, spec.height, spec.fx, spec.fy, spec.cx, spec.cy)

    @property
    def fov_deg(self) -> tuple:
        """Return the (horizontal, vertical) field of view in degrees."""
        h = math.atan(self.cx / self.fx) + math.atan((self.width - self.cx) / self.fx)
        v = math.atan(self.cy / self.fy) + math.atan((self.height - self.cy) / self.fy)
        return (math.degrees(h), math.degrees(v))

    def same_as(self, other: 'Intrinsics') -> bool:
        """Return True when other is the same calibration (size equal, K within 1e-6 px)."""
        return (self.width, self.height) == (other.width, other.height) and all(
            abs(a - b) <= _SAME_K_PX for a, b in zip(self.k, other.k))

    @property
    def k(self) -> tuple:
        """Return (fx, fy, cx, cy)."""
        return (self.fx, self.fy, self.cx, self.cy)

    def text(self) -> str:
        """Return e.g. '640x480 fx 461.03 fy 461.03 cx 320.00 cy 240.00'."""
        return (f'{self.width}x{self.height} fx {self.fx:.2f} fy {self.fy:.2f} '
                f'cx {self.cx:.2f} cy {self.cy:.2f}')


def _fov_text(fov: Sequence[float]) -> str:
    return f'{fov[0]:.2f} x {fov[1]:.2f} deg'


def camera_from_info(width: int, height: int, k: Sequence[float], d: Sequence[float] = (),
                     binning_x: int = 0, binning_y: int = 0,
                     roi: Sequence[int] = (0, 0, 0, 0)) -> tuple:
    """
    Check the fields of a sensor_msgs/CameraInfo; return (Intrinsics, warnings).

    ``k`` is the row-major 3x3 K of ROS (pixel centres at integers), ``roi`` is
    (x_offset, y_offset, width, height). Raises CameraInfoError for an uncalibrated
    (all-zero) or non-finite K, a size of zero, a skewed or non-pinhole K, a principal
    point outside the image, binning or a region of interest.
    """
    where = 'camera_info'
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise CameraInfoError(f'{where}: size {width}x{height}, expected 1..{MAX_SIDE} pixels '
                              f'per side (a driver without calibration sends zeros)')
    k = [float(v) for v in k]
    if len(k) != 9:
        raise CameraInfoError(f'{where}.k: expected 9 values (row-major 3x3), found {len(k)}')
    if not all(math.isfinite(v) for v in k):
        raise CameraInfoError(f'{where}.k: contains NaN/Inf: {k}')
    if not any(k):
        raise CameraInfoError(f'{where}.k: all zeros: the camera is not calibrated; calibrate '
                              f'it, or set the node parameter fov_matching false and give '
                              f'image.crop in the card')
    fx, skew, cx, _, fy, cy = k[:6]
    if fx <= 0 or fy <= 0:
        raise CameraInfoError(f'{where}.k: expected fx, fy > 0, found fx {fx}, fy {fy}')
    if skew != 0 or k[3] != 0 or k[6:] != [0.0, 0.0, 1.0]:
        raise CameraInfoError(f'{where}.k: expected a pinhole K [fx, 0, cx, 0, fy, cy, 0, 0, '
                              f'1], found {k}')
    if not (-0.5 <= cx <= width - 0.5 and -0.5 <= cy <= height - 0.5):
        raise CameraInfoError(f'{where}.k: principal point ({cx}, {cy}) lies outside the '
                              f'{width}x{height} image')
    if binning_x > 1 or binning_y > 1:
        raise CameraInfoError(f'{where}: binning {binning_x}x{binning_y} is not supported '
                              f'(expected 0 or 1)')
    if any(roi) and tuple(roi) != (0, 0, width, height):
        raise CameraInfoError(f'{where}.roi: a region of interest {list(roi)} is not supported')
    warnings = []
    if any(v != 0 for v in d):
        warnings.append(f'{where}.d: distortion {[round(float(v), 6) for v in d]} is ignored '
                        f'(the image is not undistorted)')
    return Intrinsics(width, height, fx, fy, cx + 0.5, cy + 0.5), tuple(warnings)


@dataclass(frozen=True)
class FovMatch:
    """The crop of the real image that sees what the training camera saw."""

    crop: tuple                 # (x, y, width, height) in real-image pixels
    training_fov_deg: tuple     # (horizontal, vertical)
    real_fov_deg: tuple
    principal_offset_px: tuple  # real principal point minus training's, mapped (dx, dy)
    warnings: tuple = ()


def match_fov(training: Intrinsics, real: Intrinsics,
              tolerance_px: float = PRINCIPAL_POINT_TOLERANCE_PX) -> FovMatch:
    """
    Return the crop that gives the training camera's field of view (see the module text).

    Raises FovError naming both fields of view when the real camera is narrower in an
    axis, or sees too little on one side of its principal point.
    """
    t_fov, r_fov = training.fov_deg, real.fov_deg
    crop = []
    for axis, (f_t, c_t, n_t, f_r, c_r, n_r) in enumerate((
            (training.fx, training.cx, training.width, real.fx, real.cx, real.width),
            (training.fy, training.cy, training.height, real.fy, real.cy, real.height))):
        name = ('horizontal', 'vertical')[axis]
        scale = f_r / f_t  # real pixels per training pixel near the axis
        lo, size = c_r - c_t * scale, n_t * scale
        # Half a pixel of slack: a card K rounded to a few digits must still match itself.
        if size > n_r + _EDGE_SLACK_PX:
            raise FovError(f'the real camera ({real.text()}) sees {_fov_text(r_fov)}, the '
                           f'policy was trained on {_fov_text(t_fov)}: the {name} field of '
                           f"view is narrower than training's; use a wider lens or a "
                           f'camera with a shorter focal length')
        if lo < -_EDGE_SLACK_PX or lo + size > n_r + _EDGE_SLACK_PX:
            raise FovError(f'the real camera ({real.text()}, {_fov_text(r_fov)}) is wide '
                           f'enough for the training camera ({_fov_text(t_fov)}) but its '
                           f'principal point is so far off centre that the {name} crop '
                           f'[{lo:.1f}, {lo + size:.1f}) leaves the image [0, {n_r})')
        pixels = min(max(1, round(size)), n_r)
        start = min(max(0, round(lo)), n_r - pixels)
        crop += [start, pixels]
    offset = (real.cx - real.width * training.cx / training.width,
              real.cy - real.height * training.cy / training.height)
    warnings = []
    if math.hypot(*offset) > tolerance_px:
        warnings.append(f'the real principal point ({real.cx - 0.5:.1f}, {real.cy - 0.5:.1f}) '
                        f'(ROS pixels) is ({offset[0]:+.1f}, {offset[1]:+.1f}) px from where '
                        f"the training camera's lies in an image of this size; the crop "
                        f'follows the real principal point')
    return FovMatch(crop=(crop[0], crop[2], crop[1], crop[3]), training_fov_deg=t_fov,
                    real_fov_deg=r_fov, principal_offset_px=offset, warnings=tuple(warnings))


def ray_distance_scale(real: Intrinsics, crop: Optional[Sequence[int]] = None) -> np.ndarray:
    """
    Return the per-pixel factor range / z of the real camera over crop (x, y, w, h).

    float32 (h, w); None crop: the whole image. Pixel (u, v) of the source (ROS indices)
    has its centre at (u + 0.5, v + 0.5) in this module's coordinates.
    """
    x, y, w, h = crop if crop is not None else (0, 0, real.width, real.height)
    a = (np.arange(x, x + w, dtype=np.float64) + 0.5 - real.cx) / real.fx
    b = (np.arange(y, y + h, dtype=np.float64) + 0.5 - real.cy) / real.fy
    return np.sqrt(1.0 + a[np.newaxis, :] ** 2 + b[:, np.newaxis] ** 2).astype(np.float32)


def converts_depth(image: Optional[ImageSpec]) -> bool:
    """Return True when the card's depth is range along the ray (real cameras give z)."""
    return image is not None and image.data_type == 'depth' and \
        image.depth_type == 'distance_to_camera'


def needs_camera_info(image: Optional[ImageSpec], fov_matching: bool) -> bool:
    """Return True when the node needs the real camera's CameraInfo for this card."""
    if image is None:
        return False
    matches = fov_matching and image.camera is not None and image.crop is None
    return matches or converts_depth(image)


@dataclass(frozen=True)
class CameraSetup:
    """What the image pipeline does for this real camera: crop and depth conversion."""

    real: Intrinsics
    crop: Optional[tuple]            # what the pipeline crops (None: the whole image)
    match: Optional[FovMatch]        # None: no field-of-view matching (off, or card crop)
    depth_scale: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    warnings: tuple = ()

    def text(self) -> str:
        """Return one line for the log: the camera, the crop, both fields of view."""
        parts = [f'camera {self.real.text()}']
        if self.match is not None:
            parts.append(f'field of view {_fov_text(self.match.real_fov_deg)}, training '
                         f'{_fov_text(self.match.training_fov_deg)}: crop {list(self.crop)}')
        else:
            parts.append(f'no field-of-view matching, crop {self.crop}')
        if self.depth_scale is not None:
            parts.append('z-depth converted to distance_to_camera')
        return '; '.join(parts)

    def values(self) -> list:
        """Return the /diagnostics key-value pairs."""
        out = [('camera', self.real.text()),
               ('camera_crop', '' if self.crop is None else str(list(self.crop))),
               ('camera_depth_conversion', str(self.depth_scale is not None).lower())]
        if self.match is not None:
            out += [('camera_fov_deg', _fov_text(self.match.real_fov_deg)),
                    ('training_fov_deg', _fov_text(self.match.training_fov_deg))]
        if self.warnings:
            out.append(('camera_warnings', ' | '.join(self.warnings)))
        return out


def setup_camera(image: ImageSpec, real: Intrinsics, fov_matching: bool,
                 warnings: Sequence[str] = ()) -> CameraSetup:
    """
    Decide the crop and the depth conversion for a real camera (FovError, see match_fov).

    The card's explicit ``crop`` wins over field-of-view matching; matching needs the
    card's ``image.camera`` and ``fov_matching``.
    """
    match = None
    crop = image.crop
    if crop is None and fov_matching and image.camera is not None:
        match = match_fov(Intrinsics.from_spec(image.camera), real)
        crop = match.crop
    if crop is not None:
        x, y, w, h = crop
        if x + w > real.width or y + h > real.height:
            raise CameraError(f"image.crop {list(crop)} does not fit the real camera's "
                              f'{real.width}x{real.height} image')
    scale = ray_distance_scale(real, crop) if converts_depth(image) else None
    warnings = tuple(warnings) + (match.warnings if match is not None else ())
    return CameraSetup(real=real, crop=crop, match=match, depth_scale=scale, warnings=warnings)
