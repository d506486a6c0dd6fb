"""onnxruntime session: providers, I/O checks against the card, recurrent state, tools."""

import numpy as np
import onnxruntime as ort
import pytest

from vision_policy.card import card_from_dict, load_card
from vision_policy.observation import ObservationBuilder
from vision_policy.runtime import (check_io, choose_providers, embedded_card, load_policy,
                                   ModelError, open_session, PolicyRuntime, provider_list,
                                   RuntimeOptions, tensorrt_available)
from vision_policy.tools import inspect_model

CPU = RuntimeOptions(providers=('CPUExecutionProvider',))


def test_provider_choice_keeps_order_and_filters():
    assert choose_providers(['TensorrtExecutionProvider', 'CUDAExecutionProvider',
                             'CPUExecutionProvider'], ['CPUExecutionProvider']) == [
        'CPUExecutionProvider']
    with pytest.raises(ModelError, match="none of the providers \\['Foo'\\] is available"):
        choose_providers(['Foo'], ['CPUExecutionProvider'])


def test_bundled_model_matches_its_card(model_path):
    session, card = load_policy(model_path, None, CPU)
    assert check_io(session, card) == []
    assert embedded_card(session, str(model_path)) == card  # export embeds the same card


def test_mismatched_card_is_refused(model_path, tmp_path):
    session, card = load_policy(model_path, None, CPU)
    data = card.to_dict()
    data['inputs'][0]['shape'] = [1, 11]  # 3 + 3 + 2 (last action) + 3
    data['observations']['policy']['terms'].append({'name': 'joint_pos'})
    data['action']['joint_names'] = data['joint_names'][:2]
    data['action']['clip'] = None
    data['action']['scale'] = 1.0
    data['action']['offset'] = 'default'
    data['inputs'][1]['name'] = 'rgb'
    bad = card_from_dict(data)
    problems = check_io(session, bad)
    text = '\n'.join(problems)
    assert "input 'obs': model shape [1, 9], card shape [1, 11]" in text
    assert "card input 'rgb' is not a model input" in text
    assert "model input 'image' is not fed by the card" in text
    assert "output 'actions' has 3 actions, card action has 2 joints" in text
    with pytest.raises(ModelError, match='model does not match its card'):
        PolicyRuntime(session, bad, ObservationBuilder(bad).inputs)


def test_missing_and_invalid_model_files(tmp_path):
    with pytest.raises(ModelError, match='model file not found'):
        open_session(tmp_path / 'none.onnx', CPU)
    junk = tmp_path / 'junk.onnx'
    junk.write_bytes(b'\x08\x01garbage')
    with pytest.raises(ModelError, match='not a loadable ONNX model'):
        open_session(junk, CPU)


def test_runtime_output_equals_plain_session_run(model_path):
    session, card = load_policy(model_path, None, CPU)
    builder = ObservationBuilder(card)
    rng = np.random.default_rng(0)
    for buf in builder.inputs.values():
        buf[...] = rng.standard_normal(buf.shape)
    runtime = PolicyRuntime(session, card, builder.inputs)
    got = runtime.run().copy()
    want = session.run(['actions'], {k: v.copy() for k, v in builder.inputs.items()})[0][0]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def gru_card(tmp_path):
    return card_from_dict({
        'control_dt': 0.02, 'joint_names': ['a', 'b'],
        'inputs': [{'name': 'obs', 'shape': [1, 2], 'group': 'policy'},
                   {'name': 'h_in', 'shape': [1, 1, 4], 'state_of': 'h_out'}],
        'action_output': 'actions', 'recurrent': [['h_in', 'h_out']],
        'observations': {'policy': {'terms': [{'name': 'joint_pos'}]}},
    })


