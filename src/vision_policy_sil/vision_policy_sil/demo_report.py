"""
The SIL demo's report: figures from recorded episodes, the text, and the pictures.

Pure functions over ``sil_recorder`` traces (no ROS): ``score_episode`` scores one
episode, ``build_report`` gathers the run, ``format_report`` writes the text a person
reads, ``plot_strip`` and ``write_gif`` draw what a person would rather look at.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .sil_recorder import EpisodeTrace

# The bundled model's card name: seeded random weights, not a trained policy.
EXAMPLE_CARD_NAME = 'reach_arm_example'


@dataclass(frozen=True)
class EpisodeResult:
    """The score of one episode."""

    episode: int
    sim_start: float
    sim_seconds: float
    target: tuple
    final_distance: float
    min_distance: float
    success: bool
    commands: int
    control_rate_hz: float


@dataclass(frozen=True)
class Latency:
    """Image-to-command latency percentiles in ms, and where they come from."""

    p50_ms: Optional[float]
    p99_ms: Optional[float]
    source: str


@dataclass(frozen=True)
class DemoReport:
    """Every figure of one demo run; ``to_dict`` is report.json."""

    model: str
    card_name: str
    untrained: bool
    seed: int
    episodes: int
    episode_seconds: float
    sim_seconds: float
    wall_seconds: float
    real_time_factor_requested: float
    real_time_factor_achieved: float
    control_dt: float
    control_rate_hz: float
    commands: int
    latency: Latency
    latency_recorder: Latency
    inference_ms_p50: Optional[float]
    success_tolerance_m: float
    success_rate: float
    results: tuple
    policy_counters: dict
    image_size: tuple
    files: tuple

    @property
    def expected_rate_hz(self) -> float:
        """Return the rate the card asks for, 1 / control_dt."""
        return 1.0 / self.control_dt

    def to_dict(self) -> dict:
        """Plain data for JSON."""
        data = asdict(self)
        data['results'] = [asdict(r) for r in self.results]
        data['expected_control_rate_hz'] = self.expected_rate_hz
        data['success_label'] = success_label(self.untrained)
        return data


def success_label(untrained: bool) -> str:
    """Say how to read the success rate."""
    if untrained:
        return ('untrained example policy (seeded random weights): a trained model will '
                'replace it')
    return 'trained policy'


def score_episode(trace: EpisodeTrace, tolerance: float) -> EpisodeResult:
    """Score an episode: success when the final end-effector distance is below tolerance."""
    if not trace.tasks:
        raise ValueError(f'episode {trace.episode}: no task state recorded between '
                         f'{trace.start:.3f} s and {trace.end:.3f} s')
    distances = [t.distance for t in trace.tasks]
    duration = trace.end - trace.start
    final = distances[-1]
    return EpisodeResult(
        episode=trace.episode, sim_start=trace.start, sim_seconds=duration,
        target=tuple(round(v, 4) for v in trace.tasks[-1].target),
        final_distance=final, min_distance=min(distances), success=final < tolerance,
        commands=len(trace.commands),
        control_rate_hz=len(trace.commands) / duration if duration > 0 else 0.0)


def percentiles_ms(values_s: Sequence[float]) -> tuple:
    """Return (p50, p99) in ms of values in seconds, or (None, None) when empty."""
    if not len(values_s):
        return None, None
    p50, p99 = np.percentile(np.asarray(values_s, dtype=float) * 1e3, (50, 99))
    return float(p50), float(p99)


def float_or_none(values: dict, key: str) -> Optional[float]:
    """Read a diagnostics value as float; None when absent or not a number."""
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def build_report(traces: Sequence[EpisodeTrace], *, model: str, card_name: str,
                 control_dt: float, seed: int, episode_seconds: float, wall_seconds: float,
                 real_time_factor: float, tolerance: float, policy_values: dict,
                 image_size: tuple, files: Sequence[str]) -> DemoReport:
    """Gather the figures of a run from its episode traces and the policy's diagnostics."""
    results = tuple(score_episode(t, tolerance) for t in traces)
    sim_seconds = sum(r.sim_seconds for r in results)
    commands = sum(r.commands for r in results)
    recorder = [c.latency_wall for t in traces for c in t.commands
                if c.latency_wall is not None]
    p50, p99 = percentiles_ms(recorder)
    counters = {k: int(v) for k, v in policy_values.items()
                if k in ('ticks', 'commands', 'holds', 'images_received', 'images_rejected',
                         'images_unused', 'joint_states_rejected', 'clock_jumps')
                and v.isdigit()}
    return DemoReport(
        model=model, card_name=card_name, untrained=card_name == EXAMPLE_CARD_NAME,
        seed=seed, episodes=len(results), episode_seconds=episode_seconds,
        sim_seconds=sim_seconds, wall_seconds=wall_seconds,
        real_time_factor_requested=real_time_factor,
        real_time_factor_achieved=sim_seconds / wall_seconds if wall_seconds > 0 else 0.0,
        control_dt=control_dt,
        control_rate_hz=commands / sim_seconds if sim_seconds > 0 else 0.0,
        commands=commands,
        latency=Latency(float_or_none(policy_values, 'latency_ms_p50'),
                        float_or_none(policy_values, 'latency_ms_p99'),
                        'policy_inference /diagnostics: node clock (simulation time) at '
                        'publish minus the image stamp'),
        latency_recorder=Latency(p50, p99, 'recorder: wall time from receiving the newest '
                                           'image to receiving the command'),
        inference_ms_p50=float_or_none(policy_values, 'inference_ms_p50'),
        success_tolerance_m=tolerance,
        success_rate=sum(r.success for r in results) / len(results) if results else 0.0,
        results=results, policy_counters=counters, image_size=tuple(image_size),
        files=tuple(files))


