"""
The onnxruntime session: provider choice, I/O checked against the card, recurrent state.

The session is built for latency on a robot computer: one inference at a time,
a fixed small thread pool, full graph optimisation, and outputs written into
preallocated buffers through I/O binding so a tick allocates nothing.

With the CUDA (or TensorRT) provider the inputs live in bound device buffers (OrtValue):
each tick uploads each input once and reads the outputs back once into the host arrays.
Binding the host arrays themselves (``bind_cpu_input``) is not an option there: on an
H200 with onnxruntime-gpu 1.31.1 such a binding kept the values of the moment it was
bound, so every tick returned the first tick's action whatever the inputs (seen in
test_runtime.py's CUDA test). With device buffers the bundled model ran in 0.26 ms p50.
TensorRT, when its libraries load, caches its engines on disk (``trt_cache_dir``) so a
restart does not rebuild them; where TensorRT is absent it is skipped before the session
is made, so onnxruntime logs no failed provider.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, replace
import logging
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import onnxruntime as ort

from .action import action_width
from .card import card_from_yaml, CardError, load_card, ONNX_METADATA_KEY, PolicyCard

DEFAULT_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider',
                     'CPUExecutionProvider')
TENSORRT, CUDA = 'TensorrtExecutionProvider', 'CUDAExecutionProvider'
# The TensorRT runtime libraries onnxruntime-gpu's TensorRT provider links against.
_NVINFER = ('libnvinfer.so.10', 'libnvinfer.so.8')
_LOG = logging.getLogger(__name__)


class ModelError(ValueError):
    """The model file cannot be used with this card; the message names the mismatch."""


@dataclass(frozen=True)
class RuntimeOptions:
    """onnxruntime settings chosen by the user (ROS parameters)."""

    providers: tuple = DEFAULT_PROVIDERS
    intra_op_threads: int = 1
    warmup_runs: int = 3
    # TensorRT engine cache; empty: $XDG_CACHE_HOME (or ~/.cache)/vision_policy/tensorrt.
    trt_cache_dir: str = ''
    trt_fp16: bool = False  # fp16 changes the numbers the policy was trained with
    # CUDA: capture the model once as a CUDA graph and replay it (0.84 -> 0.31 ms per tick
    # inside the node on an H200); a model the graph cannot hold runs without one.
    cuda_graph: bool = True


def tensorrt_available() -> bool:
    """Return True when the TensorRT runtime library can be loaded in this process."""
    for name in _NVINFER:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def default_trt_cache_dir() -> Path:
    """Return where TensorRT engines are cached when RuntimeOptions names no folder."""
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'vision_policy' / 'tensorrt'


def provider_list(chosen: Sequence[str], options: RuntimeOptions,
                  trt_loadable: bool) -> list:
    """
    Return the providers for InferenceSession, with TensorRT's engine-cache options.

    TensorRT is dropped when its libraries do not load (``trt_loadable`` False): the
    session then starts on the next provider without onnxruntime's failed-load error.
    CUDA gets ``enable_cuda_graph`` when ``options.cuda_graph``.
    """
    result = []
    for name in chosen:
        if name == TENSORRT:
            if not trt_loadable:
                _LOG.info('TensorrtExecutionProvider skipped: TensorRT libraries (%s) not '
                          'found', ', '.join(_NVINFER))
                continue
            cache = Path(options.trt_cache_dir) if options.trt_cache_dir else \
                default_trt_cache_dir()
            cache.mkdir(parents=True, exist_ok=True)
            result.append((name, {'trt_engine_cache_enable': True,
                                  'trt_engine_cache_path': str(cache),
                                  'trt_timing_cache_enable': True,
                                  'trt_timing_cache_path': str(cache),
                                  'trt_fp16_enable': options.trt_fp16}))
        elif name == CUDA and options.cuda_graph:
            result.append((name, {'enable_cuda_graph': '1'}))
        else:
            result.append(name)
    return result


def choose_providers(wanted: Sequence[str], available: Sequence[str]) -> list:
    """Keep the wanted providers that this onnxruntime offers, in the wanted order."""
    chosen = [p for p in wanted if p in available]
    if not chosen:
        raise ModelError(f'none of the providers {list(wanted)} is available; this '
                         f'onnxruntime offers {list(available)}')
    return chosen


def open_session(model_path: str | Path, options: RuntimeOptions) -> ort.InferenceSession:
    """Create the session, raising ModelError with the reason when the file is unusable."""
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f'{path}: model file not found')
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    chosen = choose_providers(options.providers, ort.get_available_providers())
    providers = provider_list(chosen, options, TENSORRT in chosen and tensorrt_available())
    if not providers:
        raise ModelError(f'none of the providers {list(options.providers)} can run here: '
                         f'TensorRT libraries ({", ".join(_NVINFER)}) not found')
    try:
        session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        if CUDA in chosen and options.cuda_graph:
            # A CUDA graph needs every node on CUDA and fixed shapes: try without one.
            _LOG.warning('%s: no CUDA graph (%s); running without one', path, exc)
            return open_session(path, replace(options, cuda_graph=False))
        raise ModelError(f'{path}: not a loadable ONNX model ({exc})') from exc
    _LOG.info('onnxruntime providers in use: %s', session.get_providers())
    return session


def embedded_card(session: ort.InferenceSession, where: str) -> Optional[PolicyCard]:
    """Return the card stored in the model metadata by vision_policy_export, if any."""
    text = session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY)
    return None if text is None else card_from_yaml(text, f'{where} (embedded card)')


def _shape_matches(model_shape: Sequence, card_shape: Sequence) -> bool:
    if len(model_shape) != len(card_shape):
        return False
    # A symbolic dim (str or None) in the model accepts the card's value.
    return all(not isinstance(m, int) or m == c for m, c in zip(model_shape, card_shape))


def check_io(session: ort.InferenceSession, card: PolicyCard, registry=None) -> list:
    """
    List every mismatch between the model's inputs/outputs and the card (empty if none).

    ``registry`` (registry.py) knows the card's action terms and so the output width.
    """
    problems = _io_problems(session, card.inputs, card.recurrent)
    model_outputs = {o.name: o for o in session.get_outputs()}
    action = model_outputs.get(card.action_output)
    if action is None:
        problems.append(f'action_output {card.action_output!r} is not a model output '
                        f'(model outputs: {sorted(model_outputs)})')
    else:
        width = action.shape[-1] if action.shape else None
        want, n = action_width(card, registry), len(card.action.joint_names)
        if isinstance(width, int) and width != want:
            held = '' if want == n else f' ({want} values: zero-width terms take none)'
            problems.append(f'output {card.action_output!r} has {width} actions, card action '
                            f'has {n} joints{held}')
    return problems


def check_encoder_io(session: ort.InferenceSession, card: PolicyCard) -> list:
    """
    List every mismatch between the encoder model and the card's encoder section.

    Besides its inputs and recurrent state, each output the actor reads must be a model
    output with as many values as the actor input it feeds.
    """
    enc = card.encoder
    problems = _io_problems(session, enc.inputs, enc.recurrent)
    model_outputs = {o.name: o for o in session.get_outputs()}
    for spec in card.inputs:
        if spec.encoder is None:
            continue
        got = model_outputs.get(spec.encoder)
        if got is None:
            problems.append(f'encoder output {spec.encoder!r} is not a model output (model '
                            f'outputs: {sorted(model_outputs)})')
            continue
        dims = [d for d in got.shape if isinstance(d, int)]
        size, want = int(np.prod(dims)), int(np.prod(spec.shape))
        if len(dims) == len(got.shape) and size != want:
            problems.append(f'encoder output {spec.encoder!r} has shape {got.shape} ({size} '
                            f'values), actor input {spec.name!r} has shape {list(spec.shape)} '
                            f'({want} values)')
    return problems


def _io_problems(session: ort.InferenceSession, inputs: Sequence, recurrent: Sequence) -> list:
    """Mismatches of one model's inputs (InputSpec) and recurrent pairs with the session."""
    problems = []
    model_inputs = {i.name: i for i in session.get_inputs()}
    model_outputs = {o.name: o for o in session.get_outputs()}
    for spec in inputs:
        got = model_inputs.get(spec.name)
        if got is None:
            problems.append(f'card input {spec.name!r} is not a model input (model inputs: '
                            f'{sorted(model_inputs)})')
            continue
        if not _shape_matches(got.shape, spec.shape):
            problems.append(f'input {spec.name!r}: model shape {got.shape}, card shape '
                            f'{list(spec.shape)}')
        if got.type != 'tensor(float)':
            problems.append(f'input {spec.name!r}: model type {got.type}, card dtype '
                            f'{spec.dtype}')
    for name in sorted(set(model_inputs) - {s.name for s in inputs}):
        problems.append(f'model input {name!r} is not fed by the card')
    for state_in, state_out in recurrent:
        if state_out not in model_outputs:
            problems.append(f'recurrent output {state_out!r} is not a model output')
        elif state_in in model_inputs and \
                model_outputs[state_out].shape != model_inputs[state_in].shape:
            problems.append(f'recurrent state {state_in!r} {model_inputs[state_in].shape} and '
                            f'{state_out!r} {model_outputs[state_out].shape} differ in shape')
    return problems


