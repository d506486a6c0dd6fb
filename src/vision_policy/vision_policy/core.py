"""
The pure inference core: latest sensor data in, a safe joint command out. No ROS types.

``PolicyCore`` is the node's one interface for a tick: the node hands it each new camera
frame once (``set_image``: checked and preprocessed once per frame), the values of the
other sources (``set_extras``), and per tick the joint samples (``step``). The node, the
tests, replay and training drive the same core, so a test can recompute exactly what the
node published from the same inputs.

``set_image`` is ``preprocess`` then ``set_frame``: the node preprocesses on a worker
thread (``preprocess`` changes no core state) and installs the frame under its lock, so a
control tick never waits for a resize. Every other call comes from one thread at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
import time
from typing import Mapping, Optional, Sequence

import numpy as np

from .action import ActionMapper, SafetyFilter, SafetyLimits
from .camera import CameraInfoError, CameraSetup, FrameSizeError, Intrinsics, setup_camera
from .card import PolicyCard
from .encoder import FrameEncoder
from .image import ImagePipeline
from .observation import ExtraSourceError, ObservationBuilder, Sample, TermError
from .registry import load_registry, Registry
from .runtime import ModelError, PolicyRuntime
from .sources import InputError

__all__ = ['Frame', 'InputError', 'JointMap', 'NonFiniteError', 'PolicyCore', 'STAGES',
           'TickRecord']

# The node's per-tick stages, in order; the core times the middle four.
STAGES = ('receive', 'preprocess', 'observation', 'inference', 'postprocess', 'publish')


class NonFiniteError(ValueError):
    """The observation or the action contains NaN/Inf; the robot is held."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where  # 'observation' | 'action'


@dataclass(frozen=True)
class TickRecord:
    """What the last successful tick computed; the arrays are reused by the next tick."""

    terms: Mapping[str, np.ndarray]   # 'group/term' -> value after clip and scale
    inputs: Mapping[str, np.ndarray]  # model input name -> the array fed to onnxruntime
    raw: np.ndarray                   # network output
    targets: np.ndarray               # after the action mapping, before the safety filter
    command: np.ndarray               # after the safety filter: what is published


@dataclass(frozen=True)
class Frame:
    """A camera frame through its camera's pipeline, to be installed with ``set_frame``."""

    camera: str               # the card's camera name ('' for a card's one camera)
    image: np.ndarray         # the pipeline's output buffer (copied when installed)
    pipeline: ImagePipeline   # what made it: a pipeline replaced since (camera_info) voids it
    seconds: float            # preprocessing time


class _Camera:
    """One camera of the card: its pipeline, real camera setup and installed frame."""

    def __init__(self, spec):
        self.spec = spec
        self.pipeline = ImagePipeline(spec)
        self.setup: Optional[CameraSetup] = None   # the real camera (update_camera)
        self.image = np.zeros_like(self.pipeline.out)  # what the ticks read
        self.has_frame = False


