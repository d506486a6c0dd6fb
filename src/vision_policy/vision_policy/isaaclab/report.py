"""The import report: what was translated, how, and what could not be, with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..card import actuator_text


@dataclass(frozen=True)
class TermLine:
    """One observation term as translated (width None when unknown)."""

    group: str
    name: str
    source: str
    width: Optional[int]
    scale: object = None
    clip: object = None
    history: int = 0
    supported: bool = True


@dataclass(frozen=True)
class ActionLine:
    """One action term and its per-joint mapping."""

    name: str
    kind: str
    joints: tuple
    scale: tuple = ()
    offset: tuple = ()
    clip: object = None


@dataclass(frozen=True)
class Problem:
    """Something that cannot be translated, and why."""

    what: str
    reason: str


@dataclass
class ImportReport:
    """Everything the import found; ``problems`` empty means the card is usable."""

    source: str
    terms: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    control_dt: Optional[float] = None
    problems: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    # input name -> (width the card produces, width the ONNX input expects or None)
    widths: dict = field(default_factory=dict)
    # joint -> training actuator fields (stiffness, damping, limits, delay), for the card
    actuators: dict = field(default_factory=dict)

    def problem(self, what: str, reason: str) -> None:
        """Record something untranslatable."""
        self.problems.append(Problem(what, reason))

    @property
    def ok(self) -> bool:
        """Tell whether nothing blocks writing a card."""
        return not self.problems

    def render(self) -> str:
        """Render the report as text for a terminal."""
        lines = [f'Isaac Lab import: {self.source}']
        dt = 'unknown' if self.control_dt is None else f'{self.control_dt:.6g} s'
        lines.append(f'control period (sim.dt x decimation): {dt}')
        lines.append('observation terms, in order (compute -> clip -> scale -> history):')
        group = None
        for t in self.terms:
            if t.group != group:
                group = t.group
                lines.append(f'  group {group}:')
            width = '?' if t.width is None else str(t.width)
            flag = '' if t.supported else '   <-- UNSUPPORTED'
            lines.append(f'    {t.name:<24} width {width:>5}  scale {_short(t.scale)}  '
                         f'clip {_short(t.clip)}  history {t.history}  [{t.source}]{flag}')
        lines.append('actions, in output order:')
        for a in self.actions:
            lines.append(f'  {a.name} ({a.kind}): {len(a.joints)} joint(s)')
            for i, joint in enumerate(a.joints):
                if not a.scale:
                    lines.append(f'    {joint}')
                    continue
                scale = a.scale[i] if a.scale else '?'
                offset = a.offset[i] if a.offset else '?'
                clip = a.clip[i] if a.clip else None
                lines.append(f'    {joint:<28} target = raw x {_short(scale)} + '
                             f'{_short(offset)}' + (f', clip {_short(clip)}' if clip else ''))
        if self.actuators:
            lines.append('training actuators (the robot controller should match them):')
            lines += [f'  {joint:<28} {actuator_text(fields)}'
                      for joint, fields in self.actuators.items()]
        for name, (mine, model) in self.widths.items():
            if model is None or mine is None:
                verdict = 'not checked (' + ('no ONNX' if model is None else
                                             'a term width is unknown') + ')'
            else:
                verdict = 'matches' if mine == model else f'DIFFERS by {mine - model:+d}'
            lines.append(f'input {name!r}: card width {mine}, ONNX width {model}: {verdict}')
        for w in self.warnings:
            lines.append(f'warning: {w}')
        for p in self.problems:
            lines.append(f'cannot translate {p.what}: {p.reason}')
        lines.append('result: ' + ('card can be written' if self.ok else
                                   f'{len(self.problems)} problem(s), no card'))
        return '\n'.join(lines)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f'{value:.6g}'
    if isinstance(value, (list, tuple)):
        if len(value) > 4:
            return f'[{_short(value[0])}, ... x{len(value)}]'
        return '[' + ', '.join(_short(v) for v in value) + ']'
    return str(value)
