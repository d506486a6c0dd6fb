"""
Replay a recording through the pure ``PolicyCore``, offline and deterministically.

Two kinds of file:

* a recording of ``policy_inference`` (``record_path``): the input messages the node used
  and its per-tick data (recording.py). Replay feeds the inputs, in the order the node
  got them, to a core built from the recorded card and model (or ``--model`` /
  ``--card``); a recorded CameraInfo sets its camera up as the node's parameters
  ``fov_matching`` and ``undistort`` did (crop, undistortion, depth rays). It compares,
  tick by tick, every observation term, the raw action, the targets and the command, bit
  for bit; it names the first tick and item that differs.
* a bag of the raw topics (``ros2 bag record`` of the camera and joint states): no
  per-tick data, so replay runs the node's own hold logic (monitor.py) on a timer of the
  card's ``control_dt`` over the bag's receive times and reports what the node would have
  commanded.

Resets follow the node: the core starts fresh, and is reset before the first command
after a hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from .monitor import input_camera
from .recording import (CLOCK, file_sha256, message_class, METADATA_NAME, OUTCOME_COMMAND,
                        RecordingError, RecordingInfo, term_subtopic)

IMAGE_TYPE, JOINTS_TYPE, ESTOP_TYPE = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/JointState',
                                       'std_msgs/msg/Bool')
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


# ---------------------------------------------------------------------------- reading
def bag_file(path: str | Path) -> Path:
    """Return the .mcap file of path: the file itself, or the one in a rosbag2 folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob('*.mcap'))
        if len(files) != 1:
            raise RecordingError(f'{path}: a bag folder with {len(files)} .mcap files '
                                 f'{[f.name for f in files]}; expected one (pass a split '
                                 f'bag one file at a time)')
        return files[0]
    if not path.is_file():
        raise RecordingError(f'{path}: no such file')
    return path


class McapSource:
    """An open MCAP file: its metadata, topic types and messages in file order."""

    def __init__(self, path: str | Path):
        from mcap.exceptions import McapError
        from mcap.reader import make_reader
        self.path = bag_file(path)
        self._stream = open(self.path, 'rb')
        try:
            self._reader = make_reader(self._stream)
            header = self._reader.get_header()
            summary = self._reader.get_summary()
            if summary is None:
                raise RecordingError('no summary section')
            self.metadata = {m.name: dict(m.metadata) for m in self._reader.iter_metadata()}
        except (McapError, EOFError, ValueError, KeyError, OSError) as exc:
            self._stream.close()
            raise RecordingError(
                f'{self.path}: not a complete MCAP file ({_describe(exc)}); it may be '
                f'truncated (a recorder killed before it closed the file), or not MCAP'
            ) from None
        if header.profile != 'ros2':
            raise RecordingError(f'{self.path}: MCAP profile {header.profile!r}, expected '
                                 f"'ros2' (a rosbag2 or vision_policy recording)")
        self.topics = {c.topic: summary.schemas[c.schema_id].name
                       for c in summary.channels.values()}
        self.counts = dict(summary.statistics.channel_message_counts) if \
            summary.statistics else {}
        self.channel_topics = {cid: c.topic for cid, c in summary.channels.items()}

    @property
    def info(self) -> Optional[RecordingInfo]:
        """Return the recording's RecordingInfo, or None for a plain rosbag2 bag."""
        data = self.metadata.get(METADATA_NAME)
        return None if data is None else RecordingInfo.from_metadata(data, str(self.path))

    def messages(self) -> Iterator[tuple]:
        """Yield (topic, log_time_ns, sequence, cdr bytes) in file order (the node's order)."""
        from mcap.exceptions import McapError
        try:
            for _, channel, message in self._reader.iter_messages(log_time_order=False):
                yield channel.topic, message.log_time, message.sequence, message.data
        except (McapError, EOFError, ValueError) as exc:
            raise RecordingError(f'{self.path}: damaged while reading messages '
                                 f'({_describe(exc)})') from None

    def close(self) -> None:
        """Close the file."""
        self._stream.close()


def _describe(exc: Exception) -> str:
    text = str(exc)
    if type(exc).__name__ == 'UnsupportedCompressionError':
        return (f'chunks compressed in a way this Python cannot read ({text}); install '
                f'zstandard and lz4, or record with rosbag2 compression off')
    if isinstance(exc, EOFError) or type(exc).__name__ == 'EndOfFile':
        return f'the file ends before its footer{": " + text if text else ""}'
    return f'{type(exc).__name__}: {text}' if text else type(exc).__name__