class JointMap:
    """Picks the card's joints, by name, out of a /joint_states message."""

    def __init__(self, card_names: Sequence[str], robot_names: Optional[Sequence[str]] = None,
                 needs_velocity: bool = True):
        robot_names = list(robot_names or card_names)
        if len(robot_names) != len(card_names):
            raise ValueError(f'robot_joint_names: expected {len(card_names)} names (one per '
                             f'card joint {list(card_names)}), found {len(robot_names)}')
        self.robot_names = robot_names
        self.needs_velocity = needs_velocity
        self._names_seen: Optional[list] = None
        self._index = np.zeros(len(robot_names), dtype=np.intp)

    def _resolve(self, names: Sequence[str]) -> None:
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if list(names).count(n) > 1})
            raise InputError(f'joint_states lists joint(s) {dup} more than once')
        lookup = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.robot_names if n not in lookup]
        if missing:
            raise InputError(f'joint_states lacks required joint(s) {missing}')
        self._index[:] = [lookup[n] for n in self.robot_names]
        self._names_seen = list(names)

    def extract(self, names: Sequence[str], position: Sequence[float],
                velocity: Sequence[float], pos_out: np.ndarray, vel_out: np.ndarray) -> None:
        """Fill pos_out/vel_out in card order; InputError if the message is unusable."""
        if len(position) != len(names):
            raise InputError(f'joint_states has {len(names)} names but {len(position)} '
                             f'positions')
        if len(velocity) not in (0, len(names)):
            raise InputError(f'joint_states has {len(names)} names but {len(velocity)} '
                             f'velocities')
        if self.needs_velocity and len(velocity) == 0:
            raise InputError('joint_states has no velocities but the policy observes them')
        if names != self._names_seen:
            self._resolve(names)
        np.take(np.asarray(position, dtype=np.float64), self._index, out=pos_out)
        if len(velocity):
            np.take(np.asarray(velocity, dtype=np.float64), self._index, out=vel_out)
        else:
            vel_out.fill(0.0)
        if not (np.all(np.isfinite(pos_out)) and np.all(np.isfinite(vel_out))):
            raise InputError('joint_states contains NaN/Inf for a required joint')