def _ms(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.1f} ms'


def format_report(report: DemoReport) -> str:
    """Write the short report a person reads (also report.txt)."""
    r = report
    kind = 'untrained example policy' if r.untrained else 'trained policy'
    asked = ('as fast as possible' if r.real_time_factor_requested <= 0
             else f'{r.real_time_factor_requested:g}')
    lines = [
        f'SIL demo: MuJoCo twin + policy_inference, card {r.card_name!r} ({kind})',
        f'model          {r.model}',
        f'episodes       {r.episodes} x {r.episode_seconds:g} s simulation time (seed {r.seed},'
        f' images {r.image_size[0]}x{r.image_size[1]})',
        f'time           {r.sim_seconds:.2f} s simulated in {r.wall_seconds:.2f} s wall: '
        f'real-time factor {r.real_time_factor_achieved:.2f} (asked {asked})',
        f'control rate   {r.control_rate_hz:.1f} Hz commands per simulated second '
        f'(1/control_dt = {r.expected_rate_hz:.1f} Hz; {r.commands} commands)',
        f'latency        image-to-command p50 {_ms(r.latency.p50_ms)}, p99 '
        f'{_ms(r.latency.p99_ms)} (policy_inference diagnostics, simulation time)',
        f'               recorder-measured p50 {_ms(r.latency_recorder.p50_ms)}, p99 '
        f'{_ms(r.latency_recorder.p99_ms)} (wall, newest image received -> command received)',
        f'inference      p50 {_ms(r.inference_ms_p50)}',
        '',
        'episode  target (m)                  final dist  min dist  commands  rate     success',
    ]
    for e in r.results:
        target = '[' + ', '.join(f'{v:+.3f}' for v in e.target) + ']'
        lines.append(f'{e.episode:<8} {target:<27} {e.final_distance:.3f} m    '
                     f'{e.min_distance:.3f} m  {e.commands:<8}  {e.control_rate_hz:4.1f} Hz  '
                     f'{"yes" if e.success else "no"}')
    n_ok = sum(e.success for e in r.results)
    lines += [
        '',
        f'success rate   {n_ok}/{r.episodes} = {100 * r.success_rate:.0f} % (final end-effector '
        f'distance < {r.success_tolerance_m:g} m)',
        f'               {success_label(r.untrained)}',
    ]
    if r.policy_counters:
        lines.append('policy node    ' + ', '.join(f'{k} {v}'
                                                   for k, v in r.policy_counters.items()))
    lines.append('files          ' + ', '.join(r.files))
    return '\n'.join(lines) + '\n'


def _frames_across(trace: EpisodeTrace, count: int) -> list:
    """Pick up to count frames spread evenly over the episode."""
    if not trace.frames:
        return []
    times = np.linspace(trace.start, trace.end, count)
    stamps = np.array([f.stamp for f in trace.frames])
    picked = []
    for t in times:
        frame = trace.frames[int(np.argmin(np.abs(stamps - t)))]
        if not picked or picked[-1] is not frame:
            picked.append(frame)
    return picked


def _distance_at(trace: EpisodeTrace, t: float) -> Optional[float]:
    if not trace.tasks:
        return None
    times = np.array([s.time for s in trace.tasks])
    return trace.tasks[int(np.argmin(np.abs(times - t)))].distance


