"""
vision_policy_export: a PyTorch policy + its card -> ONNX with the card embedded.

Inputs are taken in the card's input order; outputs are the card's action
output followed by the recurrent state outputs. After export, onnxruntime runs
the file on random inputs and must reproduce PyTorch's outputs.

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


def _output_names(card: PolicyCard) -> list:
    return [card.action_output] + [out for _, out in card.recurrent]


def export_policy(module, card: PolicyCard, path: str | Path, opset: int = MIN_OPSET,
                  atol: float = 1e-4, seed: int = 0) -> float:
    """Export module to path with the card in its metadata; returns the max |ORT - torch|."""
    import onnx
    import onnxruntime as ort
    import torch

    if opset < MIN_OPSET:
        raise ExportError(f'opset {opset} is too old; use {MIN_OPSET} or newer')
    path = Path(path)
    module = module.eval()
    gen = torch.Generator().manual_seed(seed)
    example = tuple(torch.rand(spec.shape, generator=gen) for spec in card.inputs)
    names = [spec.name for spec in card.inputs]
    outputs = _output_names(card)
    with torch.no_grad():
        torch.onnx.export(module, example, str(path), input_names=names, output_names=outputs,
                          opset_version=opset, dynamo=False, do_constant_folding=True)
        expected = module(*example)
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    model = onnx.load(str(path))
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
    args = parser.parse_args(argv)
    try:
        card = load_card(args.card)
        module = load_module(args.torchscript, args.factory, args.weights)
        err = export_policy(module, card, args.output, args.opset)
    except (ExportError, ValueError, OSError) as exc:
        print(f'vision_policy_export: error: {exc}', file=sys.stderr)
        return 1
    print(f'wrote {args.output} (card {card.name!r} embedded; max |onnxruntime - torch| = '
          f'{err:.2e})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
