"""
MCAP recordings of what policy_inference saw and did, tick by tick.

A recording is one ``.mcap`` file laid out as rosbag2's MCAP storage plugin lays it out
(profile ``ros2``, schema encoding ``ros2msg`` with the complete concatenated message
definition, message encoding ``cdr``, ``offered_qos_profiles`` per channel; unchunked,
as its ``fastwrite`` preset writes), so ``ros2 bag info/play`` and Foxglove open it. It
holds:

* the input messages the node used (camera images, joint states, extra sources, e-stop),
  as the raw CDR the node received, on their own topic names; and each CameraInfo that
  set a camera up (the first valid one: its crop, undistortion and depth rays), so replay
  processes the frames as the node did;
* per tick, on topics under ``<node>/tick/`` with std_msgs types: every observation term
  after clip and scale (``obs/<group>/<term>``, Float32MultiArray), the raw network output
  (``action_raw``), the targets before and after the safety filter (``targets``,
  ``command``, Float64MultiArray), the stage times (``timing/<stage>``, Float64, seconds),
  the wall clock (``wall_time``) and the outcome (``outcome``, String: ``command`` or the
  hold reason), written last, so a reader that sees it has the whole tick;
* a metadata record ``vision_policy`` (see ``RecordingInfo``): the card, the model, the
  joint names, the limits and the topic of each input, so replay needs nothing else.

Every per-tick message carries the tick number as its MCAP ``sequence``. The ``Recorder``
only copies and queues in the caller's thread; serialisation and disk writes run on one
background thread, so the control timer never waits on the disk. A full queue drops the
item and counts it (``Recorder.dropped``) rather than blocking the robot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import hashlib
import importlib
import json
import os
from pathlib import Path
import queue
import sys
import threading
import time
from typing import Any, Mapping, Optional

import numpy as np

FORMAT_VERSION = 1
METADATA_NAME = 'vision_policy'
# 80 '=' then 'MSG: pkg/msg/Type': rosbag2's ros2msg delimiter between definitions.
DEFINITION_DELIMITER = '=' * 80 + '\n'
# Stage times of core.timing, in the order they are written.
STAGES = ('preprocess', 'observation', 'inference', 'postprocess')
OUTCOME_COMMAND = 'command'
# Input kind of /clock: with it in input_topics, every tick also writes the node's clock.
CLOCK = 'clock'
# A rosbag2 "version 8" QoS entry (numeric enums; Jazzy reads it, as it reads bags recorded
# by Humble): keep_last(1) depth 10, reliability, volatile(2), automatic liveliness(1).
RELIABLE, BEST_EFFORT = 1, 2


def camera_info_input(camera: str) -> str:
    """Return the input kind of a camera's CameraInfo: 'camera_info' or 'camera_info/<name>'."""
    return f'camera_info/{camera}' if camera else 'camera_info'


def offered_qos(reliability: int, depth: int = 10) -> str:
    """Return one offered_qos_profiles entry as rosbag2 writes it (metadata version 8)."""
    infinite = '{sec: 9223372036, nsec: 854775807}'
    return (f'- history: 1\n  depth: {depth}\n  reliability: {reliability}\n'
            f'  durability: 2\n  deadline: {infinite}\n  lifespan: {infinite}\n'
            f'  liveliness: 1\n  liveliness_lease_duration: {infinite}\n'
            f'  avoid_ros_namespace_conventions: false\n')


class RecordingError(ValueError):
    """A recording cannot be written or read; the message says what and where."""


