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

Undistortion (node parameter ``undistort``). Without it, CameraInfo distortion coefficients
are reported, not applied. With it, each frame is first remapped to the ideal pinhole
camera with the *same* K (OpenCV's plumb_bob / rational_polynomial model, or cv2.fisheye
for ROS ``equidistant``), so the crop and the depth rays above, computed from K, hold for
the remapped image. Pixel (u, v) of the result takes the source at the distorted position
of its ray (initUndistortRectifyMap); the maps are built once per CameraInfo, as OpenCV's
CV_16SC2 fixed-point maps (1/32 px), which cv2.remap reads faster than float maps. Colour
is interpolated bilinearly; depth is taken from the nearest source pixel, because blending
depth across an object's edge invents a surface between foreground and background that
never existed. A result pixel whose ray falls outside the sensor is 0 (black; invalid depth).

Depth. Isaac Lab's ``distance_to_camera`` is the range along each pixel's ray; real depth
cameras give ``distance_to_image_plane`` (z). For the pixel centred at u (ROS pixel
indices), range = z sqrt(1 + ((u - cx) / fx)^2 + ((v - cy) / fy)^2): one factor per
source pixel, computed once per CameraInfo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Optional, Sequence

import cv2
import numpy as np

from .card import CameraSpec, ImageSpec
from .image import ImageError, MAX_SIDE

# Principal points further apart than this (real-image pixels) draw a warning.
PRINCIPAL_POINT_TOLERANCE_PX = 3.0
# Rounding the crop to whole pixels may overshoot the real image by up to half a pixel.
_EDGE_SLACK_PX = 0.5
# Two CameraInfo messages describe the same calibration when K agrees to this (pixels)
# and the distortion coefficients to _SAME_D: a driver that recomputes them per message
# may differ in the last bits, which is no change of calibration.
_SAME_K_PX = 1e-6
_SAME_D = 1e-9


class CameraError(ValueError):
    """The real camera cannot give the training camera's view; the message says why."""


class CameraInfoError(CameraError):
    """A CameraInfo message is unusable (zeros, NaN, an unsupported model, a change)."""


class FovError(CameraError):
    """The real camera's field of view is narrower than the training camera's."""


class FrameSizeError(ImageError):
    """An image's size disagrees with the camera's CameraInfo."""


# ROS distortion model (sensor_msgs/distortion_models.hpp) -> coefficients in CameraInfo.d.
DISTORTION_MODELS = {'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4}


@dataclass(frozen=True)
class Distortion:
    """The lens distortion of a CameraInfo, as the node undistorts it."""

    model: str           # a key of DISTORTION_MODELS
    coefficients: tuple  # CameraInfo.d, in the model's order


@dataclass(frozen=True)
class Intrinsics:
    """
    A camera: size and K, pixel edges at integer coordinates (Isaac Lab's).

    ``distortion`` is set only for a real camera whose images the node undistorts; None:
    an ideal pinhole camera (or distortion the node ignores).
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: Optional[Distortion] = None

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
        """Return True when other is the same calibration (size, distortion, K within 1e-6 px)."""
        mine, theirs = self.distortion, other.distortion
        if (mine is None) != (theirs is None) or mine is not None and (
                mine.model != theirs.model or any(
                    abs(a - b) > _SAME_D for a, b in zip(mine.coefficients,
                                                         theirs.coefficients))):
            return False
        return (self.width, self.height) == (other.width, other.height) and all(
            abs(a - b) <= _SAME_K_PX for a, b in zip(self.k, other.k))

    def cv_matrix(self) -> np.ndarray:
        """Return K as OpenCV's 3x3 float64 matrix (pixel centres at integers, ROS's)."""
        return np.array([[self.fx, 0.0, self.cx - 0.5], [0.0, self.fy, self.cy - 0.5],
                         [0.0, 0.0, 1.0]])

    @property
    def k(self) -> tuple:
        """Return (fx, fy, cx, cy)."""
        return (self.fx, self.fy, self.cx, self.cy)

    def text(self) -> str:
        """Return e.g. '640x480 fx 461.03 fy 461.03 cx 320.00 cy 240.00'."""
        text = (f'{self.width}x{self.height} fx {self.fx:.2f} fy {self.fy:.2f} '
                f'cx {self.cx:.2f} cy {self.cy:.2f}')
        if self.distortion is not None:
            text += f' {self.distortion.model} {list(self.distortion.coefficients)}'
        return text


def _fov_text(fov: Sequence[float]) -> str:
    return f'{fov[0]:.2f} x {fov[1]:.2f} deg'


def camera_from_info(width: int, height: int, k: Sequence[float], d: Sequence[float] = (),
                     binning_x: int = 0, binning_y: int = 0,
                     roi: Sequence[int] = (0, 0, 0, 0), distortion_model: str = '',
                     undistort: bool = False) -> tuple:
    """
    Check the fields of a sensor_msgs/CameraInfo; return (Intrinsics, warnings).

    ``k`` is the row-major 3x3 K of ROS (pixel centres at integers), ``roi`` is
    (x_offset, y_offset, width, height). Raises CameraInfoError for an uncalibrated
    (all-zero) or non-finite K, a size of zero, a skewed or non-pinhole K, a principal
    point outside the image, binning or a region of interest, and non-finite distortion.
    With ``undistort``, non-zero distortion is kept in the Intrinsics (the image will be
    undistorted) and must be a model of DISTORTION_MODELS with its number of coefficients;
    without, it is ignored with a warning.
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
    d = [float(v) for v in d]
    if not all(math.isfinite(v) for v in d):
        raise CameraInfoError(f'{where}.d: contains NaN/Inf: {d} (distortion model '
                              f'{distortion_model!r}): the calibration is broken')
    warnings, distortion = [], None
    if any(d) and not undistort:
        warnings.append(f'{where}.d: distortion {[round(v, 6) for v in d]} is ignored '
                        f'(the image is not undistorted; node parameter undistort)')
    elif any(d):
        distortion = _distortion(distortion_model, d, where)
    return Intrinsics(width, height, fx, fy, cx + 0.5, cy + 0.5, distortion), tuple(warnings)


