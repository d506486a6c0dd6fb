"""
Policy card: the contract between a trained policy and the robot.

A card says what the exported network was fed in training (observation groups,
terms in order, joint order, image pipeline) and how its output becomes joint
targets. It is loaded from YAML (beside the ONNX file, or embedded in the ONNX
metadata by ``vision_policy_export``) and validated once, with errors that name
the field and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml

FORMAT_VERSION = 1
# Key under which the card YAML is stored in the ONNX model's metadata_props.
ONNX_METADATA_KEY = 'vision_policy.card'

IMAGE_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', '16UC1', '32FC1')
INTERPOLATIONS = ('nearest', 'linear', 'area', 'cubic')
RGB_NORMALIZATIONS = ('none', 'scale', 'isaaclab')
LAYOUTS = ('NCHW', 'NHWC')
DTYPES = ('float32',)
# Isaac Lab's depth data types: z-depth (what real depth cameras give) or range along the ray.
DEPTH_TYPES = ('distance_to_image_plane', 'distance_to_camera')
PINHOLE_FIELDS = ('focal_length', 'horizontal_aperture', 'vertical_aperture',
                  'horizontal_aperture_offset', 'vertical_aperture_offset')


# Action term types whose clip bounds something other than an absolute position target:
# a relative step, a velocity.
NON_POSITION_CLIPS = ('relative_joint_position', 'joint_velocity')


class CardError(ValueError):
    """A policy card is malformed; the message names the field and what was expected."""


@dataclass(frozen=True)
class TermSpec:
    """One observation term: computed, clipped, scaled, then stacked over history."""

    name: str
    scale: Optional[tuple] = None
    clip: Optional[tuple] = None
    history_length: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupSpec:
    """An observation group: its terms concatenated in declaration order."""

    name: str
    terms: tuple
    # Isaac Lab: a group-level history_length overrides every term's.
    history_length: Optional[int] = None
    flatten_history_dim: bool = True

    def term_history(self, term: TermSpec) -> int:
        """History length in effect for a term (0 = no history buffer)."""
        return self.history_length if self.history_length is not None else term.history_length


@dataclass(frozen=True)
class CameraSpec:
    """
    The training camera: resolution and pinhole intrinsics, in Isaac Lab's pixel convention.

    ``fx, fy, cx, cy`` follow Isaac Lab's ``intrinsic_matrices``: pixel edges lie at
    integer coordinates, so a centred principal point is (width / 2, height / 2) (ROS
    CameraInfo puts pixel centres there: (width - 1) / 2). The card gives either ``K``
    or the fields of Isaac Lab's ``PinholeCameraCfg`` (kept in ``pinhole`` so the card
    writes back what it read).
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    pinhole: Optional[Mapping[str, Optional[float]]] = None

    @property
    def k(self) -> tuple:
        """Return [fx, fy, cx, cy]."""
        return (self.fx, self.fy, self.cx, self.cy)


@dataclass(frozen=True)
class ImageSpec:
    """The camera pipeline: source → crop → resize → colour order → normalisation → layout."""

    width: int
    height: int
    data_type: str = 'rgb'
    source_encodings: tuple = ('rgb8', 'bgr8', 'rgba8', 'bgra8')
    crop: Optional[tuple] = None
    interpolation: str = 'area'
    color_order: str = 'rgb'
    normalize: str = 'scale'
    max_depth: Optional[float] = None
    layout: str = 'NCHW'
    # The training camera (None: unknown, no field-of-view matching) and, for depth, the
    # Isaac Lab depth type the policy was trained on.
    camera: Optional[CameraSpec] = None
    depth_type: str = 'distance_to_image_plane'
    # '' for the card's one ``image:`` section; the camera's key under ``images:``.
    name: str = ''

    @property
    def channels(self) -> int:
        """Channels of the processed image (3 for RGB, 1 for depth)."""
        return 3 if self.data_type == 'rgb' else 1


@dataclass(frozen=True)
class ActionTermSpec:
    """
    One action term: a slice of the network output -> targets for its joints.

    ``type`` names a registered action term (registry.py); ``params`` are its
    own fields, checked by that term at configure. ``clip`` is the target
    range per joint ([lo, hi] each) when the term has one.
    """

    type: str  # noqa: A003 (the card field is called type)
    joint_names: tuple
    params: Mapping[str, Any] = field(default_factory=dict)
    clip: Optional[tuple] = None
    name: str = ''


