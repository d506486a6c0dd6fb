"""
A recording's report: terms against training ranges, holds, image age, tick jitter.

Did any observation leave its training range, how long was the robot held and why, how
old were the images, how regular were the ticks.

``summarise`` streams one vision_policy recording (recording.py) and returns a
``Report``; ``plot`` draws it as one PNG. Per term the range of every element is set
against the card's clip bound (after scale, as the network saw it): a value at the bound
was clipped, so the robot saw something training's clip hid. The card format carries no
training statistics (mean / std), so only the clip bounds are checked.

    vision_policy_report recording.mcap --out out/report
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import json
from pathlib import Path
import sys
from typing import Optional

import numpy as np

from .recording import OUTCOME_COMMAND, RecordingError, term_subtopic
from .replay import McapSource

# A term with more elements than this (an image) is summarised per leading axis (channel).
MAX_ELEMENTS = 16


@dataclass
class TermRange:
    """Range of one observation term over the commanded ticks."""

    key: str
    shape: tuple
    low: np.ndarray                 # per element (or per channel for large terms)
    high: np.ndarray
    bound: Optional[tuple] = None   # (low, high) of the card's clip after scale
    at_bound: int = 0               # ticks with any element at or beyond the bound
    ticks: int = 0

    @property
    def outside(self) -> bool:
        """Return True if some tick reached the clip bound."""
        return self.at_bound > 0


@dataclass
class Report:
    """Figures of one recording."""

    path: str
    card: str
    control_dt: float
    ticks: int = 0
    commands: int = 0
    terms: dict = field(default_factory=dict)          # key -> TermRange
    held_s: dict = field(default_factory=dict)         # hold reason -> seconds
    image_age_s: list = field(default_factory=list)    # per commanded tick
    tick_interval_s: list = field(default_factory=list)  # wall clock between ticks
    stage_s: dict = field(default_factory=dict)        # stage -> per-tick seconds
    commands_series: list = field(default_factory=list)  # (t_s, command)
    holds_series: list = field(default_factory=list)    # (t_s, reason)
    max_image_age: Optional[float] = None

    def jitter_s(self) -> np.ndarray:
        """Return |tick interval - control_dt| per tick (wall clock)."""
        return np.abs(np.asarray(self.tick_interval_s) - self.control_dt)

    def to_dict(self) -> dict:
        """Return the figures as plain JSON-able data."""
        def pct(values) -> dict:
            if not len(values):
                return {}
            p = np.percentile(np.asarray(values) * 1e3, (50, 90, 99, 100))
            return dict(zip(('p50_ms', 'p90_ms', 'p99_ms', 'max_ms'), p.round(4).tolist()))
        return {
            'path': self.path, 'card': self.card, 'control_dt': self.control_dt,
            'ticks': self.ticks, 'commands': self.commands,
            'held_s': {k: round(v, 4) for k, v in self.held_s.items()},
            'terms': {k: {'low': t.low.round(6).tolist(), 'high': t.high.round(6).tolist(),
                          'clip_bound': t.bound, 'ticks_at_bound': t.at_bound,
                          'ticks': t.ticks} for k, t in self.terms.items()},
            'image_age': pct(self.image_age_s), 'tick_jitter': pct(self.jitter_s()),
            'stages': {k: pct(v) for k, v in self.stage_s.items()},
        }

    def text(self) -> str:
        """Return the report as lines a person reads."""
        d = self.to_dict()
        lines = [f'{self.path}: card {self.card!r}, {self.ticks} ticks, {self.commands} '
                 f'commands, control_dt {self.control_dt} s']
        total_held = sum(self.held_s.values())
        lines.append(f'held {total_held:.2f} s of {self.ticks * self.control_dt:.2f} s' +
                     ''.join(f'\n  {s:.2f} s  {r}' for r, s in sorted(
                         self.held_s.items(), key=lambda kv: -kv[1])))
        lines.append('observation terms (range over commanded ticks; clip bound after scale):')
        for key, t in self.terms.items():
            flag = f'AT CLIP BOUND in {t.at_bound} of {t.ticks} ticks' if t.outside else 'ok'
            bound = 'no clip' if t.bound is None else f'bound [{t.bound[0]:g}, {t.bound[1]:g}]'
            lines.append(f'  {key} {list(t.shape)}: min {np.round(t.low, 3).tolist()} max '
                         f'{np.round(t.high, 3).tolist()}; {bound}; {flag}')
        lines.append('  (the card carries no training statistics: only clip bounds checked)')
        for name in ('image_age', 'tick_jitter'):
            if d[name]:
                lines.append(f'{name}: ' + ', '.join(f'{k} {v:.3f}' for k, v in d[name].items()))
        for stage, figures in d['stages'].items():
            if figures:
                lines.append(f'stage {stage}: p50 {figures["p50_ms"]:.3f} ms, p99 '
                             f'{figures["p99_ms"]:.3f} ms')
        return '\n'.join(lines)


def _clip_bound(card, key: str) -> Optional[tuple]:
    group_name, name = key.split('/', 1)
    index = None
    if '#' in name:
        name, index = name.split('#')
    group = card.group(group_name)
    specs = [t for t in group.terms if t.name == name]
    spec = group.terms[int(index)] if index is not None else specs[0]
    if spec.clip is None:
        return None
    scale = np.asarray(spec.scale if spec.scale is not None else 1.0, dtype=np.float64)
    ends = np.concatenate([np.ravel(spec.clip[0] * scale), np.ravel(spec.clip[1] * scale)])
    return float(ends.min()), float(ends.max())


def _reduce(value: np.ndarray, shape: tuple) -> tuple:
    value = value.reshape(shape)
    if value.size > MAX_ELEMENTS and len(shape) > 1:
        flat = value.reshape(shape[0], -1)
        return flat.min(axis=1), flat.max(axis=1)
    return value.reshape(-1), value.reshape(-1)


def summarise(path: str | Path) -> Report:
    """Stream a recording into a Report; RecordingError if it is not one of ours."""
    from rclpy.serialization import deserialize_message
    from .card import card_from_yaml
    from .recording import message_class
    source = McapSource(path)
    try:
        info = source.info
        if info is None:
            raise RecordingError(f'{path}: a plain bag without vision_policy per-tick data; '
                                 f'replay it with vision_policy_replay --model to recompute')
        card = card_from_yaml(info.card_yaml, f'{path} (recorded card)')
        report = Report(str(path), info.card_name, info.control_dt,
                        max_image_age=info.node_parameters.get('max_image_age'))
        terms = {term_subtopic(k): k for k in info.terms}
        for sub, key in terms.items():
            shape = tuple(info.terms[key])
            low, _ = _reduce(np.zeros(shape, dtype=np.float32), shape)
            report.terms[key] = TermRange(key, shape, np.full(low.shape, np.inf),
                                          np.full(low.shape, -np.inf), _clip_bound(card, key))
        image_topic = info.input_topics.get('image')
        prefix = info.tick_prefix + '/'
        classes = {}
        image_stamp = None
        tick = {}
        last_wall = None
        t0 = None
        for topic, log_ns, _, cdr in source.messages():
            if topic == image_topic:
                # Only the header is needed: decode it cheaply from the full message anyway.
                msg = deserialize_message(cdr, message_class(source.topics[topic]))
                image_stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                continue
            if not topic.startswith(prefix):
                continue
            cls = classes.get(topic) or classes.setdefault(
                topic, message_class(source.topics[topic]))
            msg = deserialize_message(cdr, cls)
            sub = topic[len(prefix):]
            if sub != 'outcome':
                tick[sub] = msg
                continue
            t0 = log_ns if t0 is None else t0
            t_s = (log_ns - t0) * 1e-9
            report.ticks += 1
            wall = tick.get('wall_time')
            if wall is not None:
                if last_wall is not None:
                    report.tick_interval_s.append(wall.data - last_wall)
                last_wall = wall.data
            if msg.data != OUTCOME_COMMAND:
                report.held_s[msg.data] = report.held_s.get(msg.data, 0.0) + info.control_dt
                report.holds_series.append((t_s, msg.data))
                tick = {}
                continue
            report.commands += 1
            if image_stamp is not None:
                report.image_age_s.append((log_ns - image_stamp) * 1e-9)
            for sub_topic, key in terms.items():
                t = report.terms[key]
                value = np.asarray(tick[sub_topic].data, dtype=np.float32)
                low, high = _reduce(value, t.shape)
                np.minimum(t.low, low, out=t.low)
                np.maximum(t.high, high, out=t.high)
                t.ticks += 1
                if t.bound is not None and (value.min() <= t.bound[0] or
                                            value.max() >= t.bound[1]):
                    t.at_bound += 1
            for name, msg_ in tick.items():
                if name.startswith('timing/'):
                    report.stage_s.setdefault(name[7:], []).append(msg_.data)
            report.commands_series.append((t_s, np.asarray(tick['command'].data)))
            tick = {}
        return report
    finally:
        source.close()


def plot(report: Report, png: str | Path) -> Path:
    """Draw the report: terms against clip bounds, holds, image age, jitter, commands."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 9), constrained_layout=True)
    grid = fig.add_gridspec(2, 3)
    fig.suptitle(f'{Path(report.path).name}: card {report.card!r}, {report.ticks} ticks, '
                 f'{report.commands} commands')

    ax = fig.add_subplot(grid[0, 0])
    labels, y = [], 0
    for key, t in report.terms.items():
        span = (max(abs(t.bound[0]), abs(t.bound[1])) if t.bound is not None else
                max(float(np.max(np.abs(np.concatenate([t.low, t.high])))), 1e-9))
        for i in range(len(t.low)):
            low, high = t.low[i] / span, t.high[i] / span
            hit = t.bound is not None and (t.low[i] <= t.bound[0] or t.high[i] >= t.bound[1])
            ax.plot([low, high], [y, y], lw=5, color='tab:red' if hit else 'tab:blue')
            labels.append(f'{key}[{i}]' + ('' if t.bound is not None else ' (no clip)'))
            y += 1
    ax.axvline(-1, color='k', ls='--', lw=0.8)
    ax.axvline(1, color='k', ls='--', lw=0.8)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel('range / clip bound (dashed: training clip; red: reached it)')
    ax.set_title('observation terms')

    ax = fig.add_subplot(grid[0, 1:])
    if report.commands_series:
        t = np.array([s[0] for s in report.commands_series])
        cmd = np.stack([s[1] for s in report.commands_series])
        for j in range(cmd.shape[1]):
            ax.plot(t, cmd[:, j], '.', ms=2, label=f'joint {j}')
    for t_s, _ in report.holds_series:
        ax.axvspan(t_s, t_s + report.control_dt, color='tab:orange', alpha=0.3, lw=0)
    ax.set_xlabel('s since the first tick')
    ax.set_ylabel('command (rad)')
    ax.set_title('commands (orange: held)')
    ax.legend(loc='upper right', fontsize=7)

    ax = fig.add_subplot(grid[1, 0])
    if report.held_s:
        reasons = sorted(report.held_s, key=report.held_s.get)
        ax.barh(reasons, [report.held_s[r] for r in reasons], color='tab:orange')
    ax.set_xlabel('s held')
    ax.set_title(f'time held: {sum(report.held_s.values()):.2f} s of '
                 f'{report.ticks * report.control_dt:.2f} s')

    ax = fig.add_subplot(grid[1, 1])
    if report.image_age_s:
        ax.hist(np.asarray(report.image_age_s) * 1e3, bins=40, color='tab:green')
        if report.max_image_age:
            ax.axvline(report.max_image_age * 1e3, color='k', ls='--',
                       label='max_image_age')
            ax.legend(fontsize=7)
        p99 = np.percentile(report.image_age_s, 99) * 1e3
        ax.set_title(f'image age at the tick (p99 {p99:.1f} ms)')
    ax.set_xlabel('ms')

    ax = fig.add_subplot(grid[1, 2])
    jitter = report.jitter_s() * 1e3
    if jitter.size:
        ax.hist(jitter, bins=40, color='tab:purple')
        ax.set_title(f'tick jitter |interval - control_dt| (p99 '
                     f'{np.percentile(jitter, 99):.2f} ms)')
    ax.set_xlabel('ms (wall clock)')
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point: report.txt, report.json and <recording>.png."""
    parser = argparse.ArgumentParser(prog='vision_policy_report', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('recordings', nargs='+', help='vision_policy .mcap recordings')
    parser.add_argument('--out', default='.', help='folder for the report files')
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    status = 0
    for path in args.recordings:
        try:
            report = summarise(path)
        except (RecordingError, ValueError, OSError) as exc:
            print(f'vision_policy_report: error: {exc}', file=sys.stderr)
            status = 2
            continue
        stem = Path(path).stem
        text = report.text()
        print(text)
        (out / f'{stem}.txt').write_text(text + '\n')
        (out / f'{stem}.json').write_text(json.dumps(report.to_dict(), indent=1))
        print(f'wrote {plot(report, out / f"{stem}.png")}')
    return status


if __name__ == '__main__':
    sys.exit(main())
