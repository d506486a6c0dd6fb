"""
reach_training_eval: success of an exported policy in the twin, in-process, no ROS.

Episodes follow the SIL demo (vision_policy_sil.mujoco_demo): the twin is reset before
each one (episode k gets the twin's target k + 1 of the seed) and the node is not.
The ONNX file runs through vision_policy's PolicyCore, configured as policy_inference
configures it by default (card beside the model, CPU provider, the card's clip as
position limits, max_joint_step 0.1). The twin's ReachArmSim renders 640x480 on the
twin node's schedule (images at 30 Hz, joint states at 100 Hz, both the latest at each
20 Hz tick), and each command moves the servo targets linearly from the measured
positions over control_dt, as the twin follows a one-point JointTrajectory.

    reach_training_eval --model models/reach_policy.onnx --episodes 100 --seed 0
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time
from typing import Optional

import numpy as np

from .task import LinearCommand, node_limits, TaskConfig


def make_core(model_path: str | Path, task: TaskConfig, card_path: Optional[str] = None):
    """Build PolicyCore for an ONNX file as the node does by default."""
    from vision_policy.core import PolicyCore
    from vision_policy.runtime import load_policy, PolicyRuntime, RuntimeOptions

    session, card = load_policy(model_path, card_path,
                                RuntimeOptions(('CPUExecutionProvider',)))
    return PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs),
                      node_limits(card, task))


def run_twin_episodes(model_path: str | Path, episodes: int, seed: int = 0,
                      task: TaskConfig = TaskConfig(), camera_rate: float = 30.0,
                      joint_state_rate: float = 100.0, command_delay_steps: int = 0,
                      reset_core: bool = False, log=print, card_path: Optional[str] = None,
                      camera_fovy: float = 0.0, fov_matching: bool = True) -> dict:
    """
    Run seeded twin episodes as the SIL demo does; return a report.

    camera_fovy sets the twin camera's field of view (0: the model's); with a card that
    has image.camera, fov_matching crops as policy_inference does from the twin's
    camera_info.
    """
    from mujoco_twin.sim import ReachArmSim, SimConfig
    from vision_policy.camera import camera_from_info, needs_camera_info

    core = make_core(model_path, task, card_path)
    card = core.card
    n = task.steps_per_tick(card)
    dt = task.physics_dt
    sim = ReachArmSim(SimConfig(timestep=dt, image_width=task.render_width,
                                image_height=task.render_height, camera_fovy=camera_fovy),
                      seed=seed)
    if needs_camera_info(card.image, fov_matching):
        fx, fy, cx, cy = sim.camera_intrinsics()  # what the twin node's camera_info says
        real, warnings = camera_from_info(task.render_width, task.render_height,
                                          [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])
        log(core.update_camera(real, fov_matching, warnings).text())
    image_every, state_every = 1.0 / camera_rate, 1.0 / joint_state_rate
    finals, reached = [], []
    t0 = time.monotonic()
    for episode in range(episodes):
        # As the SIL demo: each episode starts with a twin reset (so episode k has the
        # twin's target k + 1 of `seed`), and the node is not reset: its last command
        # and last action carry over into the next episode.
        sim.reset()
        if reset_core or episode == 0:
            core.reset()
        command: Optional[LinearCommand] = None
        pending = None
        start = sim.time
        next_image, next_state = start, start
        frame = q = qd = None
        first = None
        for step in range(task.episode_ticks * n):
            now = sim.time
            if now >= next_state - dt / 2:
                q, qd = sim.joint_positions, sim.joint_velocities
                next_state = max(next_state + state_every, now)
            if now >= next_image - dt / 2:
                frame = sim.render()
                next_image = max(next_image + image_every, now)
            if step % n == 0:
                core.set_image(frame, 'rgb8')
                pending = (step + command_delay_steps, core.step(q, qd).copy())
                if first is None and sim.ee_distance < task.tolerance:
                    first = step // n
            if pending is not None and step == pending[0]:
                command = LinearCommand(now, sim.joint_positions, pending[1], card.control_dt)
                pending = None
            if command is not None:
                sim.set_position_targets(command.sample(now))
            sim.step(1)
        finals.append(sim.ee_distance)
        reached.append(first)
        if (episode + 1) % 10 == 0:
            done = np.array(finals)
            log(f'{episode + 1} episodes: success {np.mean(done < task.tolerance):.3f}, '
                f'median final distance {np.median(done):.4f} m, '
                f'{time.monotonic() - t0:.0f} s')
    sim.close()
    finals = np.array(finals)
    return {
        'model': str(model_path), 'card': card.name, 'episodes': episodes, 'seed': seed,
        'reset_core': reset_core, 'command_delay_steps': command_delay_steps,
        'camera_fovy': sim.camera_fovy, 'fov_matching': fov_matching,
        'crop': None if core.camera is None or core.camera.crop is None else
        list(core.camera.crop),
        'episode_s': task.episode_ticks * card.control_dt, 'tolerance': task.tolerance,
        'success': float(np.mean(finals < task.tolerance)),
        'median_final_distance': float(np.median(finals)),
        'max_final_distance': float(np.max(finals)),
        'final_distances': finals.round(5).tolist(),
        'first_tick_within_tolerance': reached,
        'wall_s': time.monotonic() - t0,
    }


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog='reach_training_eval', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', required=True, help='ONNX policy (card beside or embedded)')
    parser.add_argument('--episodes', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0, help='twin target stream seed')
    parser.add_argument('--episode-s', type=float, default=5.0, help='episode length, s')
    parser.add_argument('--tolerance', type=float, default=0.05, help='success radius, m')
    parser.add_argument('--command-delay-steps', type=int, default=0,
                        help='physics steps between a tick and its command taking effect')
    parser.add_argument('--reset-core', action='store_true',
                        help='reset the core (last action, safety reference) every episode')
    parser.add_argument('--card', help='policy card (default: beside the model, or embedded)')
    parser.add_argument('--camera-fovy', type=float, default=0.0,
                        help="twin camera vertical field of view, degrees (0: the model's)")
    parser.add_argument('--no-fov-matching', dest='fov_matching', action='store_false',
                        help='whole image, not the crop to the card image.camera field of view')
    parser.add_argument('--out', help='write the report as JSON here')
    args = parser.parse_args(argv)
    task = TaskConfig(episode_ticks=round(args.episode_s / 0.05), tolerance=args.tolerance)
    try:
        report = run_twin_episodes(args.model, args.episodes, args.seed, task,
                                   command_delay_steps=args.command_delay_steps,
                                   reset_core=args.reset_core, card_path=args.card,
                                   camera_fovy=args.camera_fovy,
                                   fov_matching=args.fov_matching)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f'reach_training_eval: error: {exc}', file=sys.stderr)
        return 1
    print(f'(b) twin in-process through PolicyCore: success {report["success"]:.3f} over '
          f'{report["episodes"]} episodes (seed {report["seed"]}, {report["episode_s"]:g} s, '
          f'tolerance {report["tolerance"]} m, camera fovy {report["camera_fovy"]:g}, '
          f'crop {report["crop"]}), median final distance '
          f'{report["median_final_distance"]:.4f} m, {report["wall_s"]:.0f} s')
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