def _decode(cdr: bytes, type_name: str):
    from rclpy.serialization import deserialize_message
    return deserialize_message(cdr, message_class(type_name))


# ---------------------------------------------------------------------------- policy
@dataclass(frozen=True)
class Policy:
    """The core to replay through, and what it was built from."""

    core: object
    card: object
    model_path: str
    card_source: str
    registry: object = None   # terms and sources: built-in and the recorded plugin modules
    note: str = ''            # what may make the replay differ (another provider)


def open_policy(info: Optional[RecordingInfo], model: Optional[str], card: Optional[str],
                where: str, plugin_modules: Optional[tuple] = None,
                providers: tuple = ('CPUExecutionProvider',)) -> Policy:
    """
    Build the core: the recorded card and model unless --model / --card say otherwise.

    Terms and sources come from the installed entry points and the plugin modules the node
    ran with (recorded), or ``plugin_modules`` when given.
    """
    from .card import card_from_yaml
    from .core import PolicyCore
    from .registry import load_registry
    from .encoder import EncoderRuntime
    from .runtime import load_encoder, load_policy, open_session, PolicyRuntime, RuntimeOptions

    if model is None and info is None:
        raise RecordingError(f'{where}: a bag without vision_policy per-tick data: give the '
                             f'policy with --model (and --card if it is not beside it)')
    threads = int((info.node_parameters.get('intra_op_threads', 1)) if info else 1)
    options = RuntimeOptions(providers=tuple(providers), intra_op_threads=threads)
    model_path = model or info.model_path
    if model is None and card is None:
        if not Path(model_path).is_file():
            raise RecordingError(f'{where}: the recorded model {model_path} is not here; '
                                 f'give it with --model')
        if info.model_sha256 and file_sha256(model_path) != info.model_sha256:
            raise RecordingError(f'{where}: {model_path} is not the model recorded (sha256 '
                                 f'differs from {info.model_sha256[:12]}...); give the '
                                 f'recorded one, or compare on purpose with --model')
        session = open_session(model_path, options)
        policy_card = card_from_yaml(info.card_yaml, f'{where} (recorded card)')
        source = 'recorded card'
    elif card is None and model is not None:
        session, policy_card = load_policy(model_path, None, options)
        source = f'card of {model_path}'
    else:
        session, policy_card = load_policy(model_path, card, options)
        source = str(card)
    if info is not None:
        for label, recorded, now in (
                ('joint_names', info.joint_names, tuple(policy_card.joint_names)),
                ('action joint_names', info.action_joint_names,
                 tuple(policy_card.action.joint_names))):
            if recorded != now:
                raise RecordingError(
                    f'{where}: recorded with a card of {label} {list(recorded)}, but '
                    f'{source} has {list(now)}: a recording from another robot or card')
        limits = _limits(info.limits)
    else:
        limits = default_params().limits(policy_card)
    if plugin_modules is None:
        plugin_modules = tuple(info.node_parameters.get('plugin_modules', ())) if info else ()
    registry = load_registry(plugin_modules)
    encoder = load_encoder(model_path, policy_card, options)  # None: a one-model card
    core = PolicyCore(policy_card, lambda inputs: PolicyRuntime(session, policy_card, inputs,
                                                                registry=registry),
                      limits, registry, lambda inputs: EncoderRuntime(encoder, policy_card,
                                                                      inputs))
    note = ''
    if info is not None and info.providers and info.providers[0] != core.providers[0]:
        note += (f'recorded on {info.providers[0]}, replayed on {core.providers[0]}: another '
                 f'provider rounds differently from the network on (--providers)')
    return Policy(core, policy_card, str(model_path), source, registry, note)


def default_params():
    """Return the node's parameters at their defaults (a raw bag has no parameter file)."""
    from .params import NodeParams, PARAMETERS
    return NodeParams.from_values({p.name: p.default for p in PARAMETERS})


def _limits(values: dict):
    from .action import SafetyLimits
    return SafetyLimits(**{k: tuple(v) for k, v in values.items()})


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Difference:
    """The first tick whose replay differs from the recording."""

    tick: int
    item: str            # 'policy/joint_pos_rel', 'action_raw', 'targets', 'command', ...
    index: int           # first differing element (flat index)
    recorded: float
    replayed: float
    max_abs: float       # over the item at that tick

    def __str__(self) -> str:
        return (f'tick {self.tick}: {self.item}[{self.index}] recorded {self.recorded!r}, '
                f'replayed {self.replayed!r} (max |difference| {self.max_abs:.3g} over '
                f'{self.item})')