def _distortion(model: str, d: list, where: str) -> Distortion:
    if model not in DISTORTION_MODELS:
        raise CameraInfoError(f'{where}.distortion_model: {model!r} with distortion {d} '
                              f'cannot be undistorted; expected one of '
                              f'{sorted(DISTORTION_MODELS)} (or set the node parameter '
                              f'undistort false)')
    if len(d) != DISTORTION_MODELS[model]:
        raise CameraInfoError(f'{where}.d: {model} takes {DISTORTION_MODELS[model]} '
                              f'coefficients, found {len(d)}: {d}')
    return Distortion(model, tuple(d))


def undistort_maps(real: Intrinsics) -> tuple:
    """
    Return float32 (map_x, map_y), (height, width): where each undistorted pixel samples.

    Undistorted pixel (u, v) (ROS indices) of the pinhole camera with the real camera's own
    K looks along the ray ((u - cx) / fx, (v - cy) / fy, 1); map_x[v, u], map_y[v, u] is
    where the distorted lens images that ray. ``real.distortion`` must be set.
    """
    dist = real.distortion
    k = real.cv_matrix()
    coefficients = np.array(dist.coefficients, dtype=np.float64)
    size = (real.width, real.height)
    if dist.model == 'equidistant':
        return cv2.fisheye.initUndistortRectifyMap(k, coefficients, np.eye(3), k, size,
                                                   cv2.CV_32FC1)
    return cv2.initUndistortRectifyMap(k, coefficients, None, k, size, cv2.CV_32FC1)


