"""Encoder + actor policies: the card's encoder section, the two sessions, the core."""

import array
import copy
import math

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import pytest
from sensor_msgs.msg import Image
from test_node import Rig  # noqa: I100 (test helper)
from vision_policy.action import SafetyLimits
from vision_policy.card import card_from_dict, card_from_yaml, CardError, EncoderSpec
from vision_policy.core import InputError, PolicyCore
from vision_policy.encoder import encoder_view, EncoderRuntime, FrameEncoder
from vision_policy.observation import Sample
from vision_policy.runtime import check_encoder_io, check_io, load_encoder, load_policy, \
    ModelError, PolicyRuntime, RuntimeOptions
from vision_policy.tools import inspect_model
import yaml

CPU = RuntimeOptions(providers=('CPUExecutionProvider',), warmup_runs=0)
DEPTH_SHAPE = (1, 1, 3, 4)   # NCHW of a 4x3 depth image
HIDDEN, LATENT = 4, 3


def weights() -> dict:
    """Weights of the two tiny models (the numbers the tests recompute by hand)."""
    rng = np.random.default_rng(7)
    shapes = {'Wd': (12, HIDDEN), 'Wp': (2, HIDDEN), 'U': (HIDDEN, HIDDEN), 'V': (HIDDEN, LATENT),
              'A': (4, 2), 'B': (LATENT, 2)}
    return {k: (0.5 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}


def encoder_step(w: dict, depth: np.ndarray, proprio: np.ndarray, h: np.ndarray) -> tuple:
    """Compute the encoder by hand: h' = tanh(depth Wd + proprio Wp + h U), latent = h' V."""
    d = np.asarray(depth, np.float64).reshape(1, -1)
    p = np.asarray(proprio, np.float64).reshape(1, -1)
    h = np.tanh(d @ w['Wd'] + p @ w['Wp'] + h @ w['U'])
    return h @ w['V'], h


def actor_step(w: dict, obs: np.ndarray, latent: np.ndarray) -> np.ndarray:
    """Compute the actor by hand: actions = obs A + latent B."""
    return (np.asarray(obs, np.float64).reshape(1, -1) @ w['A'] + latent @ w['B'])[0]


def _save(path, nodes, inputs, outputs, w, names):
    graph = helper.make_graph(
        nodes, path.stem,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in outputs],
        [numpy_helper.from_array(w[k], k) for k in names])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), path)


def write_encoder(path, w, latent_name='latent', latent_size=LATENT):
    """Write a recurrent depth encoder without a GRU op: inputs depth, proprio, h_in."""
    v = w['V'] if latent_size == LATENT else np.ones((HIDDEN, latent_size), np.float32)
    w = dict(w, V=v)
    node = helper.make_node
    _save(path, [node('Flatten', ['depth'], ['flat']),
                 node('MatMul', ['flat', 'Wd'], ['a']),
                 node('MatMul', ['proprio', 'Wp'], ['b']),
                 node('MatMul', ['h_in', 'U'], ['c']),
                 node('Add', ['a', 'b'], ['ab']),
                 node('Add', ['ab', 'c'], ['z']),
                 node('Tanh', ['z'], ['h_out']),
                 node('MatMul', ['h_out', 'V'], [latent_name])],
          [('depth', DEPTH_SHAPE), ('proprio', (1, 2)), ('h_in', (1, HIDDEN))],
          [(latent_name, (1, latent_size)), ('h_out', (1, HIDDEN))], w,
          ('Wd', 'Wp', 'U', 'V'))


def write_actor(path, w):
    """Write the actor: obs (joint_pos, last_action) and the encoder's latent -> 2 actions."""
    node = helper.make_node
    _save(path, [node('MatMul', ['obs', 'A'], ['p']),
                 node('MatMul', ['depth_latent', 'B'], ['q']),
                 node('Add', ['p', 'q'], ['actions'])],
          [('obs', (1, 4)), ('depth_latent', (1, LATENT))], [('actions', (1, 2))], w,
          ('A', 'B'))


