"""
Rehearse in the MuJoCo twin what a real robot does to a policy, and find the margin.

Runs a policy (the bundled one by default) through the pure ``PolicyCore`` in the twin,
in-process (no ROS: fast and seeded), over a sweep of one perturbation at a time:

* ``latency_ms``: extra camera latency (a frame reaches the policy this much later);
* ``drop``: the fraction of camera frames lost (seeded per episode);
* ``pose``: camera pose offset, ``k`` cm along a fixed direction and ``k`` degrees about
  each camera axis (a bumped or re-mounted camera);
* ``light``: every light's intensity times this factor;
* ``joint_noise``: Gaussian noise (rad, standard deviation) on each measured position.

Everything else follows the SIL demo's twin: 640x480 frames at 30 Hz, joint states at
100 Hz, the latest of each at every tick, each command reached linearly from the
measured positions over control_dt (the twin's JointTrajectory handling), the node's
default safety limits. Episode ``e`` of every cell has the same target (the twin's
target stream restarted at seed + e) and starts with a reset core, so cells compare
like for like. Success: final end-effector distance below the tolerance (5 cm).

    python3 -m vision_policy_sil.rehearsal --episodes 50 --workers 8 --out out/rehearsal
"""
from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path
import sys
import time
from typing import Optional

import numpy as np

# The sweep: factor -> values; the first value of each is the nominal (no perturbation).
SWEEP = {
    'latency_ms': (0.0, 50.0, 100.0, 150.0, 200.0),
    'drop': (0.0, 0.1, 0.25, 0.5),
    'pose': (0.0, 0.5, 1.0, 2.0, 3.0, 5.0),
    'light': (1.0, 0.5, 0.75, 1.5),
    'joint_noise': (0.0, 0.005, 0.01, 0.02, 0.05),
}
UNITS = {'latency_ms': 'ms extra camera latency', 'drop': 'fraction of frames dropped',
         'pose': 'cm and degrees camera pose offset', 'light': 'x light intensity',
         'joint_noise': 'rad std joint position noise'}
POSE_DIRECTION = np.array([1.0, -1.0, 1.0]) / math.sqrt(3.0)


@dataclass(frozen=True)
class Perturbation:
    """What the robot does to the policy in one cell of the sweep."""

    latency_ms: float = 0.0
    drop: float = 0.0
    pose: float = 0.0
    light: float = 1.0
    joint_noise: float = 0.0

    def validate(self) -> None:
        """Raise ValueError naming the field when a value is unusable."""
        if not 0.0 <= self.latency_ms <= 2000.0:
            raise ValueError(f'latency_ms: {self.latency_ms}, expected 0..2000')
        if not 0.0 <= self.drop < 1.0:
            raise ValueError(f'drop: {self.drop}, expected 0 <= drop < 1')
        if not (self.light >= 0.0 and self.joint_noise >= 0.0 and math.isfinite(self.pose)):
            raise ValueError(f'light {self.light}, joint_noise {self.joint_noise}, pose '
                             f'{self.pose}: expected light >= 0, joint_noise >= 0, finite pose')


# A moderate amount of everything at once: the 'combined' cell.
COMBINED = Perturbation(latency_ms=100.0, drop=0.1, pose=0.5, light=0.75, joint_noise=0.01)


@dataclass(frozen=True)
class Setup:
    """The fixed part of a rehearsal: policy, episodes, twin timing."""

    model_path: str
    episodes: int = 50
    seed: int = 0
    episode_s: float = 5.0
    tolerance: float = 0.05
    physics_dt: float = 0.002
    camera_rate: float = 30.0
    joint_state_rate: float = 100.0
    width: int = 640
    height: int = 480
    max_joint_step: float = 0.1