@dataclass(frozen=True)
class ActionSpec:
    """
    Network output -> joint targets, by action terms in output order.

    A card with one ``joint_position`` mapping (target = raw x scale + offset,
    then clip) keeps ``scale``/``offset``/``clip`` here as before; a card with
    ``action.terms`` lists several terms (``type: terms``), and ``clip`` is the
    per-joint target range when every term gives one.
    """

    joint_names: tuple
    scale: tuple
    offset: tuple
    clip: Optional[tuple] = None
    type: str = 'joint_position'  # noqa: A003 (the card field is called type)
    terms: tuple = ()


@dataclass(frozen=True)
class InputSpec:
    """A model input and what feeds it: an observation group, a recurrent state, a latent."""

    name: str
    shape: tuple
    dtype: str = 'float32'
    group: Optional[str] = None
    state_of: Optional[str] = None
    # An actor input fed by an output of the card's encoder (the latent between them).
    encoder: Optional[str] = None


@dataclass(frozen=True)
class EncoderSpec:
    """
    A second model that runs on each new camera frame and feeds latents to the actor.

    The extreme-parkour family: a depth encoder (with a GRU) at the camera rate, the actor
    at the control rate on the latest latent. ``model`` is relative to the actor ONNX
    file's folder (or absolute); ``inputs`` use the card's InputSpec syntax (groups and
    recurrent states, never another encoder); ``outputs`` are the latents the actor reads.
    """

    model: str
    inputs: tuple
    outputs: tuple
    # Pairs (state input name, matching output name), carried from frame to frame.
    recurrent: tuple = ()