@dataclass
class ReplayResult:
    """What a replay found; ``identical`` when every recorded command was reproduced."""

    path: str
    policy: str
    ticks: int = 0
    commands: int = 0            # commanded ticks compared (or computed, for a raw bag)
    commands_identical: int = 0
    holds: dict = field(default_factory=dict)   # outcome text -> ticks
    max_abs: dict = field(default_factory=dict)  # item -> max |replayed - recorded|
    first: Optional[Difference] = None
    commanded: list = field(default_factory=list)  # raw bag: (log_time_ns, command)
    raw_bag: bool = False
    note: str = ''

    @property
    def identical(self) -> bool:
        """Return True if every compared tick matched bit for bit."""
        return not self.raw_bag and self.first is None and self.commands > 0

    def summary(self) -> str:
        """Return a human-readable report."""
        lines = [f'{self.path}: {self.ticks} ticks, policy {self.policy}']
        if self.note:
            lines.append(f'note: {self.note}')
        if self.raw_bag:
            lines.append(f'raw bag: the node would have sent {self.commands} commands')
        else:
            lines.append(f'commands reproduced bit for bit: {self.commands_identical} of '
                         f'{self.commands}; max |command difference| '
                         f'{self.max_abs.get("command", 0.0):.6g}')
        for reason, count in sorted(self.holds.items()):
            lines.append(f'held {count} ticks: {reason}')
        differing = {k: v for k, v in self.max_abs.items() if v != 0.0}
        if differing:
            lines.append('max |difference| per item: ' + ', '.join(
                f'{k} {v:.6g}' for k, v in differing.items()))
        if self.first is not None:
            lines.append(f'first difference: {self.first}')
        return '\n'.join(lines)


def _compare(result: ReplayResult, tick: int, item: str, recorded: np.ndarray,
             replayed: np.ndarray) -> bool:
    replayed = np.ascontiguousarray(replayed, dtype=recorded.dtype).reshape(-1)
    if recorded.shape != replayed.shape:
        raise RecordingError(f'tick {tick}: {item} has {recorded.size} values recorded, '
                             f'{replayed.size} replayed: not the recorded card')
    # Bit for bit: compare the bytes (NaN == NaN, 0.0 != -0.0), not the values.
    bits = f'u{recorded.itemsize}'
    unequal = np.flatnonzero(recorded.view(bits) != replayed.view(bits))
    diff = np.abs(replayed.astype(np.float64) - recorded.astype(np.float64))
    worst = float(np.nanmax(diff)) if diff.size else 0.0
    result.max_abs[item] = max(result.max_abs.get(item, 0.0), worst)
    same = unequal.size == 0
    if not same and result.first is None:
        i = int(unequal[0])
        result.first = Difference(tick, item, i, float(recorded[i]), float(replayed[i]), worst)
    return same


# ---------------------------------------------------------------------------- replay
class _Inputs:
    """Feeds recorded input messages to the core as the node does."""

    def __init__(self, policy: Policy, robot_joint_names, node_parameters=None):
        from .core import JointMap
        card = policy.card
        self.core = policy.core
        self.registry = policy.registry
        # How the node used CameraInfo (recorded parameters; the defaults for older files).
        node_parameters = node_parameters or {}
        self.fov_matching = bool(node_parameters.get('fov_matching', True))
        self.undistort = bool(node_parameters.get('undistort', False))
        needs_vel = 'joint_vel' in self.core.needs
        self.joints = JointMap(card.joint_names, robot_joint_names or None, needs_vel)
        self.pos = np.zeros(len(card.joint_names))
        self.vel = np.zeros(len(card.joint_names))

    def image(self, msg, camera: str = '') -> None:
        from .image import view_image
        view = view_image(msg.data, msg.width, msg.height, msg.encoding, msg.step,
                          bool(msg.is_bigendian))
        self.core.set_image(view, msg.encoding, camera)

    def camera_info(self, msg, camera: str = ''):
        """Set a camera up from a CameraInfo as the node does; returns update_camera's."""
        from .camera import camera_from_info, CameraError
        roi = msg.roi
        try:
            real, warnings = camera_from_info(
                msg.width, msg.height, msg.k, msg.d, msg.binning_x, msg.binning_y,
                (roi.x_offset, roi.y_offset, roi.width, roi.height), msg.distortion_model,
                self.undistort)
            return self.core.update_camera(real, self.fov_matching, warnings, camera)
        except CameraError as exc:
            raise RecordingError(f'recorded camera_info of camera {camera!r} is refused by '
                                 f'the card replayed: {exc}') from None

    def joint_state(self, msg) -> None:
        self.joints.extract(list(msg.name), msg.position, msg.velocity, self.pos, self.vel)

    def source(self, name: str, msg) -> None:
        from .sources import get_source
        self.core.set_extras(get_source(name, self.registry).read(msg))


