"""
A LEAPP export bundle (Isaac Lab 3 -> Isaac ROS Deploy) -> card data.

LEAPP (github.com/nvidia-isaac/leapp, "Understanding the Generated Configs")
writes ``<name>.yaml`` + one model per node + optional
``<name>_initial_values.safetensors``. The YAML lists, per node, its tensor
ports (name, dtype, shape, ``kind``, ``element_names``, and from Isaac Lab an
``isaaclab_connection`` such as ``state:robot:joint_pos``,
``command:base_velocity`` or ``write:robot:set_joint_position_target``), and
the pipeline wiring (``inputs``, ``outputs``, ``data_flow``, ``feedback_flow``,
``configs.frequency``).

The traced graph already contains the observation processing (scale, clip,
history) and the action processing (scale, offset), so each model input is fed
with the raw quantity and the output is the joint target itself. One ONNX node
is supported: vision_policy runs one onnxruntime session.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from .report import ActionLine, ImportReport, TermLine

# (connection property or command, LEAPP kind) -> card term and what it needs in params.
STATE_TERMS = {
    'joint_pos': 'joint_pos', 'joint_vel': 'joint_vel',
    'root_ang_vel_b': 'base_ang_vel', 'root_lin_vel_b': 'base_lin_vel',
    'projected_gravity_b': 'projected_gravity',
}
KIND_TERMS = {
    'state/joint/position': 'joint_pos', 'state/joint/velocity': 'joint_vel',
    'state/body/angular_velocity': 'base_ang_vel', 'state/body/linear_velocity': 'base_lin_vel',
    'command/body/velocity': 'velocity_commands', 'command/body/pose': 'pose_command',
}
WRITE_ACTIONS = {
    'target/joint/position': 'joint_position', 'target/joint/velocity': 'joint_velocity',
}


def is_bundle(data: Any) -> bool:
    """Tell whether parsed YAML is a LEAPP pipeline description."""
    return isinstance(data, Mapping) and isinstance(data.get('models'), Mapping) and \
        isinstance(data.get('pipeline'), Mapping)


def _names(port: Mapping) -> Optional[list]:
    """Return the joint-name axis of a port (element_names, canonical or flat)."""
    names = port.get('element_names')
    if names is None:
        return None
    if names and all(isinstance(n, str) for n in names):
        return list(names)
    axes = [axis for axis in names if isinstance(axis, list)]
    return list(axes[-1]) if axes else None


def _width(port: Mapping) -> int:
    return int(np.prod([int(d) for d in port.get('shape') or [1]]))


def _term_for(port: Mapping) -> tuple:
    """(card term dict or None, reason) for one external input port."""
    connection = str(port.get('isaaclab_connection') or '')
    parts = connection.split(':')
    kind = str(port.get('kind') or '')
    name = None
    if parts[0] == 'state' and len(parts) == 3 and parts[1] == 'robot':
        name = STATE_TERMS.get(parts[2])
    elif parts[0] == 'command':
        name = KIND_TERMS.get(kind) if kind.startswith('command/') else None
    if name is None and not connection:
        name = KIND_TERMS.get(kind)
    if name is None:
        return None, (f'no built-in term reads {connection or kind or "this port"} '
                      f'(kind {kind or "none"}); write one and register it in entry-point group '
                      f"'vision_policy.observation_terms'")
    term = {'name': name}
    joints = _names(port)
    if name in ('joint_pos', 'joint_vel') and joints:
        term['params'] = {'joint_names': joints}
    return term, None


def _initial_values_are_zero(path: Path) -> Optional[str]:
    """Read a safetensors file (8-byte header length, JSON header, raw data); say if not zero."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], 'little')
    header = json.loads(raw[8:8 + size])
    data = raw[8 + size:]
    for key, info in header.items():
        if key == '__metadata__':
            continue
        start, end = info['data_offsets']
        dtype = {'F32': np.float32, 'F64': np.float64, 'F16': np.float16}.get(info['dtype'])
        if dtype is None or np.any(np.frombuffer(data[start:end], dtype=dtype) != 0):
            return f'{key} starts from non-zero values ({info["dtype"]})'
    return None


def model_path(data: Mapping, path: Path) -> Optional[Path]:
    """Return the model file of a one-node bundle (relative to its YAML), else None."""
    models = data['models']
    if len(models) != 1:
        return None
    params = next(iter(models.values())).get('parameters') or {}
    return path.parent / str(params['model_path']) if params.get('model_path') else None