@dataclass(frozen=True)
class PolicyCard:
    """Everything needed to feed a policy exactly as in training and apply its output."""

    name: str
    control_dt: float
    joint_names: tuple
    default_joint_pos: tuple
    inputs: tuple
    action_output: str
    groups: tuple
    action: ActionSpec
    # The cameras, in card order: one unnamed (``image:``) or several named (``images:``).
    images: tuple = ()
    # Pairs (state input name, matching output name) for recurrent policies.
    recurrent: tuple = ()
    format_version: int = FORMAT_VERSION
    # The training actuators per joint (stiffness, damping, effort_limit, velocity_limit,
    # delay_steps, ...): information for the robot's controller, not applied by the node.
    actuators: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Several cameras: how far apart (s) the stamps of the frames one tick uses may be;
    # None: the node's parameter decides.
    max_camera_skew: Optional[float] = None
    # Encoder + actor policies: the model run per camera frame; None: one model.
    encoder: Optional[EncoderSpec] = None

    @property
    def image(self) -> Optional[ImageSpec]:
        """Return the first (for most cards the only) camera, None for a camera-less card."""
        return self.images[0] if self.images else None

    def camera(self, name: str) -> ImageSpec:
        """Return the camera called name ('' for the unnamed one of ``image:``)."""
        for spec in self.images:
            if spec.name == name:
                return spec
        raise CardError(f'camera {name!r} not in card (have {[s.name for s in self.images]})')

    def group(self, name: str) -> GroupSpec:
        """Return the observation group called name."""
        for g in self.groups:
            if g.name == name:
                return g
        raise CardError(f'observation group {name!r} not in card (have {self.group_names})')

    @property
    def group_names(self) -> list:
        """Names of the observation groups, in order."""
        return [g.name for g in self.groups]

    def to_dict(self) -> dict:
        """Plain-data form of the card, in the YAML layout that card_from_dict reads."""
        def term(t: TermSpec) -> dict:
            out = {'name': t.name}
            if t.scale is not None:
                out['scale'] = t.scale[0] if len(t.scale) == 1 else list(t.scale)
            if t.clip is not None:
                out['clip'] = list(t.clip)
            if t.history_length:
                out['history_length'] = t.history_length
            if t.params:
                out['params'] = _plain(dict(t.params))
            return out

        def group(g: GroupSpec) -> dict:
            out = {'terms': [term(t) for t in g.terms]}
            if g.history_length is not None:
                out['history_length'] = g.history_length
            if not g.flatten_history_dim:
                out['flatten_history_dim'] = False
            return out

        data = {'format_version': self.format_version, 'name': self.name,
                'control_dt': self.control_dt, 'joint_names': list(self.joint_names),
                'default_joint_pos': list(self.default_joint_pos),
                'inputs': [_input_dict(i) for i in self.inputs],
                'action_output': self.action_output,
                'observations': {g.name: group(g) for g in self.groups}}
        if self.recurrent:
            data['recurrent'] = [list(p) for p in self.recurrent]
        if self.encoder is not None:
            enc = self.encoder
            data['encoder'] = {'model': enc.model,
                               'inputs': [_input_dict(i) for i in enc.inputs],
                               'recurrent': [list(p) for p in enc.recurrent],
                               'outputs': list(enc.outputs)}
        if self.images and not self.images[0].name:
            data['image'] = _image_dict(self.images[0])
        elif self.images:
            data['images'] = {im.name: _image_dict(im) for im in self.images}
        if self.max_camera_skew is not None:
            data['max_camera_skew'] = self.max_camera_skew
        a = self.action
        if a.type == 'terms':
            data['action'] = {'terms': [_action_term_dict(t) for t in a.terms]}
        else:
            data['action'] = {'type': a.type, 'joint_names': list(a.joint_names),
                              'scale': list(a.scale), 'offset': list(a.offset),
                              'clip': None if a.clip is None else [list(c) for c in a.clip]}
        if self.actuators:
            data['actuators'] = {j: dict(v) for j, v in self.actuators.items()}
        return data

    def to_yaml(self) -> str:
        """Return the card as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


def _image_dict(im: ImageSpec) -> dict:
    out = {'data_type': im.data_type, 'source_encodings': list(im.source_encodings),
           'crop': None if im.crop is None else list(im.crop), 'resize': [im.width, im.height],
           'interpolation': im.interpolation, 'color_order': im.color_order,
           'normalize': im.normalize, 'max_depth': im.max_depth, 'layout': im.layout}
    if im.data_type == 'depth':
        out['depth_type'] = im.depth_type
    if im.camera is not None:
        out['camera'] = _camera_dict(im.camera)
    return out


def _input_dict(spec: InputSpec) -> dict:
    return {k: v for k, v in (('name', spec.name), ('shape', list(spec.shape)),
                              ('dtype', spec.dtype), ('group', spec.group),
                              ('state_of', spec.state_of), ('encoder', spec.encoder))
            if v is not None}


def _camera_dict(camera: CameraSpec) -> dict:
    out = {'width': camera.width, 'height': camera.height}
    if camera.pinhole is not None:
        out.update(camera.pinhole)
    else:
        out['K'] = list(camera.k)
    return out


def _action_term_dict(t: ActionTermSpec) -> dict:
    out = {'type': t.type}
    if t.name:
        out['name'] = t.name
    out['joint_names'] = list(t.joint_names)
    out.update(_plain(dict(t.params)))
    if t.clip is not None:
        out['clip'] = [list(c) for c in t.clip]
    return out


def actuator_text(fields: Mapping[str, Any]) -> str:
    """Return one line of actuator fields: 'ImplicitActuator stiffness 100 damping 2 ...'."""
    parts = [str(fields['type'])] if 'type' in fields else []
    parts += [f'{k} {v:.6g}' for k, v in fields.items() if k != 'type']
    return ' '.join(parts)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------

class _Fields:
    """Reads fields from one mapping, with errors that name the full path."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, Mapping):
            raise CardError(f'{where}: expected a mapping, found {type(data).__name__}')
        self.data = data
        self.where = where
        self.used = set()

    def path(self, key: str) -> str:
        return f'{self.where}.{key}' if self.where else key

    def get(self, key: str, default: Any = ..., kind: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise CardError(f'{self.path(key)}: required field is missing')
            return default
        value = self.data[key]
        bad = kind is not None and not isinstance(value, kind)
        if isinstance(value, bool) and kind is not bool:
            bad = True
        if bad:
            raise CardError(f'{self.path(key)}: expected {_kind_name(kind)}, found {value!r}')
        return value

    def choice(self, key: str, choices: Sequence[str], default: Any = ...) -> str:
        value = self.get(key, default, str)
        if value not in choices:
            raise CardError(f'{self.path(key)}: expected one of {list(choices)}, found {value!r}')
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise CardError(f'{self.where or "card"}: unknown field(s) {unknown}')


def _kind_name(kind: Any) -> str:
    if isinstance(kind, tuple):
        return ' or '.join(k.__name__ for k in kind)
    return kind.__name__


def _floats(value: Any, where: str, length: Optional[int] = None) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise CardError(f'{where}: expected a list of numbers, found {value!r}')
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise CardError(f'{where}[{i}]: expected a finite number, found {v!r}')
        out.append(float(v))
    if length is not None and len(out) != length:
        raise CardError(f'{where}: expected {length} values, found {len(out)}')
    return tuple(out)


def _names(value: Any, where: str) -> tuple:
    if not isinstance(value, (list, tuple)) or not value:
        raise CardError(f'{where}: expected a non-empty list of names, found {value!r}')
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v:
            raise CardError(f'{where}[{i}]: expected a name, found {v!r}')
    dup = sorted({v for v in value if list(value).count(v) > 1})
    if dup:
        raise CardError(f'{where}: duplicate name(s) {dup}')
    return tuple(value)


def _range(value: Any, where: str) -> tuple:
    lo, hi = _floats(value, where, 2)
    if lo > hi:
        raise CardError(f'{where}: lower bound {lo} is above upper bound {hi}')
    return (lo, hi)


def _term(data: Any, where: str) -> TermSpec:
    f = _Fields(data, where)
    name = f.get('name', kind=str)
    scale = f.get('scale', None, (int, float, list))
    if scale is not None:
        scale = (float(scale),) if isinstance(scale, (int, float)) else _floats(
            scale, f.path('scale'))
    clip = f.get('clip', None, list)
    if clip is not None:
        clip = _range(clip, f.path('clip'))
    history = f.get('history_length', 0, int)
    if history < 0:
        raise CardError(f'{f.path("history_length")}: expected >= 0, found {history}')
    params = dict(f.get('params', {}, Mapping))
    f.finish()
    return TermSpec(name=name, scale=scale, clip=clip, history_length=history, params=params)


def _group(name: str, data: Any, where: str) -> GroupSpec:
    f = _Fields(data, where)
    terms_data = f.get('terms', kind=list)
    if not terms_data:
        raise CardError(f'{f.path("terms")}: a group needs at least one term')
    terms = tuple(_term(t, f'{f.path("terms")}[{i}]') for i, t in enumerate(terms_data))
    history = f.get('history_length', None, int)
    if history is not None and history < 0:
        raise CardError(f'{f.path("history_length")}: expected >= 0, found {history}')
    flatten = f.get('flatten_history_dim', True, bool)
    f.finish()
    # A term may repeat: Isaac Lab groups use one function twice (joint_pos_rel of the legs
    # and of the arm; imu_orientation and root_quat_w), and the builder keys them '#i'.
    return GroupSpec(name=name, terms=terms, history_length=history, flatten_history_dim=flatten)


def _image(data: Any, where: str = 'image', name: str = '') -> ImageSpec:
    f = _Fields(data, where)
    size = f.get('resize', kind=list)
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise CardError(f'{where}.resize: expected [width, height] in pixels, found {size!r}')
    data_type = f.choice('data_type', ('rgb', 'depth'), 'rgb')
    default_enc = ('rgb8', 'bgr8', 'rgba8', 'bgra8') if data_type == 'rgb' else ('32FC1', '16UC1')
    encodings = tuple(f.get('source_encodings', list(default_enc), list))
    for i, enc in enumerate(encodings):
        if enc not in IMAGE_ENCODINGS:
            raise CardError(f'{where}.source_encodings[{i}]: expected one of '
                            f'{list(IMAGE_ENCODINGS)}, found {enc!r}')
        is_depth = enc in ('16UC1', '32FC1')
        if is_depth != (data_type == 'depth') and not (enc == 'mono8' and data_type == 'rgb'):
            raise CardError(f'{where}.source_encodings[{i}]: {enc!r} cannot feed a '
                            f'{data_type!r} image')
    crop = f.get('crop', None, list)
    if crop is not None:
        if len(crop) != 4 or not all(isinstance(v, int) and v >= 0 for v in crop) or \
                crop[2] == 0 or crop[3] == 0:
            raise CardError(f'{where}.crop: expected [x, y, width, height] in source pixels '
                            f'with width, height > 0, found {crop!r}')
        crop = tuple(crop)
    interpolation = f.choice('interpolation', INTERPOLATIONS, 'area')
    color_order = f.choice('color_order', ('rgb', 'bgr'), 'rgb')
    normalize = f.choice('normalize', RGB_NORMALIZATIONS if data_type == 'rgb' else ('none',),
                         'scale' if data_type == 'rgb' else 'none')
    max_depth = f.get('max_depth', None, (int, float))
    if max_depth is not None:
        if data_type != 'depth' or max_depth <= 0:
            raise CardError(f'{where}.max_depth: only for depth images and > 0, found '
                            f'{max_depth!r}')
        max_depth = float(max_depth)
    layout = f.choice('layout', LAYOUTS, 'NCHW')
    depth_type = f.choice('depth_type', DEPTH_TYPES, DEPTH_TYPES[0])
    if depth_type != DEPTH_TYPES[0] and data_type != 'depth':
        raise CardError(f'{where}.depth_type: only for depth images, found {depth_type!r} with '
                        f'data_type {data_type!r}')
    camera = f.get('camera', None, Mapping)
    camera = None if camera is None else _camera(camera, f'{where}.camera')
    f.finish()
    return ImageSpec(width=size[0], height=size[1], data_type=data_type,
                     source_encodings=encodings, crop=crop, interpolation=interpolation,
                     color_order=color_order, normalize=normalize, max_depth=max_depth,
                     layout=layout, camera=camera, depth_type=depth_type, name=name)


def _camera(data: Any, where: str = 'image.camera') -> CameraSpec:
    """
    Read the training camera from ``image.camera``: K, or Isaac Lab's pinhole spawn fields.

    The pinhole form follows Isaac Lab's ``Camera._update_intrinsic_matrices`` (Camera and
    TiledCamera): fx = fy = width x focal_length / horizontal_aperture, principal point at
    the image centre. Omniverse renders square pixels and ignores aperture offsets, so a
    vertical_aperture other than horizontal_aperture x height / width, or an offset, is
    refused (give K for such a camera: the importer writes K for a RayCasterCamera, whose
    pattern does use them).
    """
    f = _Fields(data, where)
    size = []
    for key in ('width', 'height'):
        value = f.get(key, kind=int)
        if value <= 0:
            raise CardError(f'{where}.{key}: expected pixels > 0, found {value}')
        size.append(value)
    width, height = size
    k = f.get('K', None, list)
    given = [key for key in PINHOLE_FIELDS if data.get(key) is not None]
    if (k is None) == (not given):
        raise CardError(f'{where}: give either K [fx, fy, cx, cy] or the pinhole fields '
                        f"of Isaac Lab's PinholeCameraCfg {list(PINHOLE_FIELDS)}, found K={k!r} "
                        f'and {given}')
    if k is not None:
        f.used.update(PINHOLE_FIELDS)  # all null here
        fx, fy, cx, cy = _floats(k, f'{where}.K', 4)
        if fx <= 0 or fy <= 0:
            raise CardError(f'{where}.K: expected fx, fy > 0, found {list(k)}')
        if not (0 <= cx <= width and 0 <= cy <= height):
            raise CardError(f'{where}.K: principal point ({cx}, {cy}) lies outside the '
                            f'{width}x{height} image')
        f.finish()
        return CameraSpec(width, height, fx, fy, cx, cy)
    pin = {}
    for i, key in enumerate(PINHOLE_FIELDS):
        value = f.get(key, ... if i < 2 else None, (int, float))  # focal length, h. aperture
        if value is not None and not math.isfinite(value):
            raise CardError(f'{where}.{key}: expected a finite number, found {value!r}')
        pin[key] = None if value is None else float(value)
    f.finish()
    for key in ('focal_length', 'horizontal_aperture'):
        if pin[key] <= 0:
            raise CardError(f'{where}.{key}: expected > 0 (cm), found {pin[key]}')
    square = pin['horizontal_aperture'] * height / width
    va = pin['vertical_aperture']
    if va is not None and abs(va - square) > 1e-6 * square:
        raise CardError(f'{where}.vertical_aperture: Isaac Lab renders square pixels, so '
                        f'it is horizontal_aperture x height / width = {square:.6g} (or null), '
                        f'found {va}; give K for a camera with other pixels')
    for key in PINHOLE_FIELDS[3:]:
        if pin[key]:
            raise CardError(f"{where}.{key}: Isaac Lab's Camera ignores aperture offsets "
                            f'(principal point at the image centre), found {pin[key]}; give K '
                            f'for an off-centre principal point')
    fx = width * pin['focal_length'] / pin['horizontal_aperture']
    pinhole = {k: v for k, v in pin.items() if v is not None}
    return CameraSpec(width, height, fx, fx, width / 2.0, height / 2.0, pinhole)


def _joint_position_fields(f: _Fields, names: tuple, joint_names: tuple,
                           default_pos: tuple) -> tuple:
    """(scale, offset, clip) of a joint_position mapping, one value per joint."""
    n = len(names)
    scale = f.get('scale', 1.0, (int, float, list))
    scale = (float(scale),) * n if isinstance(scale, (int, float)) else _floats(
        scale, f.path('scale'), n)
    offset = f.get('offset', 'default', (str, int, float, list))
    if offset == 'default':
        offset = tuple(default_pos[joint_names.index(j)] for j in names)
    elif isinstance(offset, str):
        raise CardError(f"{f.path('offset')}: expected 'default', a number or {n} numbers, "
                        f'found {offset!r}')
    elif isinstance(offset, (int, float)):
        offset = (float(offset),) * n
    else:
        offset = _floats(offset, f.path('offset'), n)
    return scale, offset, _clip_pairs(f, n)


def _clip_pairs(f: _Fields, n: int) -> Optional[tuple]:
    clip = f.get('clip', None, list)
    if clip is None:
        return None
    if len(clip) != n:
        raise CardError(f'{f.path("clip")}: expected {n} [lo, hi] pairs, found {len(clip)}')
    return tuple(_range(c, f'{f.path("clip")}[{i}]') for i, c in enumerate(clip))


def _action_joints(f: _Fields, joint_names: tuple, default: Any = ...) -> tuple:
    names = _names(f.get('joint_names', default, list), f.path('joint_names'))
    unknown = [n for n in names if n not in joint_names]
    if unknown:
        raise CardError(f'{f.path("joint_names")}: {unknown} not in joint_names '
                        f'{list(joint_names)}')
    return names


def _action_term(data: Any, where: str, joint_names: tuple,
                 default_pos: tuple) -> ActionTermSpec:
    f = _Fields(data, where)
    kind = f.get('type', kind=str)
    label = f.get('name', '', str)
    names = _action_joints(f, joint_names)
    if kind == 'joint_position':
        scale, offset, clip = _joint_position_fields(f, names, joint_names, default_pos)
        params = {'scale': scale, 'offset': offset}
    else:
        clip = _clip_pairs(f, len(names))
        # The term's own fields; the registered action term checks them at configure.
        own = ('type', 'name', 'joint_names', 'clip')
        params = {k: v for k, v in data.items() if k not in own}
        f.used.update(params)
    f.finish()
    return ActionTermSpec(type=kind, joint_names=names, params=params, clip=clip, name=label)


def _action(data: Any, joint_names: tuple, default_pos: tuple) -> ActionSpec:
    f = _Fields(data, 'action')
    if 'terms' in data:
        terms_data = f.get('terms', kind=list)
        f.finish()
        if not terms_data:
            raise CardError('action.terms: expected at least one action term')
        terms = tuple(_action_term(t, f'action.terms[{i}]', joint_names, default_pos)
                      for i, t in enumerate(terms_data))
        names = tuple(j for t in terms for j in t.joint_names)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise CardError(f'action.terms: joint(s) {dup} driven by more than one term')
        # The card-wide clip stands in for the robot's position limits (SafetyLimits.from_card),
        # so it exists only when every term clips a position target. A relative term's clip
        # bounds a step, a velocity term's a velocity: taken as position limits, a hold
        # would jump the robot into them.
        clip = None
        if all(t.clip is not None and t.type not in NON_POSITION_CLIPS for t in terms):
            clip = tuple(c for t in terms for c in t.clip)
        return ActionSpec(joint_names=names, scale=(), offset=(), clip=clip, type='terms',
                          terms=terms)
    kind = f.choice('type', ('joint_position',), 'joint_position')
    names = _action_joints(f, joint_names, list(joint_names))
    scale, offset, clip = _joint_position_fields(f, names, joint_names, default_pos)
    f.finish()
    term = ActionTermSpec(type='joint_position', joint_names=names,
                          params={'scale': scale, 'offset': offset}, clip=clip)
    return ActionSpec(joint_names=names, scale=scale, offset=offset, clip=clip, type=kind,
                      terms=(term,))


ACTUATOR_FIELDS = ('type', 'stiffness', 'damping', 'effort_limit', 'velocity_limit',
                   'armature', 'friction', 'delay_steps', 'min_delay_steps')


def _actuators(data: Any, joint_names: tuple) -> Mapping[str, Mapping[str, Any]]:
    """Per joint actuator fields (numbers, or type: the Isaac Lab actuator class)."""
    f = _Fields(data, 'actuators')
    out = {}
    for joint in data:
        where = f'actuators.{joint}'
        if joint not in joint_names:
            raise CardError(f'{where}: {joint!r} is not in joint_names')
        fields = _Fields(f.get(joint, kind=Mapping), where)
        entry = {}
        for key in ACTUATOR_FIELDS:
            value = fields.get(key, None, str if key == 'type' else (int, float))
            if value is not None:
                entry[key] = value if key == 'type' else float(value)
        fields.finish()
        out[joint] = entry
    f.finish()
    return out


def _input(data: Any, where: str, latent: bool = True) -> InputSpec:
    """Read one model input; ``latent``: it may be fed by an encoder output (the actor's)."""
    f = _Fields(data, where)
    name = f.get('name', kind=str)
    shape = f.get('shape', kind=list)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                            for d in shape):
        raise CardError(f'{f.path("shape")}: expected integer dims >= 0, found {shape!r}')
    dtype = f.choice('dtype', DTYPES, 'float32')
    group = f.get('group', None, str)
    state_of = f.get('state_of', None, str)
    encoder = f.get('encoder', None, str)
    if encoder is not None and not latent:
        raise CardError(f'{f.path("encoder")}: an encoder input is fed by observation groups '
                        f'and recurrent states, not by an encoder output, found {encoder!r}')
    f.finish()
    empty = 0 in shape
    feeds = {'group': group, 'state_of': state_of, 'encoder': encoder}
    given = {k: v for k, v in feeds.items() if v is not None}
    kinds = ('group (an observation group), state_of (the recurrent output it carries) or '
             'encoder (the encoder output it reads)' if latent else
             'group (an observation group) or state_of (the recurrent output it carries)')
    if empty and given:
        raise CardError(f'{where}: an input of shape {shape} holds no values; it takes '
                        f'no {kinds} (it is fed with an empty array), found {given}')
    if not empty and len(given) != 1:
        raise CardError(f'{where}: give exactly one of {kinds}, found '
                        + ', '.join(f'{k}={v!r}' for k, v in feeds.items()
                                    if latent or k != 'encoder'))
    return InputSpec(name=name, shape=tuple(shape), dtype=dtype, group=group, state_of=state_of,
                     encoder=encoder)