def replay_recording(path: str | Path, model: Optional[str] = None,
                     card: Optional[str] = None, plugin_modules: Optional[tuple] = None,
                     providers: tuple = ('CPUExecutionProvider',)) -> ReplayResult:
    """Replay a file; see the module docstring. Raises RecordingError on unusable input."""
    source = McapSource(path)
    try:
        info = source.info
        policy = open_policy(info, model, card, str(path), plugin_modules, providers)
        if info is None:
            return _replay_raw_bag(source, policy)
        return _replay_ticks(source, info, policy)
    finally:
        source.close()


def _replay_ticks(source: McapSource, info: RecordingInfo, policy: Policy) -> ReplayResult:
    from .core import NonFiniteError
    dropped = int(source.metadata.get(f'{METADATA_NAME}_summary', {}).get('dropped', '0'))
    lost = (f'the recorder dropped {dropped} items (queue full or a write error): a '
            "difference after the first drop is the recording's, not the policy's; "
            if dropped else '')
    result = ReplayResult(str(source.path), f'{policy.model_path} with {policy.card_source}',
                          note=lost + policy.note)
    inputs = _Inputs(policy, info.robot_joint_names, info.node_parameters)
    core = policy.core
    kinds = {topic: kind for kind, topic in info.input_topics.items()}
    prefix = info.tick_prefix + '/'
    term_topics = {term_subtopic(key): key for key in info.terms}
    tick_data: dict = {}
    needs_reset = False
    last_ns = None
    for topic, log_ns, sequence, cdr in source.messages():
        # The node resets the core when its clock jumps backwards (a simulator reset);
        # the recorded log times are its clock readings, in the order it took them.
        if last_ns is not None and log_ns < last_ns:
            core.reset()
        last_ns = log_ns
        kind = kinds.get(topic)
        if kind is not None:
            msg = _decode(cdr, source.topics[topic])
            camera = input_camera(kind)
            if camera is not None:
                inputs.image(msg, camera)
            elif kind.partition('/')[0] == 'camera_info':  # recording.camera_info_input
                inputs.camera_info(msg, kind.partition('/')[2])
            elif kind == 'joint_states':
                inputs.joint_state(msg)
            elif kind not in ('estop', CLOCK):
                inputs.source(kind, msg)
            continue
        if not topic.startswith(prefix):
            continue
        sub = topic[len(prefix):]
        msg = _decode(cdr, source.topics[topic])
        if sub != 'outcome':
            tick_data[sub] = msg
            continue
        result.ticks += 1
        if 'limits' in tick_data:
            core.set_limits(_limits(json.loads(tick_data['limits'].data)))
        if msg.data != OUTCOME_COMMAND:
            result.holds[msg.data] = result.holds.get(msg.data, 0) + 1
            needs_reset = True
            tick_data = {}
            continue
        if needs_reset:
            core.reset()
            needs_reset = False
        result.commands += 1
        try:
            core.step(inputs.pos, inputs.vel)
        except NonFiniteError as exc:
            if result.first is None:
                result.first = Difference(sequence, f'non-finite {exc.where}', 0,
                                          float('nan'), float('nan'), float('inf'))
            needs_reset = True
            tick_data = {}
            continue
        tick = core.tick
        same = True
        for sub_topic, key in term_topics.items():
            recorded = np.array(tick_data[sub_topic].data, dtype=np.float32)
            same &= _compare(result, sequence, key, recorded, tick.terms[key])
        for item, value, dtype in (('action_raw', tick.raw, np.float32),
                                   ('targets', tick.targets, np.float64),
                                   ('command', tick.command, np.float64)):
            recorded = np.array(tick_data[item].data, dtype=dtype)
            same &= _compare(result, sequence, item, recorded, value)
        result.commands_identical += int(same)
        tick_data = {}
    if result.ticks == 0:
        raise RecordingError(f'{source.path}: no ticks recorded under {info.tick_prefix}')
    return result