class Undistortion:
    """The per-frame remap of a real camera's images to the pinhole camera with its K."""

    def __init__(self, real: Intrinsics, nearest: bool):
        try:
            map_x, map_y = undistort_maps(real)
            # Fixed point from float maps: convertMaps rounds to the nearest pixel for
            # nearest-neighbour maps, where initUndistortRectifyMap's CV_16SC2 would floor.
            self.map1, self.map2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2,
                                                   nninterpolation=nearest)
        except (cv2.error, MemoryError) as exc:
            # A bogus CameraInfo (a huge size) must hold the robot, not end the node.
            raise CameraInfoError(f'camera_info: cannot build the undistortion maps for '
                                  f'{real.text()}: {exc}') from None
        self.interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
        self.size = (real.width, real.height)
        self.model = real.distortion.model
        # The fraction of the result whose ray misses the sensor (filled with 0).
        # Where the result's ray misses the sensor (the result is 0 there).
        self._outside = (map_x < -0.5) | (map_x > real.width - 0.5) | (map_y < -0.5) | \
            (map_y > real.height - 0.5)
        self._out: dict = {}  # (channels, dtype) -> the preallocated result

    def outside_fraction(self, crop: Optional[Sequence[int]] = None) -> float:
        """Return the fraction of the result (over crop x, y, w, h) that no sensor pixel sees."""
        x, y, w, h = crop if crop is not None else (0, 0) + self.size
        return float(self._outside[y:y + h, x:x + w].mean())

    def __call__(self, src: np.ndarray) -> np.ndarray:
        """Undistort an (H, W, C) view (any row stride); returns a preallocated (H, W, C)."""
        height, width, channels = src.shape
        if (width, height) != self.size:
            raise FrameSizeError(f'image is {width}x{height} but the undistortion maps are '
                                 f'for {self.size[0]}x{self.size[1]} (camera_info)')
        if not src.dtype.isnative:
            src = src.astype(src.dtype.newbyteorder('='))  # OpenCV would misread the bytes
        key = (channels, src.dtype)
        if key not in self._out:
            self._out[key] = np.zeros(src.shape, dtype=src.dtype)
        out = self._out[key]
        # OpenCV drops a single channel's axis: write into the (H, W) plane of out.
        dst = out[:, :, 0] if channels == 1 else out
        cv2.remap(src, self.map1, self.map2, self.interpolation, dst=dst,
                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out


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


def needs_camera_info(image: Optional[ImageSpec], fov_matching: bool,
                      undistort: bool = False) -> bool:
    """Return True when the node needs the real camera's CameraInfo for this card."""
    if image is None:
        return False
    matches = fov_matching and image.camera is not None and image.crop is None
    return matches or undistort or converts_depth(image)


@dataclass(frozen=True)
class CameraSetup:
    """What the image pipeline does for this real camera: undistortion, crop, depth rays."""

    real: Intrinsics
    crop: Optional[tuple]            # what the pipeline crops (None: the whole image)
    match: Optional[FovMatch]        # None: no field-of-view matching (off, or card crop)
    depth_scale: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    warnings: tuple = ()
    # None: the images are used as they come (no distortion, or undistort off).
    undistortion: Optional[Undistortion] = field(default=None, compare=False, repr=False)

    def text(self) -> str:
        """Return one line for the log: the camera, the crop, both fields of view."""
        parts = [f'camera {self.real.text()}']
        if self.undistortion is not None:
            parts.append(f'undistorted ({self.real.distortion.model}) to the pinhole camera '
                         f'with the same K')
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
               ('camera_depth_conversion', str(self.depth_scale is not None).lower()),
               ('camera_undistortion', 'none' if self.undistortion is None else
                self.real.distortion.model)]
        if self.match is not None:
            out += [('camera_fov_deg', _fov_text(self.match.real_fov_deg)),
                    ('training_fov_deg', _fov_text(self.match.training_fov_deg))]
        if self.warnings:
            out.append(('camera_warnings', ' | '.join(self.warnings)))
        return out


def setup_camera(image: ImageSpec, real: Intrinsics, fov_matching: bool,
                 warnings: Sequence[str] = ()) -> CameraSetup:
    """
    Decide undistortion, crop and depth conversion for a real camera (FovError: match_fov).

    The card's explicit ``crop`` wins over field-of-view matching; matching needs the
    card's ``image.camera`` and ``fov_matching``. The images are undistorted when
    ``real.distortion`` is set (camera_from_info with ``undistort``): depth by nearest
    neighbour, colour bilinearly.
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
    undistortion = None
    if real.distortion is not None:
        undistortion = Undistortion(real, nearest=image.data_type == 'depth')
        outside = undistortion.outside_fraction(crop)
        if outside > 0:
            warnings += (f'undistortion: {outside:.1%} of the (cropped) image sees no sensor '
                         f'pixel and is 0 there',)
    return CameraSetup(real=real, crop=crop, match=match, depth_scale=scale, warnings=warnings,
                       undistortion=undistortion)