def card_data(model='encoder.onnx') -> dict:
    """Return an encoder + actor card: depth, joints to the encoder; its latent to the actor."""
    return {
        'name': 'parkour', 'control_dt': 0.02, 'joint_names': ['a', 'b'],
        'image': {'data_type': 'depth', 'source_encodings': ['32FC1'], 'resize': [4, 3],
                  'interpolation': 'nearest'},
        'observations': {
            'depth': {'terms': [{'name': 'image'}]},
            'proprio': {'terms': [{'name': 'joint_pos'}]},
            'policy': {'terms': [{'name': 'joint_pos'}, {'name': 'last_action'}]}},
        'encoder': {
            'model': model,
            'inputs': [{'name': 'depth', 'shape': list(DEPTH_SHAPE), 'group': 'depth'},
                       {'name': 'proprio', 'shape': [1, 2], 'group': 'proprio'},
                       {'name': 'h_in', 'shape': [1, HIDDEN], 'state_of': 'h_out'}],
            'recurrent': [['h_in', 'h_out']],
            'outputs': ['latent']},
        'inputs': [{'name': 'obs', 'shape': [1, 4], 'group': 'policy'},
                   {'name': 'depth_latent', 'shape': [1, LATENT], 'encoder': 'latent'}],
        'action_output': 'actions',
        'action': {'scale': 1.0},
    }


def write_pair(folder, w, data=None, **encoder_kw):
    """Write actor.onnx, actor.yaml (the card beside it) and encoder.onnx into folder."""
    write_actor(folder / 'actor.onnx', w)
    write_encoder(folder / 'encoder.onnx', w, **encoder_kw)
    (folder / 'actor.yaml').write_text(yaml.safe_dump(data or card_data()))
    return folder / 'actor.onnx'


# --- The card ---------------------------------------------------------------------------

def test_card_reads_the_encoder_section_and_writes_it_back():
    card = card_from_dict(card_data())
    enc = card.encoder
    assert isinstance(enc, EncoderSpec)
    assert enc.model == 'encoder.onnx' and enc.outputs == ('latent',)
    assert enc.recurrent == (('h_in', 'h_out'),)
    assert [(s.name, s.group, s.state_of) for s in enc.inputs] == [
        ('depth', 'depth', None), ('proprio', 'proprio', None), ('h_in', None, 'h_out')]
    assert card.inputs[1].encoder == 'latent' and card.inputs[1].group is None
    assert card_from_yaml(card.to_yaml()) == card
    view = encoder_view(card)
    assert [s.name for s in view.inputs] == ['depth', 'proprio', 'h_in']
    assert view.group_names == ['depth', 'proprio'] and view.recurrent == enc.recurrent


def test_card_without_encoder_has_none():
    data = card_data()
    del data['encoder']
    data['inputs'] = data['inputs'][:1]
    data['observations'] = {'policy': data['observations']['policy']}
    del data['image']
    card = card_from_dict(data)
    assert card.encoder is None and 'encoder' not in card.to_dict()


def _edit(change):
    data = copy.deepcopy(card_data())
    change(data)
    return data


BAD_CARDS = [
    (lambda d: d['encoder'].pop('model'), 'encoder.model: required field is missing'),
    (lambda d: d['encoder'].update(model=' '), 'encoder.model: expected an ONNX file name'),
    (lambda d: d['encoder'].update(inputs=[]), 'encoder.inputs: expected at least one'),
    (lambda d: d['encoder'].update(outputs=[]), 'encoder.outputs: expected a non-empty list'),
    (lambda d: d['encoder'].update(rate=30), "encoder: unknown field(s) ['rate']"),
    (lambda d: d['encoder']['inputs'][1].update(encoder='latent'),
     'encoder.inputs[1].encoder: an encoder input is fed by observation groups'),
    (lambda d: d['encoder']['inputs'][1].update(group='nope'),
     "encoder.inputs[1].group: 'nope' is not an observation group"),
    (lambda d: d['encoder']['inputs'][1].update(group='policy'),
     "encoder.inputs[1].group: 'policy' also feeds an actor input"),
    (lambda d: d['encoder']['inputs'][1].update(name='depth'),
     "encoder.inputs[1].name: 'depth' listed twice"),
    (lambda d: d['encoder'].update(recurrent=[]),
     "encoder.inputs: 'h_in' is state_of 'h_out' but encoder.recurrent does not pair them"),
    (lambda d: d['encoder'].update(recurrent=[['h_in', 'h_out'], ['x', 'y']]),
     "encoder.recurrent[1]: 'x' is not a model input"),
    (lambda d: d['encoder'].update(outputs=['latent', 'extra']),
     "encoder.outputs: ['extra'] feed no actor input"),
    (lambda d: d['inputs'][1].update(encoder='lat'),
     "inputs[1].encoder: 'lat' is not one of encoder.outputs ['latent']"),
    (lambda d: d['inputs'][1].update(group='policy'),
     'inputs[1]: give exactly one of group (an observation group), state_of'),
    (lambda d: d.pop('encoder'),
     "inputs[1].encoder: 'latent' names an encoder output but the card has no encoder"),
    (lambda d: d['encoder']['inputs'].pop(1),
     "observations: group(s) ['proprio'] feed no model input"),
]