class PolicyCore:
    """Observation -> onnxruntime -> action mapping -> safety filter, one tick at a time."""

    def __init__(self, card: PolicyCard, runtime_factory, limits: SafetyLimits,
                 registry: Optional[Registry] = None, encoder_factory=None):
        """
        Build the core; ``runtime_factory(inputs)`` makes the actor's PolicyRuntime.

        A card with an ``encoder`` section also needs ``encoder_factory(inputs)``, which
        makes the encoder's runtime (encoder.EncoderRuntime) over its input arrays.
        """
        self.card = card
        self.cameras = {spec.name: _Camera(spec) for spec in card.images}
        # The terms (built in and plugins) come from the registry the operator chose.
        registry = registry if registry is not None else load_registry()
        self._builder = ObservationBuilder(card, registry)
        self.encoder: Optional[FrameEncoder] = None
        inputs = self._builder.inputs
        if card.encoder is not None:
            if encoder_factory is None:
                raise ModelError(f'the card has an encoder ({card.encoder.model!r}) but '
                                 f'PolicyCore was given no encoder_factory to run it')
            self.encoder = FrameEncoder(card, encoder_factory, registry)
            # The actor reads the latents in place: a frame's run is seen by the next tick.
            inputs = {**inputs, **self.encoder.latents}
        # Set once a tick since the reset has put its joint sample in; until then a frame
        # would be encoded with the joints of before the reset (zeros at start).
        self._stepped = False
        self.runtime: PolicyRuntime = runtime_factory(inputs)
        self._mapper = ActionMapper(card, registry)
        self._safety = SafetyFilter(limits)
        self.limits = limits
        self.needs: frozenset = self._builder.needs | (
            self.encoder.needs if self.encoder is not None else frozenset())
        self.action_joint_names = tuple(card.action.joint_names)
        # Joints whose target is a velocity (JointVelocityAction), not a position.
        self.velocity_joints: tuple = self._mapper.velocity_joints
        n = len(card.joint_names)
        # The network output's width: zero-width action terms take no slice of it.
        width = getattr(self._mapper, 'width', len(card.action.joint_names))
        self._sample = Sample(joint_pos=np.zeros(n, dtype=np.float32),
                              joint_vel=np.zeros(n, dtype=np.float32),
                              last_action=np.zeros(width, dtype=np.float32))
        self._sample.images.update({name: c.image for name, c in self.cameras.items()})
        # The action joints inside the card's joint order.
        self._action_index = np.array([card.joint_names.index(j)
                                       for j in card.action.joint_names], dtype=np.intp)
        self._held = np.zeros(len(self._action_index), dtype=np.float64)
        self._raw = np.zeros(width, dtype=np.float32)
        # An image from uint8 or a depth image with NaN/inf already zeroed cannot hold NaN:
        # only inputs fed by other terms are checked each tick.
        self._checked = [(s.name, self._builder.inputs[s.name]) for s in card.inputs
                         if s.group is not None and
                         any(t.name != 'image' for t in card.group(s.group).terms)]
        if self.encoder is not None:
            # A NaN latent (a NaN in the encoder's inputs or state) holds the robot.
            self._checked += list(self.encoder.latents.items())
        self.timing = dict.fromkeys(STAGES[1:5], 0.0)
        if self.encoder is not None:
            self.timing['encoder'] = 0.0  # the last encoder run (per frame, not per tick)
        self.tick = TickRecord(terms=self._builder.term_values, inputs=inputs,
                               raw=self._raw, targets=self._mapper.targets,
                               command=self._safety.command)

    @property
    def providers(self) -> list:
        """Return the onnxruntime execution providers in use."""
        return self.runtime.providers

    @property
    def camera(self) -> Optional[CameraSetup]:
        """Return the first camera's real-camera setup (None: no camera_info taken yet)."""
        return next(iter(self.cameras.values())).setup if self.cameras else None

    def check_image(self, encoding: str, width: int, height: int, camera: str = '') -> None:
        """Raise ImageError if a frame of this encoding and size cannot feed the camera."""
        cam = self.cameras[camera]
        setup = cam.setup
        if setup is not None and (width, height) != (setup.real.width, setup.real.height):
            raise FrameSizeError(f'image is {width}x{height} but camera_info says '
                                 f'{setup.real.width}x{setup.real.height}')
        cam.pipeline.check_source(encoding, width, height)

    def update_camera(self, real: Intrinsics, fov_matching: bool,
                      warnings: tuple = (), camera: str = '') -> Optional[CameraSetup]:
        """
        Take the real camera (camera.camera_from_info) and set the image pipeline up for it.

        The pipeline crops to the training field of view and converts depth as the card
        says. Returns the setup the first time, None for the same camera after.

        Raises CameraInfoError when a later camera differs from the first (the crop and the
        depth rays were computed for it) and camera.FovError/CameraError when the camera
        cannot give the training view; the pipeline is then left as it was.
        """
        cam = self.cameras[camera]
        if cam.setup is not None:
            if cam.setup.real.same_as(real):
                return None
            raise CameraInfoError(f'camera_info changed while configured: was '
                                  f'{cam.setup.real.text()}, now {real.text()}; the crop and '
                                  f'depth conversion were computed for the first; reconfigure '
                                  f'the node to accept the new calibration')
        setup = setup_camera(cam.spec, real, fov_matching, warnings)
        pipeline = ImagePipeline(replace(cam.spec, crop=setup.crop))
        pipeline.depth_scale = setup.depth_scale
        pipeline.undistort = setup.undistortion
        # Frames preprocessed for another crop must not feed the policy.
        cam.pipeline, cam.has_frame = pipeline, False
        cam.setup = setup
        return setup

    def preprocess(self, view: np.ndarray, encoding: str, camera: str = '') -> Frame:
        """
        Check a new frame and run it through its camera's pipeline; no core state changes.

        Raises ImageError when the frame cannot be used. Call it from one thread at a time
        (the pipeline's buffers are reused).
        """
        t0 = time.perf_counter()
        cam = self.cameras[camera]
        pipeline = cam.pipeline
        if cam.setup is not None:
            self.check_image(encoding, view.shape[1], view.shape[0], camera)
        image = pipeline.process(view, encoding)
        return Frame(camera, image, pipeline, time.perf_counter() - t0)

    def set_frame(self, frame: Frame) -> bool:
        """Install a preprocessed frame for the next ticks; False if its pipeline was replaced."""
        cam = self.cameras[frame.camera]
        if frame.pipeline is not cam.pipeline:
            return False  # preprocessed before camera_info changed the crop
        np.copyto(cam.image, frame.image)
        cam.has_frame = True
        self.timing['preprocess'] = frame.seconds
        if self._stepped and frame.camera in self.encoder_cameras:
            try:
                self._encode()
            except (TermError, ExtraSourceError):
                pass  # not ready now: the next tick retries on this frame and holds with why
        return True

    @property
    def encoder_cameras(self) -> frozenset:
        """Return the cameras whose new frames run the encoder (none without an encoder)."""
        return self.encoder.cameras if self.encoder is not None else frozenset()

    def _encode(self) -> bool:
        """Run the encoder on the installed frames; False while one of its cameras has none."""
        if not all(self.cameras[name].has_frame for name in self.encoder.cameras):
            return False
        self.encoder.run(self._sample)
        self.timing['encoder'] = self.encoder.seconds
        return True

    def set_image(self, view: np.ndarray, encoding: str, camera: str = '') -> None:
        """
        Check and preprocess a new camera frame once; the following ticks use it.

        Raises ImageError (and keeps the previous frame) when the frame cannot be used.
        """
        self.set_frame(self.preprocess(view, encoding, camera))

    def set_extras(self, values: Mapping[str, np.ndarray]) -> None:
        """Hand the core the values of a source (``Source.read``) for the next ticks."""
        self._sample.extras.update(values)

    def step(self, joint_pos: np.ndarray, joint_vel: np.ndarray) -> np.ndarray:
        """
        One control tick; returns the filtered command for the action joints.

        Raises NonFiniteError instead of returning a command from bad numbers, and
        InputError when the card needs an image and none was set yet. With an encoder, the
        first tick after a reset runs it on the latest frame (later frames run it when
        installed); its TermError or ExtraSourceError is raised here.
        """
        if 'image' in self.needs:
            missing = [name for name, c in self.cameras.items() if not c.has_frame]
            if missing:
                raise InputError(f'no frame yet from camera(s) {missing}')
        sample = self._sample
        sample.joint_pos[:] = joint_pos
        sample.joint_vel[:] = joint_vel
        self._stepped = True
        # The first tick after a reset encodes the latest frame itself (with its joints):
        # the actor never runs on a latent of before the reset; later frames run it.
        if self.encoder is not None and not self.encoder.ready and not self._encode():
            missing = [n for n in sorted(self.encoder.cameras) if not self.cameras[n].has_frame]
            raise InputError(f'no encoder output yet: no frame from camera(s) {missing}')
        t0 = time.perf_counter()
        self._builder.build(sample)
        for name, array in self._checked:
            if not np.all(np.isfinite(array)):
                raise NonFiniteError('observation',
                                     f'observation input {name!r} contains NaN/Inf')
        t1 = time.perf_counter()
        raw = self.runtime.run()
        t2 = time.perf_counter()
        if not np.all(np.isfinite(raw)):
            raise NonFiniteError('action', 'policy output contains NaN/Inf')
        self._raw[:] = raw
        sample.last_action[:] = raw
        if not self._safety.has_reference:
            self._safety.set_reference(np.take(joint_pos, self._action_index))
        command = self._safety.apply(self._mapper.map(raw, joint_pos))
        if command is None:
            raise NonFiniteError('action', 'mapped action contains NaN/Inf')
        self.timing['observation'] = t1 - t0
        self.timing['inference'] = t2 - t1
        self.timing['postprocess'] = time.perf_counter() - t2
        return command

    def hold_command(self, joint_pos: np.ndarray) -> np.ndarray:
        """Return the measured positions of the action joints, clipped to the limits."""
        np.take(joint_pos, self._action_index, out=self._held)
        return np.clip(self._held, self._safety.lower, self._safety.upper, out=self._held)

    def set_limits(self, limits: SafetyLimits) -> None:
        """Enforce new safety limits from the next tick on."""
        self._safety.set_limits(limits)
        self.limits = limits

    def reset(self) -> None:
        """Episode start: clear history, last action, recurrent state and the step reference."""
        self._builder.reset()
        self.runtime.reset()
        self._mapper.reset()
        self._sample.last_action.fill(0.0)
        self._safety.has_reference = False
        if self.encoder is not None:
            self.encoder.reset()  # its recurrent state and latents go with the policy's
        self._stepped = False