# ---------------------------------------------------------------------------- messages
def message_class(type_name: str):
    """Return the Python class of 'pkg/msg/Type'; RecordingError if it is not installed."""
    try:
        pkg, kind, name = type_name.split('/')
        return getattr(importlib.import_module(f'{pkg}.{kind}'), name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise RecordingError(f'message type {type_name!r}: not installed here ({exc}); '
                             f'expected a type such as sensor_msgs/msg/Image') from None


def type_name_of(msg: Any) -> str:
    """Return 'pkg/msg/Type' of an rclpy message instance."""
    cls = type(msg)
    pkg, kind = cls.__module__.split('.')[:2]
    return f'{pkg}/{kind}/{cls.__name__}'


def _interface_file(type_name: str, suffix: str) -> Path:
    pkg, kind, name = type_name.split('/')
    roots = []
    try:
        from ament_index_python.packages import get_package_share_directory
        roots.append(Path(get_package_share_directory(pkg)))
    except (ImportError, LookupError, ValueError):
        pass  # PyPI ROS wheels do not register every package in the ament index
    roots += [Path(p) / 'share' / pkg for p in os.environ.get('AMENT_PREFIX_PATH', '').split(
        os.pathsep) if p]
    roots.append(Path(sys.prefix) / 'share' / pkg)
    for root in roots:
        path = root / kind / f'{name}{suffix}'
        if path.is_file():
            return path
    raise RecordingError(f'message type {type_name!r}: no {kind}/{name}{suffix} in '
                         f'{[str(r) for r in roots]}')


def message_definition(type_name: str) -> tuple:
    """
    Return (complete ros2msg definition, type hash) of 'pkg/msg/Type', as rosbag2 stores it.

    The definition is the type's .msg text, then each type it refers to (recursively)
    after the two-line delimiter ``====...`` / ``MSG: pkg/msg/Type``. The referenced
    types and the RIHS01 hash come from the type description JSON rosidl installs.
    """
    description = json.loads(_interface_file(type_name, '.json').read_text())
    parts = [_interface_file(type_name, '.msg').read_text()]
    for ref in description['type_description_msg']['referenced_type_descriptions']:
        text = _interface_file(ref['type_name'], '.msg').read_text()
        parts.append(f'{DEFINITION_DELIMITER}MSG: {ref["type_name"]}\n{text}')
    hashes = {h['type_name']: h['hash_string'] for h in description.get('type_hashes', ())}
    return '\n'.join(p.rstrip('\n') for p in parts) + '\n', hashes.get(type_name, '')


# ---------------------------------------------------------------------------- metadata
@dataclass(frozen=True)
class RecordingInfo:
    """What a reader needs besides the messages; stored as the 'vision_policy' metadata."""

    card_yaml: str
    card_name: str
    model_path: str
    model_sha256: str
    joint_names: tuple
    robot_joint_names: tuple
    action_joint_names: tuple
    control_dt: float
    # Input kind ('image', 'joint_states', 'estop', or a source name) -> topic name.
    input_topics: Mapping[str, str]
    # Term key ('group/term') -> shape; in the order the card concatenates them.
    terms: Mapping[str, tuple]
    limits: Mapping[str, tuple]
    tick_prefix: str = '/policy_inference/tick'
    node_parameters: Mapping[str, Any] = field(default_factory=dict)
    # The onnxruntime providers the session used: another provider rounds differently.
    providers: tuple = ()

    @classmethod
    def for_core(cls, core, model_path: str | Path, input_topics: Mapping[str, str],
                 robot_joint_names=(), tick_prefix: str = '/policy_inference/tick',
                 node_parameters: Optional[Mapping[str, Any]] = None) -> 'RecordingInfo':
        """Describe a recording of this core (card, model, terms, limits) and its topics."""
        card = core.card
        return cls(card_yaml=card.to_yaml(), card_name=card.name,
                   model_path=str(Path(model_path).resolve()),
                   model_sha256=file_sha256(model_path),
                   joint_names=tuple(card.joint_names),
                   robot_joint_names=tuple(n for n in robot_joint_names if n),
                   action_joint_names=tuple(core.action_joint_names),
                   control_dt=float(card.control_dt), input_topics=dict(input_topics),
                   terms={k: tuple(np.shape(v)) for k, v in core.tick.terms.items()},
                   limits={k: tuple(v) for k, v in asdict(core.limits).items()},
                   tick_prefix=tick_prefix, node_parameters=dict(node_parameters or {}),
                   providers=tuple(core.providers))

    def to_metadata(self) -> dict:
        """Return the MCAP metadata map (str -> str)."""
        data = asdict(self)
        return {'format_version': str(FORMAT_VERSION),
                'info': json.dumps(data, default=list)}

    @classmethod
    def from_metadata(cls, data: Mapping[str, str], where: str) -> 'RecordingInfo':
        """Parse to_metadata's map; RecordingError naming the file if it is not ours."""
        version = data.get('format_version')
        if version != str(FORMAT_VERSION):
            raise RecordingError(f'{where}: vision_policy metadata format_version {version!r}, '
                                 f'expected {FORMAT_VERSION!r}')
        try:
            raw = json.loads(data['info'])
            raw['terms'] = {k: tuple(v) for k, v in raw['terms'].items()}
            raw['limits'] = {k: tuple(v) for k, v in raw['limits'].items()}
            for key in ('joint_names', 'robot_joint_names', 'action_joint_names'):
                raw[key] = tuple(raw[key])
            raw['providers'] = tuple(raw.get('providers', ()))  # absent before it was kept
            return cls(**raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordingError(f'{where}: vision_policy metadata unreadable: {exc}') from None


def check_record_path(path: str | Path) -> None:
    """Raise RecordingError naming record_path unless a recording can be written there."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        problem = 'is a folder'
    elif not folder.is_dir():
        problem = f'folder {str(folder)!r} does not exist'
    elif not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        problem = 'is not writable'
    else:
        return
    raise RecordingError(f'record_path {str(target)!r}: {problem}; expected a writable '
                         f'.mcap file path (empty = no recording)')


def file_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of a file (identifies the model a recording ran)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def term_subtopic(key: str) -> str:
    """Tick topic (below the prefix) of a term key 'group/name#i' ('#' is not allowed)."""
    return 'obs/' + key.replace('#', '_')


# ---------------------------------------------------------------------------- writer
class McapFile:
    """A rosbag2-style MCAP writer: channels created on first use; not thread-safe."""

    def __init__(self, path: str | Path, library: str = 'vision_policy recording',
                 chunked: bool = False):
        from mcap.writer import CompressionType, Writer
        self.path = Path(path)
        try:
            self._stream = open(self.path, 'wb')
        except OSError as exc:
            raise RecordingError(f'record_path {str(self.path)!r}: cannot write the recording '
                                 f'({exc.strerror}); expected a writable file path') from None
        # rosbag2's 'fastwrite' preset: no chunks, no CRCs. Chunking copies every message
        # twice more in Python (1.2 ms of writer-thread CPU per VGA image against 0.25 ms),
        # time taken from the control thread through the GIL. Readers scan unchunked files
        # (there is no message index); chunked=True gives rosbag2's default layout.
        self._writer = Writer(self._stream, compression=CompressionType.NONE, enable_crcs=False,
                              use_chunking=chunked)
        self._writer.start(profile='ros2', library=library)
        self._schemas: dict = {}
        self._channels: dict = {}
        self.messages = 0

    def channel(self, topic: str, type_name: str, reliable: bool = True, depth: int = 10) -> int:
        """Return the channel id of topic, registering schema and channel the first time."""
        cid = self._channels.get(topic)
        if cid is not None:
            return cid
        if type_name not in self._schemas:
            text, type_hash = message_definition(type_name)
            schema = self._writer.register_schema(name=type_name, encoding='ros2msg',
                                                  data=text.encode())
            self._schemas[type_name] = (schema, type_hash)
        schema, type_hash = self._schemas[type_name]
        qos = offered_qos(RELIABLE if reliable else BEST_EFFORT, depth)
        cid = self._writer.register_channel(
            topic=topic, message_encoding='cdr', schema_id=schema,
            metadata={'offered_qos_profiles': qos, 'topic_type_hash': type_hash})
        self._channels[topic] = cid
        return cid

    def write(self, topic: str, type_name: str, cdr: bytes, log_time_ns: int,
              sequence: int = 0, reliable: bool = True) -> None:
        """Write one serialised message."""
        cid = self.channel(topic, type_name, reliable)
        self._writer.add_message(cid, log_time=log_time_ns, data=cdr,
                                 publish_time=log_time_ns, sequence=sequence)
        self.messages += 1

    def metadata(self, name: str, data: Mapping[str, str]) -> None:
        """Write a metadata record."""
        self._writer.add_metadata(name, dict(data))

    def close(self) -> None:
        """Write the summary and close the file."""
        self._writer.finish()
        self._stream.close()


def _float_array(values: np.ndarray, cls):
    from std_msgs.msg import MultiArrayDimension
    msg = cls()
    shape = values.shape or (1,)
    stride = int(np.prod(shape))
    for i, size in enumerate(shape):
        msg.layout.dim.append(MultiArrayDimension(label=f'dim{i}', size=int(size),
                                                  stride=stride))
        stride //= max(int(size), 1)
    msg.data = values.reshape(-1)
    return msg


@dataclass(frozen=True)
class _Input:
    kind: str
    topic: str
    msg: Any
    log_time_ns: int
    reliable: bool
    type_name: Optional[str] = None


@dataclass(frozen=True)
class _Tick:
    index: int
    log_time_ns: int
    wall_time: float
    terms: Optional[dict]
    raw: Optional[np.ndarray]
    targets: Optional[np.ndarray]
    command: Optional[np.ndarray]
    timing: Optional[dict]
    outcome: str
    limits: Optional[dict]


class Recorder:
    """
    Records the node's inputs and ticks into one MCAP file from a background thread.

    ``add_input`` and ``add_tick`` copy what they need and return at once; call ``close``
    to flush and finish the file. Not for use by more than one thread at a time.
    """

    def __init__(self, path: str | Path, info: RecordingInfo, max_queue: int = 2000):
        self.path = Path(path)
        self.info = info
        self.queue_full = 0    # items the caller could not queue (counted by the caller)
        self.unwritten = 0     # items the writer skipped after an error (by the writer)
        self.ticks = 0
        self.error = ''
        self._file = McapFile(self.path)
        self._file.metadata(METADATA_NAME, info.to_metadata())
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._limits = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name='vision_policy_recorder',
                                        daemon=True)
        self._thread.start()

    # -- caller side (the control thread) ---------------------------------------------
    def _put(self, item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.queue_full += 1

    @property
    def dropped(self) -> int:
        """Return how many inputs and ticks are not in the file."""
        return self.queue_full + self.unwritten

    def add_input(self, kind: str, msg: Any, log_time_ns: int, reliable: bool = True,
                  type_name: Optional[str] = None) -> None:
        """
        Queue an input message the node used; kind names its entry in input_topics.

        ``msg`` is an rclpy message, or its serialised CDR bytes (a raw subscription) with
        ``type_name`` ('sensor_msgs/msg/Image'). ``log_time_ns`` is the node clock's
        reading when the node took it (replay tells a clock jump from it).
        """
        topic = self.info.input_topics.get(kind)
        if topic is None:
            raise RecordingError(f'input kind {kind!r} has no topic in the recording; '
                                 f'known: {sorted(self.info.input_topics)}')
        if isinstance(msg, (bytes, bytearray, memoryview)) and type_name is None:
            raise RecordingError(f'input {kind!r}: serialised bytes need their type_name')
        # rclpy hands each callback a new message object, so a reference is a snapshot.
        self._put(_Input(kind, topic, bytes(msg) if isinstance(msg, memoryview) else msg,
                         int(log_time_ns), reliable, type_name))

    def add_tick(self, log_time_ns: int, core=None, hold_reason: Optional[str] = None) -> int:
        """
        Queue one tick; returns its number.

        With ``hold_reason`` None the tick commanded and ``core.tick`` / ``core.timing``
        hold its data (copied here: the core reuses the arrays next tick). Otherwise the
        robot was held for that reason and only the outcome is written.
        """
        index = self.ticks
        self.ticks += 1
        limits = None
        if core is not None and core.limits is not self._limits:
            self._limits = core.limits
            limits = {k: tuple(v) for k, v in asdict(core.limits).items()}
        if hold_reason is None:
            tick = core.tick
            item = _Tick(index, int(log_time_ns), time.monotonic(),
                         {k: np.array(v, dtype=np.float32) for k, v in tick.terms.items()},
                         np.array(tick.raw, dtype=np.float32),
                         np.array(tick.targets, dtype=np.float64),
                         np.array(tick.command, dtype=np.float64),
                         {s: float(core.timing.get(s, float('nan'))) for s in STAGES},
                         OUTCOME_COMMAND, limits)
        else:
            item = _Tick(index, int(log_time_ns), time.monotonic(), None, None, None, None,
                         None, str(hold_reason), limits)
        self._put(item)
        return index

    def close(self, timeout: float = 30.0) -> None:
        """Flush the queue, write the summary and close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.error = self.error or f'recorder thread did not finish within {timeout} s'
            return
        try:
            self._file.metadata(f'{METADATA_NAME}_summary', {
                'ticks': str(self.ticks), 'dropped': str(self.dropped),
                'messages': str(self._file.messages), 'error': self.error})
            self._file.close()
        except OSError as exc:
            self.error = self.error or f'{self.path}: {exc}'

    # -- writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        from rclpy.serialization import serialize_message
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error:
                self.unwritten += 1
                continue
            # Give the GIL back between items: a control thread that wants it waits for the
            # writer's next release (up to the 5 ms switch interval), and the timer must not.
            time.sleep(0)
            try:
                if isinstance(item, _Input) and item.type_name is not None:
                    self._file.write(item.topic, item.type_name, bytes(item.msg),
                                     item.log_time_ns, reliable=item.reliable)
                elif isinstance(item, _Input):
                    cdr = serialize_message(item.msg)
                    time.sleep(0)
                    self._file.write(item.topic, type_name_of(item.msg), cdr,
                                     item.log_time_ns, reliable=item.reliable)
                else:
                    self._write_tick(item, serialize_message)
            except (OSError, ValueError, TypeError, RecordingError) as exc:
                # A full disk must not stop the robot: stop recording and say why.
                self.error = f'{self.path}: writing failed: {exc}'

    def _write_tick(self, tick: _Tick, serialize) -> None:
        from std_msgs.msg import Float32MultiArray, Float64, Float64MultiArray, String
        prefix = self.info.tick_prefix

        def put(topic: str, msg) -> None:
            self._file.write(f'{prefix}/{topic}', type_name_of(msg), serialize(msg),
                             tick.log_time_ns, tick.index)

        clock_topic = self.info.input_topics.get(CLOCK)
        if clock_topic is not None:
            # On simulation time the node's clock is /clock: record the reading it ticked on.
            from rosgraph_msgs.msg import Clock
            clock = Clock()
            clock.clock.sec, clock.clock.nanosec = divmod(tick.log_time_ns, 1_000_000_000)
            self._file.write(clock_topic, 'rosgraph_msgs/msg/Clock', serialize(clock),
                             tick.log_time_ns, tick.index)
        if tick.limits is not None:
            put('limits', String(data=json.dumps(tick.limits)))
        put('wall_time', Float64(data=tick.wall_time))
        if tick.terms is not None:
            for key, value in tick.terms.items():
                put(term_subtopic(key), _float_array(value, Float32MultiArray))
            put('action_raw', _float_array(tick.raw, Float32MultiArray))
            put('targets', _float_array(tick.targets, Float64MultiArray))
            put('command', _float_array(tick.command, Float64MultiArray))
            for stage, seconds in tick.timing.items():
                put(f'timing/{stage}', Float64(data=seconds))
        put('outcome', String(data=tick.outcome))