class PolicyRuntime:
    """
    Runs the policy once per tick on the builder's input buffers.

    ``inputs`` holds one array per model input the card feeds from observations or an
    encoder; the arrays are read in place at every run. The encoder of an encoder + actor
    card runs in the subclass encoder.EncoderRuntime, which checks and binds other outputs.
    """

    def __init__(self, session: ort.InferenceSession, card: PolicyCard,
                 inputs: dict, warmup_runs: int = 3, registry=None):
        problems = self._problems(session, card, registry)
        if problems:
            raise ModelError(f'{self._what(card)} does not match its card: ' +
                             '; '.join(problems))
        self.session = session
        self.card = card
        self._inputs = dict(inputs)
        self._state_pairs = list(card.recurrent)
        for state_in, _ in self._state_pairs:
            spec = next(s for s in card.inputs if s.name == state_in)
            self._inputs[state_in] = np.zeros(spec.shape, dtype=np.float32)
        self._outputs = {}
        wanted = set(self._output_names(card)) | {o for _, o in self._state_pairs}
        for out in session.get_outputs():
            if out.name in wanted:
                shape = [d if isinstance(d, int) else 1 for d in out.shape]
                self._outputs[out.name] = np.zeros(shape, dtype=np.float32)
        self._binding = session.io_binding()
        # On CUDA (and TensorRT, which takes CUDA memory) the inputs get device buffers,
        # filled from the host arrays once per tick; on the CPU the host arrays are bound.
        self._device = {}
        if self.provider in (CUDA, TENSORRT):
            for name, array in self._inputs.items():
                value = ort.OrtValue.ortvalue_from_numpy(array, 'cuda', 0)
                self._binding.bind_ortvalue_input(name, value)
                self._device[name] = value
        else:
            for name, array in self._inputs.items():
                self._binding.bind_cpu_input(name, array)
        # Outputs are written into the host arrays: the one read-back per tick. A CUDA
        # graph (provider option enable_cuda_graph) replays fixed device addresses, so
        # there the outputs get device buffers too, each copied back once after the run.
        self._device_outputs = {}
        for name, array in self._outputs.items():
            if self.cuda_graph:
                value = ort.OrtValue.ortvalue_from_numpy(array, 'cuda', 0)
                self._binding.bind_ortvalue_output(name, value)
                self._device_outputs[name] = value
            else:
                self._binding.bind_output(name, 'cpu', 0, np.float32, list(array.shape),
                                          array.ctypes.data)
        # The first runs also capture the CUDA graph, when there is one.
        for _ in range(max(warmup_runs, 2 if self.cuda_graph else 0)):
            self.run()
        self.reset()

    @property
    def providers(self) -> list:
        """Return the execution providers the session actually uses."""
        return self.session.get_providers()

    @property
    def provider(self) -> str:
        """Return the provider that runs the model (the session's first)."""
        return self.session.get_providers()[0]

    @property
    def device_inputs(self) -> bool:
        """Return True when the inputs are bound to device (CUDA) buffers."""
        return bool(self._device)

    @property
    def cuda_graph(self) -> bool:
        """Return True when the session replays a CUDA graph (enable_cuda_graph)."""
        options = self.session.get_provider_options().get(CUDA, {})
        return self.provider == CUDA and options.get('enable_cuda_graph') in ('1', 'True')

    def run(self) -> np.ndarray:
        """Run on the current input buffers; returns the raw action vector (a view)."""
        for name, value in self._device.items():
            value.update_inplace(self._inputs[name])  # host -> device, once per input
        self.session.run_with_iobinding(self._binding)
        for name, value in self._device_outputs.items():
            np.copyto(self._outputs[name], value.numpy())  # device -> host, once per output
        for state_in, state_out in self._state_pairs:
            np.copyto(self._inputs[state_in], self._outputs[state_out])
        return self._outputs[self.card.action_output].reshape(-1)

    def reset(self) -> None:
        """Zero the recurrent state (activation, episode start, clock jump)."""
        for state_in, _ in self._state_pairs:
            self._inputs[state_in].fill(0.0)

    @property
    def outputs(self) -> dict:
        """Return the output arrays the session writes (action or latents, and states)."""
        return self._outputs

    # What a subclass for another kind of model (the encoder) changes: the check against
    # the card, the outputs to bind and how the model is named in errors.
    def _problems(self, session: ort.InferenceSession, card: PolicyCard, registry) -> list:
        return check_io(session, card, registry)

    def _output_names(self, card: PolicyCard) -> tuple:
        return (card.action_output,)

    def _what(self, card: PolicyCard) -> str:
        return 'model'