def test_recurrent_state_carried_and_reset(tmp_path):
    torch = pytest.importorskip('torch', reason='PyTorch is not installed')
    from vision_policy.tools.export import export_policy

    class Gru(torch.nn.Module):

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.rnn = torch.nn.GRU(2, 4)
            self.out = torch.nn.Linear(4, 2)

        def forward(self, obs, h):
            y, h = self.rnn(obs.unsqueeze(0), h)
            return self.out(y[0]), h

    card = gru_card(tmp_path)
    path = tmp_path / 'gru.onnx'
    export_policy(Gru(), card, path)
    session, loaded = load_policy(path, None, CPU)  # card read from the ONNX metadata
    assert loaded == card
    builder = ObservationBuilder(card)
    builder.inputs['obs'][...] = [[0.3, -0.7]]
    runtime = PolicyRuntime(session, card, builder.inputs, warmup_runs=2)
    first = runtime.run().copy()
    second = runtime.run().copy()
    assert not np.allclose(first, second)  # the hidden state moved on
    runtime.reset()
    np.testing.assert_allclose(runtime.run(), first, rtol=1e-6)
    # Same as PyTorch stepping twice from zero state.
    module = Gru().eval()
    with torch.no_grad():
        h = torch.zeros(1, 1, 4)
        x = torch.tensor([[0.3, -0.7]])
        y1, h = module(x, h)
        y2, _ = module(x, h)
    np.testing.assert_allclose(second, y2.numpy()[0], atol=1e-5)


def test_inspect_reports_agreement_and_mismatch(model_path, tmp_path, capsys):
    assert inspect_model.main([str(model_path)]) == 0
    assert 'model and card agree' in capsys.readouterr().out
    card = load_card(model_path.with_suffix('.yaml'))
    data = card.to_dict()
    data['inputs'][0]['shape'] = [1, 12]
    data['observations']['policy']['terms'].append({'name': 'joint_pos'})
    import yaml
    bad = tmp_path / 'bad.yaml'
    bad.write_text(yaml.safe_dump(data))
    assert inspect_model.main([str(model_path), '--card', str(bad)]) == 1
    out = capsys.readouterr().out
    assert "input 'obs': model shape [1, 9], card shape [1, 12]" in out


def example_card(tmp_path):
    """Write a card for the example network (vision_policy.example_model) to tmp_path."""
    import yaml
    card = {'name': 'example', 'control_dt': 0.05, 'joint_names': ['a', 'b', 'c'],
            'inputs': [{'name': 'obs', 'shape': [1, 9], 'group': 'policy'},
                       {'name': 'image', 'shape': [1, 3, 64, 64], 'group': 'camera'}],
            'observations': {'policy': {'terms': [{'name': 'joint_pos'}, {'name': 'joint_vel'},
                                                  {'name': 'last_action'}]},
                             'camera': {'terms': [{'name': 'image'}]}},
            'image': {'resize': [64, 64]}}
    path = tmp_path / 'card.yaml'
    path.write_text(yaml.safe_dump(card))
    return str(path)


def test_export_tool_rejects_pickles_and_old_opset(tmp_path):
    torch = pytest.importorskip('torch', reason='PyTorch is not installed')
    from vision_policy.tools import export
    # A pickled object in a checkpoint must not be executed: weights_only refuses it.
    evil = tmp_path / 'evil.pt'
    torch.save({'x': object()}, evil)
    card = example_card(tmp_path)
    factory = ['--factory', 'vision_policy.example_model:build']
    rc = export.main(['--card', card, '--output', str(tmp_path / 'o.onnx'), *factory,
                      '--weights', str(evil)])
    assert rc == 1
    rc = export.main(['--card', card, '--output', str(tmp_path / 'o.onnx'), '--opset', '13',
                      *factory])
    assert rc == 1
    for name in ('a.onnx', 'b.onnx'):
        assert export.main(['--card', card, '--output', str(tmp_path / name), *factory]) == 0
    # Reproducible: the same seed and card give the same bytes.
    assert (tmp_path / 'a.onnx').read_bytes() == (tmp_path / 'b.onnx').read_bytes()
    session, loaded = load_policy(tmp_path / 'a.onnx', None, CPU)
    assert loaded.name == 'example' and check_io(session, loaded) == []


# ---------------------------------------------------------------- providers and devices

def test_tensorrt_is_skipped_without_its_libraries_and_cached_with_them(tmp_path):
    chosen = ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
    options = RuntimeOptions(trt_cache_dir=str(tmp_path / 'engines'), cuda_graph=False)
    assert provider_list(chosen, options, trt_loadable=False) == chosen[1:]
    with_trt = provider_list(chosen, options, trt_loadable=True)
    name, trt = with_trt[0]
    assert name == 'TensorrtExecutionProvider' and with_trt[1:] == chosen[1:]
    assert trt['trt_engine_cache_enable'] is True and trt['trt_fp16_enable'] is False
    assert trt['trt_engine_cache_path'] == str(tmp_path / 'engines')
    assert (tmp_path / 'engines').is_dir()
    assert isinstance(tensorrt_available(), bool)


