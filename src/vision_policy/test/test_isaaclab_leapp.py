"""
A LEAPP export bundle (Isaac Lab 3 / Isaac ROS Deploy) -> a card that runs in PolicyCore.

The bundle is built here from LEAPP's documented format ("Understanding the Generated
Configs": models.<node>.inputs/outputs with kind, element_names and Isaac Lab's
isaaclab_connection; pipeline inputs/outputs/feedback_flow/initial_values/configs) and an
ONNX made with onnx.helper; no file of LEAPP's is copied.
"""

import json

import numpy as np
import pytest
from vision_policy.action import SafetyLimits
from vision_policy.core import PolicyCore
from vision_policy.isaaclab.importer import import_run
from vision_policy.runtime import open_session, PolicyRuntime, RuntimeOptions
import yaml

JOINTS = ['hip', 'knee', 'ankle']
WEIGHTS = np.random.default_rng(3).standard_normal((12, 3)).astype(np.float32) * 0.1


def port(name, kind=None, connection=None, names=None, width=3):
    out = {'name': name, 'dtype': 'float32', 'shape': [width], 'type': 'tensor'}
    if kind:
        out['kind'] = kind
    if connection:
        out['isaaclab_connection'] = connection
    if names:
        out['element_names'] = [names]
    return out


def bundle(tmp_path, backend='onnx', init=0.0, command_kind='command/body/velocity'):
    """Write policy.onnx + reach.yaml (+ initial values) as a LEAPP export would."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    names = ['joint_pos', 'joint_vel', 'base_velocity', 'prev_actions']
    graph = helper.make_graph(
        [helper.make_node('Concat', names, ['x'], axis=1),
         helper.make_node('MatMul', ['x', 'W'], ['joint_targets']),
         helper.make_node('Identity', ['joint_targets'], ['actions_state'])], 'leapp',
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in names],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3])
         for n in ('joint_targets', 'actions_state')],
        [numpy_helper.from_array(WEIGHTS, 'W')])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]),
              tmp_path / 'policy.onnx')
    desc = {
        'models': {'policy': {
            'inputs': [port('joint_pos', 'state/joint/position', 'state:robot:joint_pos', JOINTS),
                       port('joint_vel', 'state/joint/velocity', 'state:robot:joint_vel', JOINTS),
                       port('base_velocity', command_kind, 'command:base_velocity'),
                       port('prev_actions')],
            'outputs': [port('joint_targets', 'target/joint/position',
                             'write:robot:set_joint_position_target', JOINTS),
                        port('actions_state')],
            'parameters': {'backend': backend, 'model_path': 'policy.onnx', 'opset_version': 17},
        }},
        'pipeline': {
            'data_flow': {},
            'feedback_flow': {'policy/actions_state': ['policy/prev_actions']},
            'inputs': {'policy': ['joint_pos', 'joint_vel', 'base_velocity']},
            'outputs': {'policy': ['joint_targets', 'actions_state']},
            'initial_values': 'reach_initial_values.safetensors',
            'configs': {'frequency': 50},
        },
        'system information': {'leapp version': '0.7.1', 'leapp config version': '1.3'},
    }
    header = json.dumps({'policy/prev_actions': {'dtype': 'F32', 'shape': [1, 3],
                                                 'data_offsets': [0, 12]}}).encode()
    values = np.full(3, init, dtype=np.float32).tobytes()
    (tmp_path / 'reach_initial_values.safetensors').write_bytes(
        len(header).to_bytes(8, 'little') + header + values)
    path = tmp_path / 'reach.yaml'
    path.write_text(yaml.safe_dump(desc, sort_keys=False))
    return path


def test_leapp_bundle_becomes_a_card_that_runs(tmp_path):
    result = import_run(bundle(tmp_path))
    assert result.card is not None, result.report.render()
    card = result.card
    assert card.control_dt == pytest.approx(0.02)
    assert [i.name for i in card.inputs] == ['joint_pos', 'joint_vel', 'base_velocity',
                                             'prev_actions']
    assert card.recurrent == (('prev_actions', 'actions_state'),)
    assert [t.type for t in card.action.terms] == ['joint_position']
    session = open_session(tmp_path / 'policy.onnx',
                           RuntimeOptions(providers=('CPUExecutionProvider',)))
    core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs, 0),
                      SafetyLimits.build(3, [-10.0], [10.0], [10.0]))
    core.set_extras({'velocity_command': np.array([0.5, 0.0, -0.2])})
    pos, vel = np.array([0.1, -0.2, 0.3], np.float32), np.array([1.0, 0.0, -1.0], np.float32)
    first = core.step(pos, vel).copy()
    # The graph holds the processing: raw joint state and command in, the target out.
    x = np.concatenate([pos, vel, [0.5, 0.0, -0.2], np.zeros(3)]).astype(np.float32)
    np.testing.assert_allclose(first, x @ WEIGHTS, atol=1e-5)
    second = core.step(pos, vel)
    x[9:] = first       # the feedback input carries the previous output
    np.testing.assert_allclose(second, x @ WEIGHTS, atol=1e-5)


@pytest.mark.parametrize('change, words', [
    ({'backend': 'jit'}, ["backend 'jit'", 'export with the onnx backend']),
    ({'init': 0.5}, ['policy/prev_actions starts from non-zero values']),
    ({'command_kind': 'command/body/rotation'}, ["LEAPP input 'base_velocity'",
                                                 'no built-in term reads command:base_velocity',
                                                 'vision_policy.observation_terms']),
])
def test_leapp_bundle_refusals_say_why(tmp_path, change, words):
    result = import_run(bundle(tmp_path, **change))
    assert result.card is None
    text = result.report.render()
    for word in words:
        assert word in text