def _encoder(data: Any) -> EncoderSpec:
    f = _Fields(data, 'encoder')
    model = f.get('model', kind=str)
    if not model.strip():
        raise CardError(f'encoder.model: expected an ONNX file name, found {model!r}')
    inputs_data = f.get('inputs', kind=list)
    if not inputs_data:
        raise CardError('encoder.inputs: expected at least one encoder input')
    inputs = tuple(_input(d, f'encoder.inputs[{i}]', latent=False)
                   for i, d in enumerate(inputs_data))
    recurrent = tuple(tuple(_names(pair, f'encoder.recurrent[{i}]'))
                      for i, pair in enumerate(f.get('recurrent', [], list)))
    outputs = _names(f.get('outputs', kind=list), 'encoder.outputs')
    f.finish()
    return EncoderSpec(model=model, inputs=inputs, outputs=outputs, recurrent=recurrent)


def card_from_dict(data: Any) -> PolicyCard:
    """Build and validate a card from plain data (as parsed from YAML)."""
    f = _Fields(data, '')
    version = f.get('format_version', FORMAT_VERSION, int)
    if version != FORMAT_VERSION:
        raise CardError(f'format_version: this node reads version {FORMAT_VERSION}, '
                        f'found {version}')
    name = f.get('name', 'policy', str)
    control_dt = float(f.get('control_dt', kind=(int, float)))
    if not 0.0 < control_dt <= 10.0:
        raise CardError(f'control_dt: expected seconds in (0, 10], found {control_dt}')
    joint_names = _names(f.get('joint_names', kind=list), 'joint_names')
    default_pos = _floats(f.get('default_joint_pos', [0.0] * len(joint_names), list),
                          'default_joint_pos', len(joint_names))
    obs = f.get('observations', kind=Mapping)
    groups = tuple(_group(str(k), v, f'observations.{k}') for k, v in obs.items()
                   if v is not None)
    if not groups:
        raise CardError('observations: at least one observation group is required')
    images = _images(f.get('image', None, Mapping), f.get('images', None, Mapping))
    skew = f.get('max_camera_skew', None, (int, float))
    if skew is not None and (len(images) < 2 or not 0 < skew < math.inf):
        raise CardError(f'max_camera_skew: seconds > 0, for a card with several cameras; found '
                        f'{skew!r} with {len(images)} camera(s)')
    action = _action(f.get('action', {}, Mapping), joint_names, default_pos)
    inputs = tuple(_input(d, f'inputs[{i}]') for i, d in enumerate(f.get('inputs', kind=list)))
    action_output = f.get('action_output', 'actions', str)
    recurrent = tuple(tuple(_names(pair, f'recurrent[{i}]'))
                      for i, pair in enumerate(f.get('recurrent', [], list)))
    actuators = _actuators(f.get('actuators', {}, Mapping), joint_names)
    encoder = f.get('encoder', None, Mapping)
    encoder = None if encoder is None else _encoder(encoder)
    f.finish()
    card = PolicyCard(name=name, control_dt=control_dt, joint_names=joint_names,
                      default_joint_pos=default_pos, inputs=inputs, action_output=action_output,
                      groups=groups, action=action, images=images, recurrent=recurrent,
                      format_version=version, actuators=actuators,
                      max_camera_skew=None if skew is None else float(skew), encoder=encoder)
    _check_wiring(card)
    return card