class CameraLink:
    """
    The camera's path to the node: frames lost or late.

    Each frame is lost with probability ``drop`` or arrives ``latency`` s after capture;
    the node holds the newest frame that has arrived.
    """

    def __init__(self, latency: float, drop: float, rng: np.random.Generator):
        self.latency, self.drop, self.rng = latency, drop, rng
        self._in_flight = []  # (arrival time, frame), oldest first

    def send(self, now: float, capture) -> bool:
        """Decide the fate of the frame captured now; capture() renders it only if kept."""
        if self.rng.random() < self.drop:
            return False
        self._in_flight.append((now + self.latency, capture()))
        return True

    def receive(self, now: float):
        """Return the newest frame arrived by now and not yet received, else None."""
        newest = None
        while self._in_flight and self._in_flight[0][0] <= now + 1e-9:
            newest = self._in_flight.pop(0)[1]
        return newest


def make_core(model_path: str):
    """Build PolicyCore as policy_inference does by default (card beside the model, CPU)."""
    from vision_policy.action import SafetyLimits
    from vision_policy.core import PolicyCore
    from vision_policy.runtime import load_policy, PolicyRuntime, RuntimeOptions
    session, card = load_policy(model_path, None, RuntimeOptions(('CPUExecutionProvider',)))
    limits = SafetyLimits.from_card(card, [-math.inf], [math.inf], [0.1])
    return PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs), limits)


def run_cell(setup: Setup, perturbation: Perturbation) -> dict:
    """Run setup.episodes seeded episodes under one perturbation; return the cell's figures."""
    from mujoco_twin.sim import ReachArmSim, SimConfig

    perturbation.validate()
    core = make_core(setup.model_path)
    card = core.card
    steps_per_tick = round(card.control_dt / setup.physics_dt)
    ticks = round(setup.episode_s / card.control_dt)
    sim = ReachArmSim(SimConfig(timestep=setup.physics_dt, image_width=setup.width,
                                image_height=setup.height), seed=setup.seed)
    sim.set_camera_offset(POSE_DIRECTION * perturbation.pose / 100.0,
                          (perturbation.pose,) * 3)
    sim.set_lighting(perturbation.light)
    latency = perturbation.latency_ms / 1000.0
    finals = []
    t0 = time.monotonic()
    for episode in range(setup.episodes):
        rng = np.random.default_rng([setup.seed, episode])
        sim.reset(seed=setup.seed + episode)
        core.reset()
        link = CameraLink(latency, perturbation.drop, rng)
        have_frame = False
        next_image = next_state = sim.time
        q = qd = None
        command = None        # (start, begin, end) of the linear command in progress
        for step in range(ticks * steps_per_tick):
            now = sim.time
            if now >= next_state - setup.physics_dt / 2:
                q = sim.joint_positions + rng.normal(0.0, perturbation.joint_noise, 3) \
                    if perturbation.joint_noise else sim.joint_positions
                qd = sim.joint_velocities
                next_state += 1.0 / setup.joint_state_rate
            if now >= next_image - setup.physics_dt / 2:
                next_image += 1.0 / setup.camera_rate
                link.send(now, sim.render)
            frame = link.receive(now)
            if frame is not None:
                core.set_image(frame, 'rgb8')
                have_frame = True
            if step % steps_per_tick == 0 and have_frame:
                end = core.step(q, qd).copy()
                command = (now, sim.joint_positions, end)
            if command is not None:
                start, begin, end = command
                s = min(max((now - start) / card.control_dt, 0.0), 1.0)
                sim.set_position_targets(begin + (end - begin) * s)
            sim.step(1)
        finals.append(sim.ee_distance)
    sim.close()
    finals = np.array(finals)
    return {'perturbation': asdict(perturbation), 'episodes': setup.episodes,
            'success': float(np.mean(finals < setup.tolerance)),
            'median_final_distance': float(np.median(finals)),
            'final_distances': finals.round(5).tolist(), 'wall_s': time.monotonic() - t0}


