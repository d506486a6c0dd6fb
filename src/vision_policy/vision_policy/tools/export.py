"""
vision_policy_export: a PyTorch policy + its card -> ONNX with the card embedded.

Inputs are taken in the card's input order; outputs are the card's action
output followed by the recurrent state outputs. After export, onnxruntime runs
the file on random inputs and must reproduce PyTorch's outputs. With ``--encoder``
the module is the card's encoder (encoder + actor policies): the encoder section's
inputs and outputs (then its recurrent state outputs), and no card embedded (the card
belongs to the actor's file, whose folder ``encoder.model`` is relative to).

Only safe loading is used: TorchScript archives (``torch.jit.load``), or a module
built by the user's own code whose weights are read with ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
import pickle
import sys
from typing import Optional

import numpy as np

from ..card import load_card, ONNX_METADATA_KEY, PolicyCard

MIN_OPSET = 17


class ExportError(RuntimeError):
    """Export failed or the exported model does not reproduce PyTorch."""


def _output_names(card: PolicyCard, encoder: bool = False) -> list:
    if encoder:
        outputs = list(card.encoder.outputs)
        return outputs + [out for _, out in card.encoder.recurrent if out not in outputs]
    return [card.action_output] + [out for _, out in card.recurrent]


def export_policy(module, card: PolicyCard, path: str | Path, opset: int = MIN_OPSET,
                  atol: float = 1e-4, seed: int = 0, encoder: bool = False) -> float:
    """
    Export module to path with the card in its metadata; returns the max |ORT - torch|.

    ``encoder``: module is the card's encoder; its I/O is the encoder section's.
    """
    import onnx
    import onnxruntime as ort
    import torch

    if opset < MIN_OPSET:
        raise ExportError(f'opset {opset} is too old; use {MIN_OPSET} or newer')
    if encoder and card.encoder is None:
        raise ExportError(f'card {card.name!r} has no encoder section to export')
    path = Path(path)
    module = module.eval()
    gen = torch.Generator().manual_seed(seed)
    specs = card.encoder.inputs if encoder else card.inputs
    example = tuple(torch.rand(spec.shape, generator=gen) for spec in specs)
    names = [spec.name for spec in specs]
    outputs = _output_names(card, encoder)
    with torch.no_grad():
        torch.onnx.export(module, example, str(path), input_names=names, output_names=outputs,
                          opset_version=opset, dynamo=False, do_constant_folding=True)
        expected = module(*example)
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    model = onnx.load(str(path))
    if not encoder:
        entry = model.metadata_props.add()
        entry.key, entry.value = ONNX_METADATA_KEY, card.to_yaml()
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    got = session.run(outputs, {n: t.numpy() for n, t in zip(names, example)})
    if len(got) != len(expected):
        raise ExportError(f'the module returned {len(expected)} outputs, the card names '
                          f'{len(outputs)}: {outputs}')
    err = max(float(np.max(np.abs(g - e.numpy()))) for g, e in zip(got, expected))
    if err > atol:
        raise ExportError(f'onnxruntime differs from PyTorch by {err:.3g} (> {atol})')
    return err


def load_module(torchscript: Optional[str], factory: Optional[str], weights: Optional[str]):
    """Load a TorchScript file, or call factory 'pkg.module:function' (+ a state dict)."""
    import torch
    if torchscript:
        return torch.jit.load(torchscript, map_location='cpu')
    if not factory or ':' not in factory:
        raise ExportError("give --torchscript FILE or --factory 'package.module:function'")
    mod_name, func = factory.split(':', 1)
    module = getattr(importlib.import_module(mod_name), func)()
    if weights:
        try:
            state = torch.load(weights, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ExportError(f'{weights}: holds more than tensors and was not unpickled '
                              f'(weights_only loading): {str(exc).splitlines()[-1]}') from None
        module.load_state_dict(state.get('model_state_dict', state) if isinstance(
            state, dict) else state)
    return module


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog='vision_policy_export', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--card', required=True, help='policy card YAML')
    parser.add_argument('--output', required=True, help='ONNX file to write')
    parser.add_argument('--torchscript', help='TorchScript policy file')
    parser.add_argument('--factory', help="'package.module:function' returning the nn.Module")
    parser.add_argument('--weights', help='state dict for the factory module (weights_only)')
    parser.add_argument('--opset', type=int, default=MIN_OPSET)
    parser.add_argument('--encoder', action='store_true',
                        help="the module is the card's encoder (encoder + actor policies)")
    args = parser.parse_args(argv)
    try:
        card = load_card(args.card)
        module = load_module(args.torchscript, args.factory, args.weights)
        err = export_policy(module, card, args.output, args.opset, encoder=args.encoder)
    except (ExportError, ValueError, OSError) as exc:
        print(f'vision_policy_export: error: {exc}', file=sys.stderr)
        return 1
    what = f'encoder of card {card.name!r}' if args.encoder else f'card {card.name!r} embedded'
    print(f'wrote {args.output} ({what}; max |onnxruntime - torch| = {err:.2e})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