def translate(data: Mapping, path: Path, report: ImportReport,
              onnx_inputs: Optional[Mapping[str, tuple]] = None) -> Optional[dict]:
    """
    Return card data for a LEAPP bundle, or None; problems go to the report.

    ``onnx_inputs`` maps the model's input names to their shapes when the ONNX
    was read, so the card's input shapes are the model's own.
    """
    models, pipeline = data['models'], data['pipeline']
    if len(models) != 1:
        report.problem('LEAPP pipeline', f'{len(models)} nodes {list(models)}: vision_policy runs '
                                         f'one ONNX model; export the policy as one node')
        return None
    node_name, node = next(iter(models.items()))
    params = node.get('parameters') or {}
    if not str(params.get('backend', '')).startswith('onnx'):
        report.problem(f'LEAPP node {node_name!r}', f'backend {params.get("backend")!r}: '
                                                    f'vision_policy runs ONNX; export with '
                                                    f'the onnx backend')
        return None
    ports_in = {p['name']: p for p in node.get('inputs') or []}
    ports_out = {p['name']: p for p in node.get('outputs') or []}
    feedback = {}
    for src, targets in (pipeline.get('feedback_flow') or {}).items():
        for target in targets:
            feedback[target.split('/', 1)[1]] = src.split('/', 1)[1]
    initial = pipeline.get('initial_values')
    if feedback and initial:
        reason = _initial_values_are_zero(path.parent / str(initial))
        if reason is not None:
            report.problem('LEAPP feedback state', f'{reason}; vision_policy resets recurrent '
                                                   f'state to zeros')
    report.control_dt = None
    frequency = (pipeline.get('configs') or {}).get('frequency')
    if isinstance(frequency, (int, float)) and frequency > 0:
        report.control_dt = 1.0 / float(frequency)
    else:
        report.problem('control period', 'pipeline.configs.frequency is missing')
    inputs, observations, joints, recurrent = [], {}, [], []
    for name, port in ports_in.items():
        shape = list(onnx_inputs.get(name, ())) if onnx_inputs else []
        shape = [d if isinstance(d, int) else 1 for d in shape] or [1, _width(port)]
        if name in feedback:
            inputs.append({'name': name, 'shape': shape, 'dtype': 'float32',
                           'state_of': feedback[name]})
            recurrent.append([name, feedback[name]])
            continue
        term, reason = _term_for(port)
        report.terms.append(TermLine(name, name, str(port.get('isaaclab_connection') or
                                                     port.get('kind')), _width(port),
                                     supported=reason is None))
        if reason is not None:
            report.problem(f'LEAPP input {name!r}', reason)
            continue
        joints += [j for j in (term.get('params') or {}).get('joint_names', ()) if j not in joints]
        inputs.append({'name': name, 'shape': shape, 'dtype': 'float32', 'group': name})
        observations[name] = {'terms': [term]}
    outputs = [n for n in (pipeline.get('outputs') or {}).get(node_name, [])
               if n not in feedback.values()]
    if len(outputs) != 1:
        report.problem('LEAPP outputs', f'expected one action output, found {outputs}')
        return None
    out = ports_out.get(outputs[0]) or {}
    action_type = WRITE_ACTIONS.get(str(out.get('kind')))
    out_joints = _names(out)
    if action_type is None or not out_joints:
        report.problem(f'LEAPP output {outputs[0]!r}', f'kind {out.get("kind")!r} with '
                                                       f'element_names {out_joints}: only joint '
                                                       f'position/velocity targets per named '
                                                       f'joint are supported')
        return None
    # The graph already scaled and offset the action: the card passes targets through.
    n = len(out_joints)
    report.actions.append(ActionLine(outputs[0], f'{out.get("kind")} -> {action_type}',
                                     tuple(out_joints), (1.0,) * n, (0.0,) * n))
    card_joints = out_joints + [j for j in joints if j not in out_joints]
    report.widths.update({i['name']: (int(np.prod(i['shape'])), int(np.prod(i['shape'])))
                          for i in inputs})
    if not report.ok:
        return None
    card = {
        'format_version': 1, 'name': str(path.stem), 'control_dt': report.control_dt,
        'joint_names': card_joints, 'default_joint_pos': [0.0] * len(card_joints),
        'inputs': inputs, 'action_output': outputs[0], 'observations': observations,
        'action': {'terms': [{'type': action_type, 'name': outputs[0],
                              'joint_names': out_joints, 'scale': 1.0, 'offset': 0.0}]},
    }
    if recurrent:
        card['recurrent'] = recurrent
    return card