def _images(single: Optional[Mapping], named: Optional[Mapping]) -> tuple:
    """Read ``image:`` (one camera) or ``images:`` (camera name -> image section)."""
    if single is not None and named is not None:
        raise CardError('image, images: give one camera as image or several as images, not '
                        'both')
    if single is not None:
        return (_image(single),)
    if named is None:
        return ()
    if not named:
        raise CardError('images: expected camera name -> image section, found none')
    images = []
    for name, data in named.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise CardError(f'images: camera names are identifiers (they name topics and '
                            f'parameters), found {name!r}')
        images.append(_image(data, f'images.{name}', name))
    return tuple(images)


def _check_inputs(inputs: tuple, recurrent: tuple, prefix: str, group_names: list) -> None:
    """One model's inputs: unique names, known groups, state inputs paired in recurrent."""
    seen = set()
    for i, spec in enumerate(inputs):
        if spec.name in seen:
            raise CardError(f'{prefix}inputs[{i}].name: {spec.name!r} listed twice')
        seen.add(spec.name)
        if spec.group is not None and spec.group not in group_names:
            raise CardError(f'{prefix}inputs[{i}].group: {spec.group!r} is not an observation '
                            f'group (have {group_names})')
    for i, pair in enumerate(recurrent):
        if len(pair) != 2:
            raise CardError(f'{prefix}recurrent[{i}]: expected [state input, state output], '
                            f'found {list(pair)}')
        if pair[0] not in seen:
            raise CardError(f'{prefix}recurrent[{i}]: {pair[0]!r} is not a model input')
    states = {s.name: s.state_of for s in inputs if s.state_of}
    for name, out in states.items():
        if (name, out) not in recurrent:
            raise CardError(f'{prefix}inputs: {name!r} is state_of {out!r} but '
                            f'{prefix}recurrent does not pair them')