def _replay_raw_bag(source: McapSource, policy: Policy) -> ReplayResult:
    from .camera import needs_camera_info
    from .core import NonFiniteError
    from .monitor import Ages, Hold, HoldReason, IMAGE, InputMonitor, JOINTS
    from .sources import get_source, InputError
    result = ReplayResult(str(source.path), f'{policy.model_path} with {policy.card_source}',
                          raw_bag=True)
    core, card = policy.core, policy.card
    by_type: dict = {}
    for topic, type_name in source.topics.items():
        by_type.setdefault(type_name, []).append(topic)
    wanted = {JOINTS: JOINTS_TYPE}
    if len(card.images) > 1:
        raise RecordingError(f'{source.path}: a bag without vision_policy metadata cannot say '
                             f"which Image topic is which of the card's cameras "
                             f'{[c.name for c in card.images]}; record with the node '
                             f'(record_path)')
    if card.image is not None:
        wanted[IMAGE] = IMAGE_TYPE
    for name in sorted(core.needs - {'image', 'joint_vel'}):
        wanted[name] = get_source(name, policy.registry).msg_type
    kinds = {}
    for name, type_name in wanted.items():
        topics = by_type.get(type_name, [])
        if len(topics) != 1:
            raise RecordingError(f'{source.path}: {name} needs one {type_name} topic, found '
                                 f'{topics or "none"} (topics: {sorted(source.topics)})')
        kinds[topics[0]] = name
    estop = by_type.get(ESTOP_TYPE, [])
    if len(estop) == 1:
        kinds[estop[0]] = 'estop'
    inputs = _Inputs(policy, None)
    monitor = InputMonitor(list(wanted))
    params = default_params()
    if card.image is not None and needs_camera_info(card.image, params.fov_matching,
                                                    params.undistort):
        # As the node: hold until the camera's CameraInfo sets the crop / depth rays up.
        topics = by_type.get(CAMERA_INFO_TYPE, [])
        if len(topics) != 1:
            raise RecordingError(f"{source.path}: the card's camera needs its camera_info "
                                 f'(fov_matching, distance_to_camera depth): expected one '
                                 f'{CAMERA_INFO_TYPE} topic, found {topics or "none"}')
        kinds[topics[0]] = 'camera_info'
        monitor.set_condition('camera_info', Hold(HoldReason.NO_CAMERA_INFO, topics[0]))
    ages = Ages(params.max_image_age, params.max_joint_state_age, params.max_extra_age)
    dt_ns = int(round(card.control_dt * 1e9))
    next_tick = None
    needs_reset = True

    def tick(now_ns: int) -> None:
        nonlocal needs_reset
        result.ticks += 1
        hold = monitor.decide(now_ns, ages)
        if hold is None:
            if needs_reset:
                core.reset()
                needs_reset = False
            try:
                command = core.step(inputs.pos, inputs.vel)
                monitor.commanded()
                result.commands += 1
                result.commanded.append((now_ns, command.copy()))
                return
            except NonFiniteError as exc:
                hold = Hold(HoldReason.NONFINITE_OBSERVATION if exc.where == 'observation'
                            else HoldReason.NONFINITE_ACTION)
        monitor.start_hold(hold)
        needs_reset = True
        result.holds[str(hold)] = result.holds.get(str(hold), 0) + 1

    last_ns = None
    for topic, log_ns, _, cdr in source.messages():
        kind = kinds.get(topic)
        if kind is None:
            continue
        # A tick sees every message received up to and including its time.
        next_tick = log_ns if next_tick is None else next_tick
        while next_tick < log_ns:
            tick(next_tick)
            next_tick += dt_ns
        last_ns = log_ns
        monitor.observe_clock(log_ns)
        msg = _decode(cdr, source.topics[topic])
        if kind == 'estop':
            monitor.estop = bool(msg.data)
            continue
        if kind == 'camera_info':
            try:
                if inputs.camera_info(msg) is not None:
                    monitor.forget(IMAGE)  # the frame held was processed without it
                monitor.set_condition(kind, None)
            except RecordingError as exc:
                monitor.set_condition(kind, Hold(HoldReason.CAMERA_INFO_INVALID, str(exc)))
            continue
        stamped = kind in (IMAGE, JOINTS) or get_source(kind, policy.registry).stamped
        stamp = (msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                 if stamped else log_ns)
        age_limit = {IMAGE: ages.image, JOINTS: ages.joint_state}.get(kind, ages.extra)
        if monitor.check_stamp(kind, stamp, age_limit) is not None:
            continue
        try:
            if kind == IMAGE:
                inputs.image(msg)
            elif kind == JOINTS:
                inputs.joint_state(msg)
                monitor.joints_valid = True
            else:
                inputs.source(kind, msg)
        except (InputError, ValueError):
            if kind == JOINTS:
                monitor.joints_valid = False
            continue
        monitor.accept(kind, stamp)
    if last_ns is not None and next_tick <= last_ns:
        tick(next_tick)
    if result.ticks == 0:
        raise RecordingError(f'{source.path}: none of the topics the card needs '
                             f'({sorted(wanted)}) has a message')
    return result