def encoder_path(model_path: str | Path, card: PolicyCard) -> Path:
    """Return the encoder model of the card: relative to the actor model's folder."""
    path = Path(card.encoder.model).expanduser()
    return path if path.is_absolute() else Path(model_path).parent / path


def load_encoder(model_path: str | Path, card: PolicyCard,
                 options: RuntimeOptions) -> Optional[ort.InferenceSession]:
    """
    Open the encoder session of an encoder + actor card; None for a one-model card.

    Raises ModelError naming the card field when the file is missing or unusable; the
    encoder's I/O is checked against the card when its EncoderRuntime is made.
    """
    if card.encoder is None:
        return None
    path = encoder_path(model_path, card)
    if not path.is_file():
        raise ModelError(f'encoder.model: {path} not found (the card names '
                         f'{card.encoder.model!r}, relative to the folder of the actor model '
                         f'{model_path})')
    try:
        return open_session(path, options)
    except ModelError as exc:
        raise ModelError(f'encoder.model: {exc}') from None


def load_policy(model_path: str | Path, card_path: Optional[str | Path],
                options: RuntimeOptions):
    """
    Open the model and find its card: an explicit file, the YAML beside it, or embedded.

    Returns (session, card). Raises ModelError or CardError naming the problem. A card
    with an encoder section names a second model: open it with ``load_encoder``.
    """
    session = open_session(model_path, options)
    if card_path:
        return session, load_card(card_path)
    beside = Path(model_path).with_suffix('.yaml')
    if beside.is_file():
        return session, load_card(beside)
    card = embedded_card(session, str(model_path))
    if card is None:
        raise CardError(f'{model_path}: no policy card given, none at {beside}, and none '
                        f'embedded in the model metadata')
    return session, card
