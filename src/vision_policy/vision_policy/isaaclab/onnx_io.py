"""
The input/output signature of an exported policy, as rsl_rl writes it.

Layouts recognised (names as rsl_rl's exporters write them):

- plain MLP: ``obs [1, N] -> actions [1, A]``
- recurrent: ``obs, h_in[, c_in] -> actions, h_out[, c_out]``
- rsl_rl >= 4 CNN: ``obs`` plus one ``[1, C, H, W]`` input per image group,
  named after the group (the empirical normaliser sits inside the graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import onnx


class OnnxSignatureError(ValueError):
    """The model's inputs/outputs do not follow a known export layout."""


@dataclass(frozen=True)
class Tensor:
    """One graph input or output: name and shape (symbolic dims as strings or None)."""

    name: str
    shape: tuple

    @property
    def width(self) -> Optional[int]:
        """Values per batch row, or None when a non-batch dim is symbolic."""
        total = 1
        for dim in self.shape[1:]:
            if not isinstance(dim, int):
                return None
            total *= dim
        return total


@dataclass(frozen=True)
class OnnxSignature:
    """The classified signature of an exported policy."""

    path: str
    obs: Optional[Tensor]
    images: tuple
    states: tuple      # (state input, state output) pairs
    action: Tensor
    inputs: tuple
    outputs: tuple


def _tensor(value: onnx.ValueInfoProto) -> Tensor:
    dims = []
    for d in value.type.tensor_type.shape.dim:
        if d.HasField('dim_value'):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or None)
    return Tensor(value.name, tuple(dims))


def read_signature(path: str | Path) -> OnnxSignature:
    """Read and classify the graph inputs and outputs of an exported policy."""
    inputs, outputs = read_tensors(path)
    return classify(inputs, outputs, str(path))


def read_tensors(path: str | Path) -> tuple:
    """Return (inputs, outputs) of a model as Tensors, initializers left out."""
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several unrelated types for unreadable files
        raise OnnxSignatureError(f'{path}: not a readable ONNX model ({exc})') from None
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = tuple(_tensor(v) for v in graph.input if v.name not in initializers)
    return inputs, tuple(_tensor(v) for v in graph.output)


def classify(inputs: tuple, outputs: tuple, where: str = 'model') -> OnnxSignature:
    """Sort inputs into obs / image / recurrent state and pick the action output."""
    by_out = {o.name: o for o in outputs}
    if not outputs:
        raise OnnxSignatureError(f'{where}: the model has no outputs')
    action = by_out.get('actions', outputs[0])
    obs, images, states = None, [], []
    for t in inputs:
        if t.name.endswith('_in') and t.name[:-3] + '_out' in by_out:
            states.append((t.name, t.name[:-3] + '_out'))
        elif len(t.shape) == 4:
            images.append(t)
        elif len(t.shape) == 2 and obs is None:
            obs = t
        else:
            raise OnnxSignatureError(
                f'{where}: input {t.name!r} with shape {list(t.shape)} fits none of the known '
                f'layouts (obs [1, N], image [1, C, H, W], recurrent state *_in/*_out)')
    if obs is None and not images:
        raise OnnxSignatureError(f'{where}: no observation input found among '
                                 f'{[t.name for t in inputs]}')
    return OnnxSignature(where, obs, tuple(images), tuple(states), action, inputs, outputs)
