"""Recording and replay: rosbag2 MCAP layout, bit-for-bit replay, bad input."""

import subprocess
import sys

from conftest import workspace_root
import numpy as np
import pytest

mcap_reader = pytest.importorskip('mcap.reader', reason='mcap not installed')
pytest.importorskip('mcap_ros2.decoder', reason='mcap-ros2-support not installed')

from sensor_msgs.msg import Image, JointState  # noqa: E402
from vision_policy.core import PolicyCore  # noqa: E402
from vision_policy.image import view_image  # noqa: E402
from vision_policy.recording import (DEFINITION_DELIMITER, McapFile,  # noqa: E402
                                     message_definition, Recorder, RecordingError,
                                     RecordingInfo)
from vision_policy.replay import default_params, replay_recording  # noqa: E402
from vision_policy.runtime import load_policy, PolicyRuntime, RuntimeOptions  # noqa: E402

TOPICS = {'image': '/camera/image_raw', 'joint_states': '/joint_states'}
HELD_TICKS = (10, 11)


def make_core(model_path, card_path=None):
    session, card = load_policy(model_path, card_path, RuntimeOptions(('CPUExecutionProvider',)))
    return PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs),
                      default_params().limits(card))


def stamped(msg, t_ns):
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t_ns, 1_000_000_000)
    return msg


def inputs(rng, t_ns, names, width=64, height=48):
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = stamped(Image(height=height, width=width, encoding='rgb8', step=width * 3,
                          data=pixels.tobytes()), t_ns)
    joints = stamped(JointState(name=list(names), position=rng.normal(0, 0.5, 3).tolist(),
                                velocity=rng.normal(0, 0.5, 3).tolist()), t_ns)
    return image, joints


def record(path, model_path, ticks=40, max_queue=2000, card_path=None, topics=TOPICS):
    """Drive the core as the node does and record it; return (recorder, commands)."""
    core = make_core(model_path, card_path)
    rec = Recorder(path, RecordingInfo.for_core(core, model_path, topics), max_queue)
    rng = np.random.default_rng(0)
    commands, held = [], False
    for k in range(ticks):
        t_ns = 1_000_000_000 + k * 50_000_000
        image, joints = inputs(rng, t_ns, core.card.joint_names)
        core.set_image(view_image(image.data, image.width, image.height, image.encoding,
                                  image.step), image.encoding)
        rec.add_input('image', image, t_ns, reliable=False)
        rec.add_input('joint_states', joints, t_ns)
        if k in HELD_TICKS:
            rec.add_tick(t_ns, core, 'input too old: image')
            held = True
            continue
        if held:
            core.reset()  # the node resets on resuming after a hold
            held = False
        commands.append(core.step(np.array(joints.position), np.array(joints.velocity)).copy())
        rec.add_tick(t_ns, core)
    rec.close()
    return rec, commands


@pytest.fixture(scope='module')
def recording(tmp_path_factory, model_path):
    path = tmp_path_factory.mktemp('rec') / 'run.mcap'
    rec, commands = record(path, model_path)
    assert rec.error == '' and rec.dropped == 0
    return path, commands