def cells(sweep: dict = SWEEP, combined: bool = True) -> list:
    """
    Return (factor, value, Perturbation) per cell: the nominal once, then one at a time.

    With ``combined``, a last cell applies a moderate amount of every factor at once
    (COMBINED), as a real robot does.
    """
    nominal = Perturbation()
    out = [('nominal', None, nominal)]
    for factor, values in sweep.items():
        for value in values[1:]:
            out.append((factor, value, Perturbation(**{**asdict(nominal), factor: value})))
    if combined:
        out.append(('combined', ', '.join(f'{k} {v:g}' for k, v in asdict(COMBINED).items()),
                    COMBINED))
    return out


def table(results: list) -> str:
    """Return the success table as Markdown."""
    lines = ['| factor | value | success | median final distance (m) |',
             '|---|---|---|---|']
    for factor, value, result in results:
        shown = '-' if value is None else value if isinstance(value, str) else f'{value:g}'
        lines.append(f'| {factor} | {shown} | {result["success"] * 100:.0f} % '
                     f'({round(result["success"] * result["episodes"])}/'
                     f'{result["episodes"]}) | {result["median_final_distance"]:.4f} |')
    return '\n'.join(lines)


def plot(results: list, png: Path, sweep: dict = SWEEP) -> Path:
    """Draw success rate against each factor (the nominal cell is each curve's first point)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    nominal = next(r for f, _, r in results if f == 'nominal')
    fig, axes = plt.subplots(1, len(sweep), figsize=(4 * len(sweep), 3.6), sharey=True,
                             constrained_layout=True)
    for ax, (factor, values) in zip(np.atleast_1d(axes), sweep.items()):
        found = {v: r for f, v, r in results if f == factor}
        xs = [values[0]] + [v for v in values[1:] if v in found]
        ys = [nominal['success']] + [found[v]['success'] for v in xs[1:]]
        order = np.argsort(xs)
        ax.plot(np.array(xs)[order], np.array(ys)[order] * 100, 'o-')
        ax.set_xlabel(UNITS[factor], fontsize=8)
        ax.set_title(factor)
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel(f'success % ({nominal["episodes"]} episodes per point)')
    both = [(v, r) for f, v, r in results if f == 'combined']
    if both:
        fig.suptitle(f'all at once ({both[0][0]}): {both[0][1]["success"] * 100:.0f} %',
                     fontsize=9)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def _run(args: tuple) -> dict:
    return run_cell(*args)


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog='vision_policy_rehearsal', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', help='ONNX policy (default: the bundled one)')
    parser.add_argument('--episodes', type=int, default=50, help='seeded episodes per cell')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=1, help='processes (cells in parallel)')
    parser.add_argument('--factors', nargs='*', choices=sorted(SWEEP), help='sweep only these')
    parser.add_argument('--out', default='out/rehearsal', help='folder for table, JSON, PNG')
    args = parser.parse_args(argv)
    model = args.model
    if model is None:
        from ament_index_python.packages import get_package_share_directory
        model = str(Path(get_package_share_directory('vision_policy')) / 'models' /
                    'reach_policy.onnx')
    if not Path(model).is_file():
        print(f'vision_policy_rehearsal: error: {model}: no such model', file=sys.stderr)
        return 2
    if args.episodes < 1:
        print('vision_policy_rehearsal: error: --episodes must be >= 1', file=sys.stderr)
        return 2
    sweep = {k: v for k, v in SWEEP.items() if not args.factors or k in args.factors}
    setup = Setup(model_path=model, episodes=args.episodes, seed=args.seed)
    todo = cells(sweep)
    t0 = time.monotonic()
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        done = list(pool.map(_run, [(setup, p) for _, _, p in todo]))
    results = [(f, v, r) for (f, v, _), r in zip(todo, done)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = table(results)
    print(text)
    print(f'{len(todo)} cells x {args.episodes} episodes in {time.monotonic() - t0:.0f} s')
    (out / 'rehearsal.md').write_text(text + '\n')
    (out / 'rehearsal.json').write_text(json.dumps(
        {'setup': asdict(setup), 'cells': [{'factor': f, 'value': v, **r}
                                           for f, v, r in results]}, indent=1))
    print(f'wrote {plot(results, out / "rehearsal.png", sweep)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