def _check_wiring(card: PolicyCard) -> None:
    """Cross-field checks: every input is fed, every group used, images declared."""
    group_names = card.group_names
    _check_inputs(card.inputs, card.recurrent, '', group_names)
    fed = {s.group for s in card.inputs if s.group}
    enc = card.encoder
    if enc is not None:
        _check_inputs(enc.inputs, enc.recurrent, 'encoder.', group_names)
        # A group is built either per camera frame (encoder) or per tick (actor): one
        # feeding both would be computed twice, from different samples.
        for i, spec in enumerate(enc.inputs):
            if spec.group in fed:
                raise CardError(f'encoder.inputs[{i}].group: {spec.group!r} also feeds an actor '
                                f'input; a group feeds the encoder (built per frame) or the '
                                f'actor (built per tick), not both')
        fed |= {s.group for s in enc.inputs if s.group}
    for i, spec in enumerate(card.inputs):
        if spec.encoder is None:
            continue
        if enc is None:
            raise CardError(f'inputs[{i}].encoder: {spec.encoder!r} names an encoder output '
                            f'but the card has no encoder section')
        if spec.encoder not in enc.outputs:
            raise CardError(f'inputs[{i}].encoder: {spec.encoder!r} is not one of '
                            f'encoder.outputs {list(enc.outputs)}')
    if enc is not None:
        read = {s.encoder for s in card.inputs if s.encoder}
        unread = [o for o in enc.outputs if o not in read]
        if unread:
            raise CardError(f'encoder.outputs: {unread} feed no actor input (give an input '
                            f'with encoder: <output>)')
    unused = [g for g in group_names if g not in fed]
    if unused:
        raise CardError(f'observations: group(s) {unused} feed no model input')
    names = [spec.name for spec in card.images]
    used = set()
    for g in card.groups:
        for i, t in enumerate(g.terms):
            if t.name != 'image':
                continue
            where = f'observations.{g.name}.terms[{i}].params.camera'
            camera = t.params.get('camera', '')
            if not card.images:
                raise CardError(f'image: an observation term uses the camera but the card '
                                f'has no image section (observations.{g.name}.terms[{i}])')
            if camera not in names:
                expected = f'one of {names}' if names[0] else "'' or absent (one camera)"
                raise CardError(f'{where}: expected {expected}, found {camera!r}')
            used.add(camera)
    unused = [n for n in names if n and n not in used]
    if unused:
        raise CardError(f'images: camera(s) {unused} feed no image term')


def load_card(path: str | Path) -> PolicyCard:
    """Load a card from a YAML file (safe loader only)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CardError(f'{path}: cannot read policy card ({exc.strerror})') from exc
    return card_from_yaml(text, str(path))


def card_from_yaml(text: str, where: str = 'card') -> PolicyCard:
    """Parse card YAML text; errors are prefixed with where it came from."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CardError(f'{where}: not valid YAML ({exc})') from exc
    try:
        return card_from_dict(data)
    except CardError as exc:
        raise CardError(f'{where}: {exc}') from None