def run_cli(*args):
    return subprocess.run([sys.executable, '-m', 'vision_policy.tools.replay', *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_message_definition_is_rosbag2_ros2msg():
    text, type_hash = message_definition('sensor_msgs/msg/Image')
    first, *deps = text.split(DEFINITION_DELIMITER)
    assert 'uint8[] data' in first and 'MSG:' not in first
    assert sorted(d.splitlines()[0] for d in deps) == ['MSG: builtin_interfaces/msg/Time',
                                                       'MSG: std_msgs/msg/Header']
    assert type_hash.startswith('RIHS01_') and len(type_hash) == 7 + 64


def test_layout_is_readable_by_mcap_ros2(recording):
    path, commands = recording
    from mcap_ros2.decoder import DecoderFactory
    with open(path, 'rb') as f:
        reader = mcap_reader.make_reader(f, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == 'ros2'
        summary = reader.get_summary()
        assert {s.encoding for s in summary.schemas.values()} == {'ros2msg'}
        assert {c.message_encoding for c in summary.channels.values()} == {'cdr'}
        assert all('offered_qos_profiles' in c.metadata for c in summary.channels.values())
        decoded = {}
        for _, channel, _, msg in reader.iter_decoded_messages(log_time_order=False):
            decoded.setdefault(channel.topic, []).append(msg)
    assert len(decoded['/camera/image_raw']) == 40
    assert decoded['/camera/image_raw'][0].encoding == 'rgb8'
    sent = decoded['/policy_inference/tick/command']
    assert len(sent) == len(commands) == 40 - len(HELD_TICKS)
    assert np.array_equal(np.array(sent[-1].data), commands[-1])
    outcomes = [m.data for m in decoded['/policy_inference/tick/outcome']]
    assert outcomes[HELD_TICKS[0]] == 'input too old: image' and outcomes[0] == 'command'
    assert len(decoded['/policy_inference/tick/obs/camera/image'][0].data) == 3 * 64 * 64


def test_replay_reproduces_every_command(recording):
    path, commands = recording
    result = replay_recording(path)
    assert result.note == ''  # recorded and replayed on the CPU provider
    assert result.identical, result.summary()
    assert result.commands == result.commands_identical == len(commands)
    assert result.max_abs['command'] == 0.0
    assert result.holds == {'input too old: image': len(HELD_TICKS)}


def test_replay_through_another_normalisation_names_tick_and_term(recording, tmp_path):
    path, _ = recording
    card = (workspace_root() / 'models' / 'reach_policy.yaml').read_text()
    assert 'normalize: isaaclab' in card
    wrong = tmp_path / 'wrong.yaml'
    wrong.write_text(card.replace('normalize: isaaclab', 'normalize: scale'))
    result = replay_recording(path, card=str(wrong))
    assert not result.identical
    assert (result.first.tick, result.first.item) == (0, 'camera/image')
    proc = run_cli(path, '--card', wrong)
    assert proc.returncode == 1
    assert 'first difference: tick 0: camera/image[0]' in proc.stdout


def test_recording_of_another_card_is_refused(recording, tmp_path):
    path, _ = recording
    card = (workspace_root() / 'models' / 'reach_policy.yaml').read_text()
    other = tmp_path / 'other.yaml'
    other.write_text(card.replace('elbow_joint', 'wrist_joint'))
    with pytest.raises(RecordingError, match='another robot or card'):
        replay_recording(path, card=str(other))
    proc = run_cli(path, '--card', other)
    assert proc.returncode == 2
    assert 'wrist_joint' in proc.stderr and 'Traceback' not in proc.stderr


def test_truncated_recording_is_a_clear_error(recording, tmp_path):
    path, _ = recording
    data = path.read_bytes()
    cut = tmp_path / 'cut.mcap'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(RecordingError, match='truncated'):
        replay_recording(cut)
    proc = run_cli(cut)
    assert proc.returncode == 2
    assert 'not a complete MCAP file' in proc.stderr and 'Traceback' not in proc.stderr


def test_rosbag2_folder_is_accepted(recording, tmp_path):
    """`ros2 bag record` writes a folder (metadata.yaml + one .mcap): replay takes it."""
    path, commands = recording
    folder = tmp_path / 'bag'
    folder.mkdir()
    (folder / 'bag_0.mcap').write_bytes(path.read_bytes())
    (folder / 'metadata.yaml').write_text('rosbag2_bagfile_information: {}\n')
    assert replay_recording(folder).commands == len(commands)
    (folder / 'bag_1.mcap').write_bytes(b'')
    with pytest.raises(RecordingError, match='2 .mcap files'):
        replay_recording(folder)


def test_cli_reproduces(recording):
    proc = run_cli(recording[0])
    assert proc.returncode == 0, proc.stderr
    assert f'reproduced bit for bit: {40 - len(HELD_TICKS)} of {40 - len(HELD_TICKS)}' \
        in proc.stdout


def test_sim_time_recording_carries_the_clock(tmp_path, model_path):
    """On use_sim_time the node's clock is /clock: one Clock per tick, at the tick's time."""
    from mcap_ros2.decoder import DecoderFactory
    path = tmp_path / 'sim.mcap'
    record(path, model_path, ticks=10, topics={**TOPICS, 'clock': '/clock'})
    with open(path, 'rb') as f:
        reader = mcap_reader.make_reader(f, decoder_factories=[DecoderFactory()])
        clocks = [(m.log_time, c.clock.sec * 1_000_000_000 + c.clock.nanosec) for _, ch, m, c
                  in reader.iter_decoded_messages(topics=['/clock'], log_time_order=False)]
    assert [t for t, _ in clocks] == [1_000_000_000 + k * 50_000_000 for k in range(10)]
    assert all(log == clock for log, clock in clocks)
    assert replay_recording(path).identical


def test_full_queue_drops_instead_of_blocking(tmp_path, model_path):
    rec, _ = record(tmp_path / 'small.mcap', model_path, ticks=200, max_queue=1)
    assert rec.dropped > 0 and rec.error == ''
    assert f'the recorder dropped {rec.dropped} items' in \
        replay_recording(tmp_path / 'small.mcap').summary()
    with open(tmp_path / 'small.mcap', 'rb') as f:
        summary = mcap_reader.make_reader(f).get_summary()
    assert summary.statistics.message_count > 0


def test_raw_bag_replay_recomputes_commands(tmp_path, model_path):
    """A bag of only the topics (as `ros2 bag record` writes): commands are recomputed."""
    from rclpy.serialization import serialize_message
    bag = McapFile(tmp_path / 'raw.mcap', chunked=True)  # rosbag2's default layout
    rng = np.random.default_rng(1)
    core = make_core(model_path)
    names = core.card.joint_names
    # Camera at 20 Hz, joint states at 100 Hz, for 1 s; stamps = receive times.
    for k in range(100):
        t_ns = 5_000_000_000 + k * 10_000_000
        image, joints = inputs(rng, t_ns, names)
        if k % 5 == 0:
            bag.write('/camera/image_raw', 'sensor_msgs/msg/Image', serialize_message(image),
                      t_ns)
        bag.write('/joint_states', 'sensor_msgs/msg/JointState', serialize_message(joints),
                  t_ns)
    bag.close()
    result = replay_recording(tmp_path / 'raw.mcap', model=str(model_path))
    assert result.raw_bag
    # 20 ticks at the card's 0.05 s in 0.99 s; the first one sees both inputs.
    assert result.ticks == 20 and result.commands == 20, result.summary()
    assert all(np.all(np.isfinite(c)) for _, c in result.commanded)
    with pytest.raises(RecordingError, match='--model'):
        replay_recording(tmp_path / 'raw.mcap')


def test_raw_bag_of_a_recordings_topics_commands_what_the_node_did(recording, tmp_path,
                                                                   model_path):
    """Strip the per-tick data: the raw-bag replay recomputes the recorded commands."""
    from vision_policy.replay import McapSource
    path, commands = recording
    source = McapSource(path)
    bag = McapFile(tmp_path / 'topics.mcap')
    for topic, log_ns, _, cdr in source.messages():
        if topic in TOPICS.values():
            bag.write(topic, source.topics[topic], cdr, log_ns)
    source.close()
    bag.close()
    result = replay_recording(tmp_path / 'topics.mcap', model=str(model_path))
    assert result.raw_bag and result.ticks == 40 and result.commands == 40
    # Up to the recording's first (artificial) hold both ran the same ticks on the same data.
    for (_, replayed), recorded in zip(result.commanded[:HELD_TICKS[0]], commands):
        assert replayed.tobytes() == recorded.tobytes()


def imu_policy(tmp_path):
    """Write a camera-less policy of joint_pos_rel + base_ang_vel (needs the IMU source)."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    import yaml
    weights = np.random.default_rng(5).normal(0, 0.3, (6, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node('MatMul', ['obs', 'W'], ['actions'])], 'imu',
        [helper.make_tensor_value_info('obs', TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info('actions', TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(weights, 'W')])
    path = tmp_path / 'imu.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), path)
    card = {'name': 'imu', 'control_dt': 0.05,
            'joint_names': ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint'],
            'default_joint_pos': [0.0, 0.3, -0.6],
            'inputs': [{'name': 'obs', 'shape': [1, 6], 'group': 'policy'}],
            'observations': {'policy': {'terms': [{'name': 'joint_pos_rel'},
                                                  {'name': 'base_ang_vel', 'scale': 0.25}]}},
            'action': {'scale': 0.5, 'clip': [[-2, 2], [-1.5, 1.5], [-2.5, 2.5]]}}
    path.with_suffix('.yaml').write_text(yaml.safe_dump(card))
    return path


def test_extra_source_is_recorded_and_replayed(tmp_path):
    """An IMU-fed term: recorded Imu messages replay bit for bit, and as a raw bag."""
    from sensor_msgs.msg import Imu
    from vision_policy.sources import get_source
    model = imu_policy(tmp_path)
    core = make_core(model)
    assert core.needs == {'imu'}
    topics = {'joint_states': '/joint_states', 'imu': '/imu'}
    rec = Recorder(tmp_path / 'imu.mcap', RecordingInfo.for_core(core, model, topics))
    rng = np.random.default_rng(2)
    read = get_source('imu').read
    for k in range(20):
        t_ns = 2_000_000_000 + k * 50_000_000
        _, joints = inputs(rng, t_ns, core.card.joint_names)
        imu = stamped(Imu(), t_ns)
        imu.orientation.w = 1.0
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = \
            rng.normal(0, 1, 3).tolist()
        core.set_extras(read(imu))
        rec.add_input('imu', imu, t_ns)
        rec.add_input('joint_states', joints, t_ns)
        core.step(np.array(joints.position), np.array(joints.velocity))
        rec.add_tick(t_ns, core)
    rec.close()
    result = replay_recording(tmp_path / 'imu.mcap')
    assert result.identical and result.commands == 20, result.summary()
    # The same topics as a plain bag: the source is found by its message type.
    from vision_policy.replay import McapSource
    source = McapSource(tmp_path / 'imu.mcap')
    bag = McapFile(tmp_path / 'imu_bag.mcap')
    for topic, log_ns, _, cdr in source.messages():
        if topic in topics.values():
            bag.write(topic, source.topics[topic], cdr, log_ns)
    source.close()
    bag.close()
    raw = replay_recording(tmp_path / 'imu_bag.mcap', model=str(model))
    assert raw.commands == 20, raw.summary()
    assert raw.commanded[-1][1].tobytes() == core.tick.command.tobytes()