def test_cuda_gets_a_cuda_graph_unless_told_not_to():
    chosen = ['CUDAExecutionProvider', 'CPUExecutionProvider']
    assert provider_list(chosen, RuntimeOptions(), trt_loadable=False) == [
        ('CUDAExecutionProvider', {'enable_cuda_graph': '1'}), 'CPUExecutionProvider']
    assert provider_list(chosen, RuntimeOptions(cuda_graph=False), False) == chosen


def test_tensorrt_alone_without_its_libraries_is_refused(model_path):
    """onnxruntime-gpu lists TensorRT even where libnvinfer is missing (the H200 image)."""
    if 'TensorrtExecutionProvider' not in ort.get_available_providers() or \
            tensorrt_available():
        pytest.skip('needs onnxruntime-gpu without the TensorRT libraries')
    with pytest.raises(ModelError, match='TensorRT libraries .* not found'):
        open_session(model_path, RuntimeOptions(providers=('TensorrtExecutionProvider',)))


def test_default_providers_fall_back_to_what_runs_here(model_path):
    session, card = load_policy(model_path, None, RuntimeOptions())
    runtime = PolicyRuntime(session, card, ObservationBuilder(card).inputs)
    assert runtime.provider == session.get_providers()[0]
    assert runtime.provider in ort.get_available_providers()
    assert runtime.device_inputs == (runtime.provider in ('CUDAExecutionProvider',
                                                          'TensorrtExecutionProvider'))


def cuda_or_skip(model_path, cuda_graph=False):
    """Return (session, card) on the CUDA provider, or skip where CUDA cannot run."""
    if 'CUDAExecutionProvider' not in ort.get_available_providers():
        pytest.skip('onnxruntime has no CUDA provider here (CPU build)')
    session, card = load_policy(model_path, None, RuntimeOptions(
        providers=('CUDAExecutionProvider',), cuda_graph=cuda_graph))
    if session.get_providers()[0] != 'CUDAExecutionProvider':
        pytest.skip(f'CUDA provider did not start (no GPU?): {session.get_providers()}')
    return session, card


@pytest.mark.parametrize('cuda_graph', [False, True])
def test_cuda_inputs_follow_every_tick(model_path, cuda_graph):
    """
    Device buffers are refilled each run: the output tracks the host inputs as on the CPU.

    (Host arrays bound with bind_cpu_input on a CUDA session returned the first tick's
    action on every tick on an H200; this test is what showed it.) A CUDA graph replays
    the captured run: its outputs are device buffers read back after each run.
    """
    session, card = cuda_or_skip(model_path, cuda_graph)
    cpu_session, _ = load_policy(model_path, None, CPU)
    builder = ObservationBuilder(card)
    runtime = PolicyRuntime(session, card, builder.inputs)
    assert runtime.device_inputs and runtime.provider == 'CUDAExecutionProvider'
    assert runtime.cuda_graph == cuda_graph
    rng = np.random.default_rng(4)
    previous = None
    for _ in range(5):
        for buf in builder.inputs.values():
            buf[...] = rng.standard_normal(buf.shape)
        got = runtime.run().copy()
        want = cpu_session.run([card.action_output],
                               {k: v.copy() for k, v in builder.inputs.items()})[0][0]
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
        assert previous is None or not np.allclose(got, previous)
        previous = got


def test_tensorrt_engine_cache_is_written(model_path, tmp_path):
    if not tensorrt_available() or 'TensorrtExecutionProvider' not in \
            ort.get_available_providers():
        pytest.skip('TensorRT is not installed here')
    cache = tmp_path / 'trt'
    session, card = load_policy(model_path, None, RuntimeOptions(trt_cache_dir=str(cache)))
    assert session.get_providers()[0] == 'TensorrtExecutionProvider'
    PolicyRuntime(session, card, ObservationBuilder(card).inputs).run()
    assert any(cache.iterdir())
