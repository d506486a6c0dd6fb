"""
Encoder + actor policies: a second model runs on each new camera frame, the actor per tick.

The extreme-parkour family on Isaac Lab exports two ONNX files: a depth encoder with its
own recurrent state (a GRU) that runs at the camera rate, and an actor that runs at the
control rate on the encoder's latest latent. The card's ``encoder`` section names the
encoder model, its inputs (observation groups and recurrent states, InputSpec syntax)
and the outputs the actor reads (actor inputs with ``encoder: <output>``).

``FrameEncoder`` builds the encoder's observation groups from the sample of the moment a
frame is installed (that frame, the latest joint sample, the last action), runs the
encoder once, and copies its outputs into the latent arrays the actor's runtime reads
in place. No ROS types.
"""

from __future__ import annotations

from dataclasses import replace
import time
from typing import Callable, Optional

import numpy as np
import onnxruntime as ort

from .card import CardError, PolicyCard
from .observation import ObservationBuilder, Sample
from .registry import Registry
from .runtime import check_encoder_io, ModelError, PolicyRuntime

__all__ = ['encoder_view', 'EncoderRuntime', 'FrameEncoder']


def encoder_view(card: PolicyCard) -> PolicyCard:
    """
    Return the card as the encoder sees it: its inputs, groups and recurrent state.

    ``action_output`` becomes the encoder's first output, so that PolicyRuntime.run
    returns that latent (flat); nothing else in the view is the encoder's.
    """
    enc = card.encoder
    used = {s.group for s in enc.inputs if s.group}
    return replace(card, inputs=enc.inputs, recurrent=enc.recurrent,
                   groups=tuple(g for g in card.groups if g.name in used),
                   action_output=enc.outputs[0])


class EncoderRuntime(PolicyRuntime):
    """The encoder's session: PolicyRuntime's binding, checked against the encoder section."""

    def __init__(self, session: ort.InferenceSession, card: PolicyCard, inputs: dict,
                 warmup_runs: int = 3):
        # The check needs the whole card: the latents' sizes are the actor inputs'.
        self._whole_card = card
        super().__init__(session, encoder_view(card), inputs, warmup_runs)

    def _problems(self, session: ort.InferenceSession, card: PolicyCard, registry) -> list:
        return check_encoder_io(session, self._whole_card)

    def _output_names(self, card: PolicyCard) -> tuple:
        return tuple(card.encoder.outputs)

    def _what(self, card: PolicyCard) -> str:
        return f'encoder model {card.encoder.model!r}'


class FrameEncoder:
    """
    Runs the encoder once per camera frame and keeps its latest latents for the actor.

    ``runtime_factory(inputs)`` makes the EncoderRuntime over the encoder's input arrays
    (as PolicyCore's runtime_factory makes the actor's). ``latents`` maps each actor input
    fed by the encoder to its array; the actor's runtime binds these arrays, so a run is
    seen by the next tick without a copy there. ``ready`` is False from a reset until the
    first run: the actor must not run on a latent of another episode (or of zeros).
    """

    def __init__(self, card: PolicyCard, runtime_factory: Callable[[dict], PolicyRuntime],
                 registry: Optional[Registry] = None):
        view = encoder_view(card)
        self._builder = ObservationBuilder(view, registry)
        # What the encoder's terms read (the camera, joint velocities, sources).
        self.needs: frozenset = self._builder.needs
        if 'image' not in self.needs:
            raise CardError(f'encoder.inputs: the groups {view.group_names} read no camera '
                            f'image; an encoder runs once per camera frame')
        # The cameras whose frames run it: those its image terms name (a term of a plugin
        # that reads the camera: every camera).
        named = {t.params.get('camera', '') for g in view.groups for t in g.terms
                 if t.name == 'image'}
        self.cameras = frozenset(named or (s.name for s in card.images))
        self.runtime = runtime_factory(self._builder.inputs)
        self.term_values = self._builder.term_values
        self.latents = {}
        self._copies = []
        for spec in card.inputs:
            if spec.encoder is None:
                continue
            latent = np.zeros(spec.shape, dtype=np.float32)
            out = self.runtime.outputs[spec.encoder]
            if out.size != latent.size:
                raise ModelError(f'encoder output {spec.encoder!r} gives {out.size} values '
                                 f'(shape {list(out.shape)}), actor input {spec.name!r} takes '
                                 f'{latent.size} (shape {list(spec.shape)})')
            self.latents[spec.name] = latent
            self._copies.append((latent.reshape(-1), out.reshape(-1)))
        self.ready = False
        self.seconds = 0.0  # duration of the last run
        self.runs = 0

    def run(self, sample: Sample) -> None:
        """Build the encoder's groups from sample, run it once, install the latents."""
        t0 = time.perf_counter()
        self.ready = False  # a term that fails leaves no half-made latent behind
        self._builder.build(sample)
        self.runtime.run()  # carries the recurrent state to the next frame
        for latent, out in self._copies:
            np.copyto(latent, out)
        self.ready = True
        self.runs += 1
        self.seconds = time.perf_counter() - t0

    def reset(self) -> None:
        """Episode start: zero the recurrent state and history; no latent until a run."""
        self._builder.reset()
        self.runtime.reset()
        for latent in self.latents.values():
            latent.fill(0.0)
        self.ready = False