@pytest.mark.parametrize('change, message', BAD_CARDS)
def test_bad_encoder_sections_name_the_field(change, message):
    with pytest.raises(CardError) as info:
        card_from_dict(_edit(change))
    assert message in str(info.value)


# --- The sessions -----------------------------------------------------------------------

def test_load_encoder_resolves_the_path_and_checks_io(tmp_path):
    w = weights()
    path = write_pair(tmp_path, w)
    session, card = load_policy(path, None, CPU)
    encoder = load_encoder(path, card, CPU)
    assert check_io(session, card) == [] and check_encoder_io(encoder, card) == []
    # An absolute path is taken as it is; the card may live elsewhere.
    other = tmp_path / 'cards'
    other.mkdir()
    (other / 'card.yaml').write_text(yaml.safe_dump(card_data(str(tmp_path / 'encoder.onnx'))))
    _, card2 = load_policy(path, other / 'card.yaml', CPU)
    assert load_encoder(path, card2, CPU) is not None
    no_encoder = card_from_dict(dict(card_data(), encoder=None, inputs=card_data()['inputs'][:1],
                                     observations={'policy': {'terms': [{'name': 'joint_pos'}]}},
                                     image=None))
    assert load_encoder(path, no_encoder, CPU) is None


def test_missing_encoder_file_is_a_model_error_naming_the_field(tmp_path):
    w = weights()
    path = write_pair(tmp_path, w, card_data('sub/enc.onnx'))
    _, card = load_policy(path, None, CPU)
    with pytest.raises(ModelError) as info:
        load_encoder(path, card, CPU)
    text = str(info.value)
    assert text.startswith(f'encoder.model: {tmp_path / "sub" / "enc.onnx"} not found')
    assert "the card names 'sub/enc.onnx'" in text
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'enc.onnx').write_bytes(b'\x08\x01junk')
    with pytest.raises(ModelError, match='encoder.model: .*not a loadable ONNX model'):
        load_encoder(path, card, CPU)


@pytest.mark.parametrize('kw, problem', [
    ({'latent_name': 'z_out'}, "encoder output 'latent' is not a model output (model outputs: "
                               "['h_out', 'z_out'])"),
    ({'latent_size': 5}, "encoder output 'latent' has shape [1, 5] (5 values), actor input "
                         "'depth_latent' has shape [1, 3] (3 values)"),
])
def test_mismatched_encoder_is_refused(tmp_path, kw, problem):
    w = weights()
    path = write_pair(tmp_path, w, **kw)
    _, card = load_policy(path, None, CPU)
    encoder = load_encoder(path, card, CPU)
    assert problem in check_encoder_io(encoder, card)
    with pytest.raises(ModelError) as info:
        FrameEncoder(card, lambda inputs: EncoderRuntime(encoder, card, inputs, 0))
    assert str(info.value).startswith("encoder model 'encoder.onnx' does not match its card: ")
    assert problem in str(info.value)


def test_encoder_card_inputs_checked_against_the_model(tmp_path):
    w = weights()
    data = card_data()
    data['encoder']['inputs'][0]['shape'] = [1, 1, 4, 3]
    data['image']['resize'] = [3, 4]
    path = write_pair(tmp_path, w, data)
    _, card = load_policy(path, None, CPU)
    problems = check_encoder_io(load_encoder(path, card, CPU), card)
    assert problems == ["input 'depth': model shape [1, 1, 3, 4], card shape [1, 1, 4, 3]"]


