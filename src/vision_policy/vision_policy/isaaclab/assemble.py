"""Turn a translated policy (terms, image, action) into card data wired to the ONNX inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .onnx_io import OnnxSignature
from .report import ImportReport


@dataclass(frozen=True)
class Translation:
    """What env.yaml or IO_descriptors.yaml say, in card terms, before wiring to the model."""

    name: str
    control_dt: Optional[float]
    joint_names: tuple
    default_joint_pos: tuple
    group: str                   # name of the concatenated vector group ('policy')
    terms: tuple                 # card term dicts, declaration order
    width: Optional[int]         # values the terms produce (None: some width unknown)
    images: tuple = ()           # (group name, card image dict, (C, H, W))
    action: Optional[dict] = None
    action_width: Optional[int] = None   # raw values the action terms take (None: joints)
    # The Isaac Lab camera sensor (sensor_cfg.name) of each of images; () : one camera.
    image_sensors: tuple = ()


def _image_shape(spec: dict, chw: tuple) -> list:
    c, h, w = chw
    return [1, c, h, w] if spec['layout'] == 'NCHW' else [1, h, w, c]


def _camera_name(cameras: list, spec: dict, sensor: str) -> str:
    """
    Name a camera after its Isaac Lab sensor (``sensor_cfg.name``).

    Two image terms of one sensor that differ (rgb and depth of one RGB-D camera) are two
    cameras of the card, each named with its data type.
    """
    if all(s == spec for _, s, other in cameras if other == sensor):
        return sensor
    return f'{sensor}_{spec.get("depth_type", spec["data_type"])}'


def _camera_sections(cameras: list, report: ImportReport) -> dict:
    """Return camera name -> card image section, one per camera the image terms read."""
    images = {}
    for group, spec, sensor in cameras:
        name = _camera_name(cameras, spec, sensor)
        if not name.isidentifier():
            report.problem(f'term {group}.image', f'camera {name!r} (scene.{sensor}) cannot '
                                                  f'name a card camera: names are identifiers')
        elif images.get(name, spec) != spec:
            report.problem(f'term {group}.image', f'scene.{sensor} feeds two image terms that '
                                                  f'differ in more than their data type')
        images[name] = spec
    if len(images) > 1:
        report.warnings.append(
            f'several cameras {list(images)}: the node reads each from <name>/image_raw and '
            f'<name>/camera_info (parameters <name>_image_topic, <name>_camera_info_topic); '
            f'check which real camera each is, and their max_camera_skew')
    return images


def assemble(tr: Translation, sig: Optional[OnnxSignature],
             report: ImportReport) -> Optional[dict]:
    """Card data for tr, or None when the report holds a problem that blocks a card."""
    inputs, observations = [], {}
    obs_name = sig.obs.name if sig is not None and sig.obs is not None else 'obs'
    if tr.terms:
        model_width = sig.obs.width if sig is not None and sig.obs is not None else None
        report.widths[obs_name] = (tr.width, model_width)
        if sig is not None and sig.obs is None:
            report.problem(f'group {tr.group!r}', 'the ONNX model has no vector input for it')
        elif tr.width is not None and model_width is not None and tr.width != model_width:
            report.problem(f'input {obs_name!r}',
                           f'the terms produce {tr.width} values but the ONNX input expects '
                           f'{model_width} ({"missing" if model_width > tr.width else "extra"} '
                           f'{abs(model_width - tr.width)})')
        elif tr.width is None and model_width is not None:
            known = sum(t.width for t in report.terms if t.width is not None and
                        t.group == tr.group)
            report.warnings.append(f'the ONNX input {obs_name!r} leaves {model_width - known} '
                                   f'values for the term(s) of unknown width')
        inputs.append({'name': obs_name, 'shape': [1, tr.width or 0], 'dtype': 'float32',
                       'group': tr.group})
        observations[tr.group] = {'terms': list(tr.terms)}
    sig_images = {t.name: t for t in sig.images} if sig is not None else {}
    cameras = []  # (group, card image dict, sensor name) of the image inputs wired
    sensors = tr.image_sensors or ('camera',) * len(tr.images)
    for (group, spec, chw), sensor in zip(tr.images, sensors):
        name = group
        if sig is not None:
            if group not in sig_images and len(sig_images) == 1 and len(tr.images) == 1:
                name = next(iter(sig_images))
            if name not in sig_images:
                report.problem(f'group {group!r}', f'no ONNX image input for it (image inputs: '
                                                   f'{sorted(sig_images)})')
                continue
            shape = list(sig_images[name].shape)
            spec['layout'] = 'NCHW' if shape[1] == chw[0] else 'NHWC'
        shape = _image_shape(spec, chw)
        if sig is not None and list(sig_images[name].shape[1:]) != shape[1:]:
            report.problem(f'input {name!r}', f'camera gives {shape[1:]}, ONNX expects '
                                              f'{list(sig_images[name].shape[1:])}')
        report.widths[name] = (chw[0] * chw[1] * chw[2],
                               sig_images[name].width if name in sig_images else None)
        inputs.append({'name': name, 'shape': shape, 'dtype': 'float32', 'group': group})
        cameras.append((group, spec, sensor))
    images = _camera_sections(cameras, report)
    for group, spec, sensor in cameras:
        camera = _camera_name(cameras, spec, sensor)
        term = {'name': 'image'}
        if len(images) > 1:
            term['params'] = {'camera': camera}
        observations[group] = {'terms': [term]}
    recurrent = []
    if sig is not None:
        fed = {i['name'] for i in inputs}
        by_name = {t.name: t for t in sig.inputs}
        for state_in, state_out in sig.states:
            shape = [d if isinstance(d, int) else 1 for d in by_name[state_in].shape]
            inputs.append({'name': state_in, 'shape': shape, 'dtype': 'float32',
                           'state_of': state_out})
            recurrent.append([state_in, state_out])
            fed.add(state_in)
        if sig.obs is not None and sig.obs.width == 0 and sig.obs.name not in fed and \
                not tr.terms:
            # rsl_rl before Isaac Lab PR #6159 exported image-only policies with an empty
            # vector input: feed it with nothing.
            inputs.append({'name': sig.obs.name, 'shape': [1, 0], 'dtype': 'float32'})
            fed.add(sig.obs.name)
            report.widths[sig.obs.name] = (0, 0)
        for t in sig.inputs:
            if t.name in fed:
                continue
            if sig.obs is not None and t.name == sig.obs.name and \
                    any(line.group == tr.group for line in report.terms):
                report.problem(f'ONNX input {t.name!r}', f'group {tr.group!r} feeds it, but '
                                                         f'none of its terms could be '
                                                         f'translated (see above)')
            else:
                report.problem(f'ONNX input {t.name!r}', 'nothing in the run files feeds it')
    if tr.action is None and not any(p.what.startswith('action') for p in report.problems):
        report.problem('actions', 'no translatable action term')
    elif tr.action is not None and sig is not None and sig.action.width is not None:
        width = tr.action_width if tr.action_width is not None else \
            len(tr.action['joint_names'])
        if sig.action.width != width:
            report.problem('actions', f'the action terms take {width} values but ONNX '
                                      f'output {sig.action.name!r} has {sig.action.width}')
    if not report.ok:
        return None
    card = {
        'format_version': 1,
        'name': tr.name,
        'control_dt': tr.control_dt,
        'joint_names': list(tr.joint_names),
        'default_joint_pos': list(tr.default_joint_pos),
        'inputs': inputs,
        'action_output': sig.action.name if sig is not None else 'actions',
        'observations': observations,
        'action': tr.action,
    }
    if len(images) == 1:
        card['image'] = next(iter(images.values()))
    elif images:
        card['images'] = images
    if recurrent:
        card['recurrent'] = recurrent
    if report.actuators:
        card['actuators'] = report.actuators
    return card
