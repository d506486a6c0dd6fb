"""
vision_policy_inspect: show a model's inputs/outputs and card, and every mismatch.

Exit status 0 when the model and the card agree (and the observation widths
match the inputs), 1 otherwise: usable as a check before a model meets a robot.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

import numpy as np

from ..card import actuator_text, CardError
from ..observation import ObservationBuilder
from ..registry import load_registry, OBSERVATION_GROUP
from ..runtime import check_encoder_io, check_io, encoder_path, load_encoder, load_policy, \
    ModelError, RuntimeOptions


def describe(model_path: str, card_path: Optional[str], plugin_modules: tuple = ()) -> tuple:
    """(report lines, problems) for a model and its card."""
    registry = load_registry(plugin_modules)
    options = RuntimeOptions(providers=('CPUExecutionProvider',), warmup_runs=0)
    session, card = load_policy(model_path, card_path, options)
    lines = [f'model: {model_path}'] + _io_lines(session)
    encoder = load_encoder(model_path, card, options)
    if encoder is not None:
        lines += [f'encoder model: {encoder_path(model_path, card)} (runs per camera frame)']
        lines += ['  ' + line for line in _io_lines(encoder)]
    lines += [f'card: {card.name!r}, control_dt {card.control_dt} s '
              f'({1.0 / card.control_dt:.1f} Hz)',
              f'  joints (training order): {list(card.joint_names)}',
              f'  default_joint_pos: {list(card.default_joint_pos)}']
    for group in card.groups:
        feeds = [s.name for s in card.inputs if s.group == group.name]
        if card.encoder is not None:  # built per camera frame, for the encoder
            feeds += [f'encoder {s.name}' for s in card.encoder.inputs if s.group == group.name]
        lines.append(f'  group {group.name!r} -> input {feeds}:')
        for term in group.terms:
            origin = '' if registry.is_builtin(OBSERVATION_GROUP, term.name) or \
                term.name not in registry.observation_terms else \
                f' [{registry.origin(OBSERVATION_GROUP, term.name)}]'
            lines.append(f'    {term.name}: scale={term.scale} clip={term.clip} '
                         f'history={group.term_history(term)} params={dict(term.params)}'
                         f'{origin}')
    if card.image is not None:
        im = card.image
        lines.append(f'  image: {im.data_type} from {list(im.source_encodings)}, crop={im.crop}, '
                     f'resize {im.width}x{im.height} ({im.interpolation}), '
                     f'{im.color_order}, normalize={im.normalize}, {im.layout}')
    a = card.action
    if a.type == 'terms':
        lines.append(f'  action terms from output {card.action_output!r}, in output order:')
        for t in a.terms:
            lines.append(f'    {t.type} {t.name}: joints {list(t.joint_names)} '
                         f'{dict(t.params)} clip '
                         f'{None if t.clip is None else [list(c) for c in t.clip]}')
    else:
        lines.append(f'  action ({a.type}) from output {card.action_output!r}: joints '
                     f'{list(a.joint_names)}, scale {list(a.scale)}, offset {list(a.offset)}, '
                     f'clip {None if a.clip is None else [list(c) for c in a.clip]}')
    if card.actuators:
        lines.append('  training actuators (match the robot controller to them):')
        lines += [f'    {joint}: {actuator_text(fields)}'
                  for joint, fields in card.actuators.items()]
    if card.recurrent:
        lines.append(f'  recurrent state: {[list(p) for p in card.recurrent]}')
    if card.encoder is not None:
        enc = card.encoder
        lines.append(f'  encoder {enc.model!r}: inputs {[s.name for s in enc.inputs]}, '
                     f'recurrent state {[list(p) for p in enc.recurrent]}')
        lines += [f'    output {s.encoder!r} -> actor input {s.name!r}' for s in card.inputs
                  if s.encoder is not None]
    problems = []
    try:
        problems += check_io(session, card, registry)
        if encoder is not None:
            problems += [f'encoder: {p}' for p in check_encoder_io(encoder, card)]
        builder = ObservationBuilder(card, registry)
        for name, buf in builder.inputs.items():
            lines.append(f'  observation -> {name}: {int(np.prod(buf.shape))} values')
    except CardError as exc:
        problems.append(str(exc))
    return lines, problems


def _io_lines(session) -> list:
    lines = ['inputs:']
    lines += [f'  {i.name}: {i.shape} {i.type}' for i in session.get_inputs()]
    lines.append('outputs:')
    lines += [f'  {o.name}: {o.shape} {o.type}' for o in session.get_outputs()]
    return lines


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog='vision_policy_inspect', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='ONNX policy file')
    parser.add_argument('--card', help='policy card YAML (default: beside the model, or '
                                       'embedded in it)')
    parser.add_argument('--plugin-module', action='append', default=[], metavar='MODULE',
                        help='a module of your own terms (its VISION_POLICY_PLUGINS) that is '
                             'not installed through entry points; may be repeated')
    args = parser.parse_args(argv)
    try:
        lines, problems = describe(args.model, args.card, tuple(args.plugin_module))
    except (CardError, ModelError) as exc:
        print(f'vision_policy_inspect: error: {exc}', file=sys.stderr)
        return 1
    print('\n'.join(lines))
    if problems:
        print(f'{len(problems)} mismatch(es) between model and card:')
        print('\n'.join(f'  - {p}' for p in problems))
        return 1
    print('model and card agree')
    return 0


if __name__ == '__main__':
    sys.exit(main())