def test_frame_encoder_carries_its_state_and_writes_the_latent(tmp_path):
    w = weights()
    path = write_pair(tmp_path, w)
    _, card = load_policy(path, None, CPU)
    session = load_encoder(path, card, CPU)
    enc = FrameEncoder(card, lambda inputs: EncoderRuntime(session, card, inputs, 2))
    assert set(enc.latents) == {'depth_latent'} and not enc.ready
    rng = np.random.default_rng(1)
    sample = Sample(joint_pos=np.array([0.2, -0.4], np.float32), joint_vel=np.zeros(2, np.float32),
                    last_action=np.zeros(2, np.float32))
    h = np.zeros((1, HIDDEN))
    for _ in range(3):
        depth = rng.uniform(0.5, 3.0, DEPTH_SHAPE).astype(np.float32)
        sample.images[''] = depth[0]
        enc.run(sample)
        latent, h = encoder_step(w, depth, sample.joint_pos, h)
        np.testing.assert_allclose(enc.latents['depth_latent'], latent, atol=1e-5)
    assert enc.ready and enc.runs == 3
    enc.reset()
    assert not enc.ready and not enc.latents['depth_latent'].any()
    enc.run(sample)
    latent, _ = encoder_step(w, sample.images[''], sample.joint_pos, np.zeros((1, HIDDEN)))
    np.testing.assert_allclose(enc.latents['depth_latent'], latent, atol=1e-5)


def test_inspect_shows_the_encoder_and_its_mismatch(tmp_path, capsys):
    w = weights()
    path = write_pair(tmp_path, w)
    assert inspect_model.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert f'encoder model: {tmp_path / "encoder.onnx"} (runs per camera frame)' in out
    assert "output 'latent' -> actor input 'depth_latent'" in out
    write_encoder(tmp_path / 'encoder.onnx', w, latent_size=5)
    assert inspect_model.main([str(path)]) == 1
    assert "- encoder: encoder output 'latent' has shape [1, 5]" in capsys.readouterr().out


# --- The core: encoder per frame, actor per tick ------------------------------------------

def make_core(folder, w):
    """Build the PolicyCore of the pair as the node does (CPU, no warm-up)."""
    path = write_pair(folder, w, dict(card_data(), action={
        'scale': 1.0, 'clip': [[-10.0, 10.0], [-10.0, 10.0]]}))
    session, card = load_policy(path, None, CPU)
    encoder = load_encoder(path, card, CPU)
    limits = SafetyLimits.from_card(card, [-math.inf], [math.inf], [100.0])
    return PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs, 0), limits,
                      encoder_factory=lambda inputs: EncoderRuntime(encoder, card, inputs, 0))