def plot_strip(traces: Sequence[EpisodeTrace], results: Sequence[EpisodeResult],
               joint_names: Sequence[str], path: Path, frames_per_episode: int = 6,
               title: str = '', tolerance: Optional[float] = None) -> Path:
    """
    Draw one row per episode: camera frames across it, then its joint positions.

    Measured positions are solid lines, commanded positions dashed steps, one colour per
    joint; the last panel shows the end-effector distance to the target (dotted: the
    success tolerance).
    """
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    rows = max(1, len(traces))
    cols = frames_per_episode + 2
    fig = plt.figure(figsize=(2.0 * frames_per_episode + 8.0, 2.0 * rows + 1.0), dpi=90)
    grid = fig.add_gridspec(rows, cols, width_ratios=[1.0] * frames_per_episode + [2.6, 1.6],
                            wspace=0.12, hspace=0.35)
    colours = ['tab:blue', 'tab:orange', 'tab:green', 'tab:red', 'tab:purple', 'tab:brown']
    for row, (trace, result) in enumerate(zip(traces, results)):
        for col, frame in enumerate(_frames_across(trace, frames_per_episode)):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(frame.image)
            ax.set_xticks([])
            ax.set_yticks([])
            d = _distance_at(trace, frame.stamp)
            ax.set_title(f't={frame.stamp - trace.start:.1f} s'
                         + ('' if d is None else f'  d={d:.2f} m'), fontsize=8)
            if col == 0:
                ax.set_ylabel(f'episode {trace.episode}\n'
                              f'{"success" if result.success else "no success"}', fontsize=9)
        ax = fig.add_subplot(grid[row, frames_per_episode])
        if trace.joints:
            t = np.array([j.stamp for j in trace.joints]) - trace.start
            q = np.array([j.positions for j in trace.joints])
            for i, name in enumerate(joint_names):
                ax.plot(t, q[:, i], color=colours[i % len(colours)], lw=1.4,
                        label=f'{name} measured')
        if trace.commands:
            t = np.array([c.sim_time for c in trace.commands]) - trace.start
            q = np.array([c.positions for c in trace.commands])
            for i, name in enumerate(joint_names):
                ax.step(t, q[:, i], where='post', color=colours[i % len(colours)], lw=1.0,
                        ls='--', label=f'{name} commanded')
        ax.set_xlim(0.0, trace.end - trace.start)
        ax.set_ylabel('rad', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if row == 0:
            ax.set_title('joint positions: measured (solid), commanded (dashed)', fontsize=8)
            handles, labels = ax.get_legend_handles_labels()
            fig.legend(handles, labels, loc='lower center', ncol=6, fontsize=7,
                       frameon=False, bbox_to_anchor=(0.5, -0.02))
        if row == rows - 1:
            ax.set_xlabel('simulation time in episode (s)', fontsize=8)
        ax = fig.add_subplot(grid[row, frames_per_episode + 1])
        top = tolerance or 0.0
        if trace.tasks:
            distance = [s.distance for s in trace.tasks]
            ax.plot([s.time - trace.start for s in trace.tasks], distance, color='black',
                    lw=1.2)
            top = max(top, max(distance))
        if tolerance is not None:
            ax.axhline(tolerance, color='tab:green', lw=0.8, ls=':')
        ax.set_xlim(0.0, trace.end - trace.start)
        ax.set_ylim(0.0, 1.15 * top if top > 0 else 1.0)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if row == 0:
            ax.set_title('end effector to target (m)', fontsize=8)
        if row == rows - 1:
            ax.set_xlabel('simulation time in episode (s)', fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path, bbox_inches='tight')
    plt.close(fig)
    return path


def write_gif(traces: Sequence[EpisodeTrace], path: Path, frame_period: float = 0.2,
              max_frames: int = 120) -> Optional[Path]:
    """Write the recorded frames as an annotated GIF; None when Pillow is missing."""
    try:
        from PIL import Image as PILImage, ImageDraw
    except ImportError:
        return None
    images = []
    for trace in traces:
        next_t = -np.inf
        for frame in trace.frames:
            if frame.stamp < next_t:
                continue
            next_t = frame.stamp + frame_period
            picture = PILImage.fromarray(frame.image)
            draw = ImageDraw.Draw(picture)
            d = _distance_at(trace, frame.stamp)
            text = f'episode {trace.episode}  t={frame.stamp - trace.start:.1f} s'
            if d is not None:
                text += f'  d={d:.3f} m'
            draw.rectangle((0, 0, picture.width, 14), fill=(0, 0, 0))
            draw.text((3, 1), text, fill=(255, 255, 255))
            images.append(picture.convert('P', palette=PILImage.ADAPTIVE))
    if not images:
        return None
    if len(images) > max_frames:
        step = len(images) / max_frames
        images = [images[int(i * step)] for i in range(max_frames)]
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:],
                   duration=int(frame_period * 1000), loop=0)
    return path