def depth_frames(n, seed=3):
    """Return n 3x4 depth images in metres (32FC1, HxWx1)."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.3, 4.0, (3, 4, 1)).astype(np.float32) for _ in range(n)]


def test_core_runs_the_encoder_per_frame_and_the_actor_per_tick(tmp_path):
    w = weights()
    core = make_core(tmp_path, w)
    enc = core.encoder
    assert 'image' in core.needs and core.encoder_cameras == {''}
    assert set(core.tick.inputs) == {'obs', 'depth_latent'}
    zeros = np.zeros(2)
    with pytest.raises(InputError, match='no frame yet'):
        core.step(np.array([0.1, 0.2]), zeros)
    d1, d2, d3 = depth_frames(3)
    core.set_image(d1, '32FC1')
    np.testing.assert_array_equal(core.cameras[''].image[0], d1[..., 0])  # 32FC1 as is
    assert enc.runs == 0  # no tick since the reset: its joints are not known yet
    # The first tick encodes the latest frame with its own joints, from zero state.
    q1 = np.array([0.2, -0.4])
    core.step(q1, zeros)
    latent, h = encoder_step(w, d1, q1, np.zeros((1, HIDDEN)))
    last = actor_step(w, np.r_[q1, 0.0, 0.0], latent)
    np.testing.assert_allclose(core.tick.raw, last, atol=1e-5)
    # Ticks without a new frame: the actor on the same latent, the encoder not run.
    for q in ([0.3, 0.1], [-0.2, 0.5]):
        core.step(np.array(q), zeros)
        last = actor_step(w, np.r_[q, last], latent)
        np.testing.assert_allclose(core.tick.raw, last, atol=1e-5)
    assert enc.runs == 1
    # A new frame: encoded once, with the last tick's joints and the carried state.
    core.set_image(d2, '32FC1')
    assert enc.runs == 2 and core.timing['encoder'] > 0.0
    latent, h = encoder_step(w, d2, [-0.2, 0.5], h)
    np.testing.assert_allclose(core.tick.inputs['depth_latent'], latent, atol=1e-5)
    q = np.array([0.0, 0.1])
    core.step(q, zeros)
    last = actor_step(w, np.r_[q, last], latent)
    np.testing.assert_allclose(core.tick.raw, last, atol=1e-5)
    core.set_image(d3, '32FC1')
    latent, h = encoder_step(w, d3, q, h)
    np.testing.assert_allclose(core.tick.inputs['depth_latent'], latent, atol=1e-5)
    # reset: the recurrent state and last action go; the first tick encodes d3 from zero.
    core.reset()
    assert not enc.ready
    q = np.array([0.4, 0.4])
    core.step(q, zeros)
    assert enc.runs == 4
    latent, _ = encoder_step(w, d3, q, np.zeros((1, HIDDEN)))
    np.testing.assert_allclose(core.tick.raw, actor_step(w, np.r_[q, 0.0, 0.0], latent),
                               atol=1e-5)


def test_core_needs_an_encoder_factory_for_an_encoder_card(tmp_path):
    w = weights()
    path = write_pair(tmp_path, w)
    session, card = load_policy(path, None, CPU)
    limits = SafetyLimits.from_card(card, [-1.0], [1.0], [0.1])
    with pytest.raises(ModelError, match="the card has an encoder \\('encoder.onnx'\\) but "
                                         'PolicyCore was given no encoder_factory'):
        PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs, 0), limits)


def test_encoder_without_a_camera_is_refused():
    data = card_data()
    data['observations']['depth'] = {'terms': [{'name': 'joint_pos'}] * 6}
    data['encoder']['inputs'][0]['shape'] = [1, 12]
    del data['image']
    card = card_from_dict(data)
    with pytest.raises(CardError, match="encoder.inputs: the groups \\['depth', 'proprio'\\] "
                                        'read no camera image'):
        FrameEncoder(card, lambda inputs: None)


def test_exported_torch_pair_runs_in_the_core_as_in_torch(tmp_path):
    torch = pytest.importorskip('torch', reason='PyTorch is not installed')
    from vision_policy.tools.export import export_policy

    class Encoder(torch.nn.Module):

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.embed = torch.nn.Linear(12 + 2, HIDDEN)
            self.gru = torch.nn.GRU(HIDDEN, HIDDEN)
            self.out = torch.nn.Linear(HIDDEN, LATENT)

        def forward(self, depth, proprio, h):
            x = torch.tanh(self.embed(torch.cat([depth.flatten(1), proprio], 1)))
            y, h = self.gru(x.unsqueeze(0), h)
            return self.out(y[0]), h

    class Actor(torch.nn.Module):

        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.mlp = torch.nn.Linear(4 + LATENT, 2)

        def forward(self, obs, latent):
            return self.mlp(torch.cat([obs, latent], 1))

    data = dict(card_data(), action={'scale': 1.0, 'clip': [[-10.0, 10.0], [-10.0, 10.0]]})
    data['encoder']['inputs'][2]['shape'] = [1, 1, HIDDEN]  # torch.nn.GRU's state layout
    card = card_from_dict(data)
    export_policy(Actor(), card, tmp_path / 'actor.onnx')
    export_policy(Encoder(), card, tmp_path / 'encoder.onnx', encoder=True)
    session, loaded = load_policy(tmp_path / 'actor.onnx', None, CPU)  # the embedded card
    assert loaded == card
    encoder = load_encoder(tmp_path / 'actor.onnx', card, CPU)
    limits = SafetyLimits.from_card(card, [-math.inf], [math.inf], [100.0])
    core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs, 0), limits,
                      encoder_factory=lambda inputs: EncoderRuntime(encoder, card, inputs, 0))
    enc_t, actor_t = Encoder().eval(), Actor().eval()
    h, last, joints = torch.zeros(1, 1, HIDDEN), torch.zeros(1, 2), None
    for depth, q in zip(depth_frames(3, seed=5), ([0.1, 0.2], [-0.3, 0.4], [0.5, 0.0])):
        core.set_image(depth, '32FC1')
        core.step(np.array(q), np.zeros(2))
        with torch.no_grad():
            # Frames after the first are encoded when installed: with the last tick's joints.
            proprio = torch.tensor([q if joints is None else joints], dtype=torch.float32)
            latent, h = enc_t(torch.from_numpy(depth[None, None, :, :, 0]), proprio, h)
            last = actor_t(torch.cat([torch.tensor([q], dtype=torch.float32), last], 1),
                           latent)
        np.testing.assert_allclose(core.tick.raw, last.numpy()[0], atol=1e-5)
        joints = q
    assert core.encoder.runs == 3


# --- The node over real rclpy and DDS -----------------------------------------------------

def send_depth(rig, depth):
    """Publish a 32FC1 frame until the node has received it (best effort may drop one)."""
    counters = rig.node.stats.counters
    for _ in range(5):
        seen = counters.images_received
        msg = Image(height=depth.shape[0], width=depth.shape[1], encoding='32FC1',
                    step=depth.shape[1] * 4, is_bigendian=0)
        msg.header.stamp = rig.stamp()
        msg.data = array.array('B', depth.astype('<f4').tobytes())
        rig.image_pub.publish(msg)
        if rig.h.wait_for(lambda: counters.images_received > seen, timeout=2.0):
            return
    raise AssertionError('the node never received the depth frame')


def test_node_runs_the_pair_per_frame_over_dds(harness, tmp_path):
    w = weights()
    data = dict(card_data(), action={'scale': 1.0, 'clip': [[-10.0, 10.0], [-10.0, 10.0]]})
    path = write_pair(tmp_path, w, data)
    record = tmp_path / 'pair.mcap'
    rig = Rig(harness, path, trigger='image', max_joint_step=[100.0],
              max_joint_state_age=30.0, max_image_age=30.0, record_path=str(record))
    assert rig.node.core.encoder is not None and 'image' in rig.node.core.needs
    q = np.array([0.25, -0.5])
    rig.send_joints(q, (0.0, 0.0), names=['a', 'b'])
    assert harness.wait_for(lambda: rig.node.monitor.seq('joint_states') > 0)
    h, raw = np.zeros((1, HIDDEN)), np.zeros(2)
    for k, depth in enumerate(depth_frames(4, seed=11)):
        send_depth(rig, depth)
        assert harness.wait_for(lambda: len(rig.received) == k + 1, timeout=10.0), \
            f'no command for frame {k}; hold {rig.node.hold}'
        # Frame k is encoded once (from zero state at the first tick), then the actor ticks.
        latent, h = encoder_step(w, depth, q, h)
        raw = actor_step(w, np.r_[q, raw], latent)
        np.testing.assert_allclose(rig.received[k].points[0].positions,
                                   np.clip(raw, -10.0, 10.0), atol=1e-5)
    with rig.node._lock:
        assert rig.node.core.encoder.runs == 4
    # Three frames ran it on the frame worker (the first tick after activation the fourth).
    assert len(rig.node.stats.stages['encoder']) == 3
    assert 'encoder_ms_p50' in {kv.key for kv in rig.node.diagnostics().values}
    # The recording replays through both models, command for command.
    from vision_policy.replay import replay_recording
    rig.node.trigger_deactivate()
    rig.node.trigger_cleanup()
    result = replay_recording(record)
    assert result.commands == 4 and result.identical, result.summary()


@pytest.mark.parametrize('model, kw, words', [
    ('missing_encoder.onnx', {}, 'encoder.model: {folder}/missing_encoder.onnx not found'),
    ('encoder.onnx', {'latent_size': 5},
     "encoder model 'encoder.onnx' does not match its card: encoder output 'latent' has "
     "shape [1, 5] (5 values), actor input 'depth_latent' has shape [1, 3] (3 values)"),
])
def test_node_configure_fails_naming_the_encoder_problem(harness, tmp_path, model, kw, words):
    data = dict(card_data(model), action={'scale': 1.0, 'clip': [[-1.0, 1.0], [-1.0, 1.0]]})
    path = write_pair(tmp_path, weights(), data, **kw)
    rig = Rig(harness, path, autostart=False)
    rig.node.trigger_configure()
    assert rig.node._state_machine.current_state[1] == 'unconfigured'
    assert words.format(folder=tmp_path) in rig.node.error
    assert rig.node.core is None  # nothing of the failed configure is kept
