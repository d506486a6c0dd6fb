"""
reach_training_train: DAgger from a scripted IK expert into the image student.

Every tick, all envs are stepped as one batch; their observations and camera images
(the card's pipeline, in shared memory) go to the GPU as one tensor. The expert labels
every visited state with its action; with probability beta the expert's action is
executed, otherwise the student's (beta falls from 1 to 0: DAgger). The student
regresses the expert's raw actions, plus the target position as an auxiliary loss,
on a replay buffer kept on the GPU.

    reach_training_train --out out/reach_training            # the bundled policy (GPU)
    reach_training_train --smoke --out /tmp/reach_smoke       # a few CPU iterations
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, replace
import json
import os
from pathlib import Path
import sys
import time
from typing import Optional

import numpy as np

from .randomization import RandomizationConfig
from .task import default_card_path, expert_raw_action, TaskConfig


@dataclass(frozen=True)
class TrainConfig:
    """Scale and schedule of one training run."""

    num_envs: int = 1920
    workers: int = 0                    # 0: one per CPU core but one
    iterations: int = 100_000           # batched ticks at most
    max_minutes: float = 6.0            # training time at most; schedules follow progress,
    # the larger of iterations done and time spent, each as a fraction of its limit
    buffer_size: int = 500_000          # samples on the GPU (image: 48 KiB each)
    batch_size: int = 1024
    grad_steps: int = 4                 # gradient steps per batched tick, at least
    max_grad_steps: int = 32            # more while the envs are still stepping
    init: str = ''                      # start from these weights (student.pt)
    lr: float = 1e-3
    lr_final: float = 1e-4
    beta_end: float = 0.3               # fraction of iterations after which beta is 0
    aux_weight: float = 1.0             # target position loss (m, x10)
    heat_weight: float = 0.5            # target heatmap cross-entropy
    eval_episodes: int = 100
    seed: int = 0
    device: str = ''                    # '' = cuda when available
    in_process: bool = False            # envs in this process (smoke, tests)

    def resolved_workers(self) -> int:
        """Return the worker count (0 when in_process)."""
        if self.in_process:
            return 0
        return self.workers or max(1, (os.cpu_count() or 2) - 1)


SMOKE = TrainConfig(num_envs=4, iterations=30, buffer_size=2000, batch_size=32, grad_steps=1,
                    lr=3e-3, lr_final=1e-3, beta_end=0.5, eval_episodes=4, device='cpu',
                    in_process=True)
SMOKE_TASK = TaskConfig(episode_ticks=10)


class ReplayBuffer:
    """A ring of (obs, image, expert action, target position, pixel) tensors on a device."""

    def __init__(self, capacity: int, obs_dim: int, image_shape: tuple, num_actions: int,
                 device):
        import torch
        self.capacity, self.size, self.head = capacity, 0, 0
        self.obs = torch.zeros((capacity, obs_dim), device=device)
        self.image = torch.zeros((capacity, *image_shape), device=device)
        self.action = torch.zeros((capacity, num_actions), device=device)
        self.target = torch.zeros((capacity, 3), device=device)
        self.pixel = torch.zeros((capacity, 2), device=device)

    def add(self, obs, image, action, target, pixel) -> None:
        """Append one batch (tensors on the buffer's device), overwriting the oldest."""
        n = obs.shape[0]
        idx = (self.head + np.arange(n)) % self.capacity
        for store, value in ((self.obs, obs), (self.image, image), (self.action, action),
                             (self.target, target), (self.pixel, pixel)):
            store[idx] = value
        self.head = int((self.head + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch: int, generator) -> tuple:
        """Draw a batch uniformly from what is stored."""
        import torch
        idx = torch.randint(0, self.size, (batch,), device=self.obs.device, generator=generator)
        return (self.obs[idx], self.image[idx], self.action[idx], self.target[idx],
                self.pixel[idx])


def _to(array: np.ndarray, device):
    import torch
    return torch.from_numpy(np.ascontiguousarray(array)).to(device, torch.float32)


def rollout_success(env, policy, device, seeds, randomize: Optional[bool],
                    home_start: Optional[bool], tolerance: float) -> np.ndarray:
    """Run one seeded episode per env with the student alone; return final distances."""
    import torch
    env.reset(seeds=seeds, randomize=randomize, home_start=home_start)
    final = np.full(env.num_envs, np.nan)
    for _ in range(env.task.episode_ticks):
        with torch.no_grad():
            actions = policy(_to(env.arrays.obs, device), _to(env.arrays.image, device))
        env.step(actions.cpu().numpy())
        done = env.arrays.done.astype(bool)
        final[done] = env.arrays.final_distance[done]
    return final


def train(out: Path, config: TrainConfig, task: TaskConfig = TaskConfig(),
          randomization: RandomizationConfig = RandomizationConfig(),
          card_path: Optional[Path] = None, log=print) -> dict:
    """Train, evaluate in the training env, save weights, log and figure under out."""
    import torch
    from vision_policy.card import load_card

    from .model import build, heatmap_target
    from .vec_env import BatchEnv

    out.mkdir(parents=True, exist_ok=True)
    card_path = Path(card_path or default_card_path())
    card = load_card(card_path)
    if card.image is None or card.image.crop is not None or card.image.width != card.image.height:
        raise ValueError(f'{card_path}: this trainer needs a square, uncropped camera image')
    image_size = card.image.width
    device = torch.device(config.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    torch.manual_seed(config.seed)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision('high')
    workers = config.resolved_workers()
    t_start = time.monotonic()
    env = BatchEnv(str(card_path), config.num_envs, workers, task, randomization, config.seed)
    log(f'{config.num_envs} envs in {workers or "no"} worker processes, device {device}, '
        f'started in {time.monotonic() - t_start:.1f} s')
    policy = build()
    if config.init:
        policy.load_state_dict(torch.load(config.init, map_location='cpu', weights_only=True))
    policy = policy.to(device)
    optim = torch.optim.Adam(policy.parameters(), lr=config.lr)
    spec = env.spec
    buffer = ReplayBuffer(config.buffer_size, spec.obs_dim, spec.image_shape, spec.num_actions,
                          device)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    env.reset(stagger=True)
    history = {k: [] for k in ('iteration', 'loss', 'action_loss', 'target_loss', 'heat_loss',
                               'beta', 'episodes', 'success', 'wall_s')}
    probe, probe_first = None, float('nan')
    finished, successes, losses = 0, 0, []
    t_train = time.monotonic()
    iterations, waited, grad_steps = 0, 0.0, 0
    while True:
        progress = max(iterations / config.iterations,
                       (time.monotonic() - t_train) / (60.0 * config.max_minutes))
        beta = max(0.0, 1.0 - progress / config.beta_end)
        for group in optim.param_groups:
            group['lr'] = config.lr * (config.lr_final / config.lr) ** min(progress, 1.0)
        obs = _to(env.arrays.obs, device)
        image = _to(env.arrays.image, device)
        expert = expert_raw_action(env.arrays.joint_pos, env.arrays.goal, card,
                                   task.expert_step)
        expert_t = _to(expert, device)
        target_t = _to(env.arrays.target, device)
        pixel_t = _to(env.arrays.pixel, device)
        with torch.no_grad():
            student = policy(obs, image).cpu().numpy()
        use_expert = rng.random(env.num_envs) < beta
        env.step_async(np.where(use_expert[:, None], expert, student).astype(np.float32))
        buffer.add(obs, image, expert_t, target_t, pixel_t)
        if probe is None:  # a fixed batch to show the loss falling (smoke test)
            probe = (obs.clone(), image.clone(), expert_t.clone(), target_t.clone())
            with torch.no_grad():
                probe_first = float(torch.mean((policy(obs, image) - expert_t) ** 2))
        for step in range(config.max_grad_steps):
            if step >= config.grad_steps and env.ready():
                break
            b_obs, b_image, b_action, b_target, b_pixel = buffer.sample(config.batch_size, gen)
            action, target, heat = policy.forward_all(b_obs, b_image)
            action_loss = torch.mean((action - b_action) ** 2)
            target_loss = torch.mean((10.0 * (target - b_target)) ** 2)
            heat_loss = -torch.mean(torch.sum(
                heatmap_target(b_pixel, image_size, policy.heat_size)
                * torch.log_softmax(heat, dim=-1), dim=-1))
            loss = (action_loss + config.aux_weight * target_loss
                    + config.heat_weight * heat_loss)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            losses.append(torch.stack([loss, action_loss, target_loss, heat_loss]).detach())
            grad_steps += 1
            if device.type == 'cuda':
                torch.cuda.synchronize()  # pace the loop by the GPU, to see the envs finish
        t_wait = time.monotonic()
        env.step_wait()
        waited += time.monotonic() - t_wait
        done = env.arrays.done.astype(bool)
        finished += int(done.sum())
        successes += int((env.arrays.final_distance[done] < task.tolerance).sum())
        iterations += 1
        last = max(iterations / config.iterations,
                   (time.monotonic() - t_train) / (60.0 * config.max_minutes)) >= 1.0
        if iterations % 50 == 0 or last:
            mean = torch.stack(losses).mean(0).tolist()
            history['iteration'].append(iterations)
            history['loss'].append(float(mean[0]))
            history['action_loss'].append(float(mean[1]))
            history['target_loss'].append(float(mean[2]))
            history['heat_loss'].append(float(mean[3]))
            history['beta'].append(beta)
            history['episodes'].append(finished)
            history['success'].append(successes / finished if finished else float('nan'))
            history['wall_s'].append(time.monotonic() - t_train)
            log(f'it {iterations:5d}  loss {mean[0]:.4f} (action {mean[1]:.4f}, target '
                f'{mean[2]:.4f}, heatmap {mean[3]:.3f})  beta {beta:.2f}  episodes '
                f'{finished}  success {history["success"][-1]:.2f}  '
                f'{history["wall_s"][-1]:.0f} s (waiting for envs {waited:.0f} s)')
            finished, successes, losses = 0, 0, []
        if last:
            break
    train_s = time.monotonic() - t_train
    policy.eval()
    with torch.no_grad():
        probe_loss = float(torch.mean((policy(probe[0], probe[1]) - probe[2]) ** 2))
    env.close()
    # (a): the training environment (one episode per env), student alone, seeded.
    n = config.eval_episodes
    env = BatchEnv(str(card_path), n, min(workers, n), task, randomization, config.seed + 1)
    seeds = [10_000_000 + i for i in range(n)]
    evals = {}
    for name, randomize, home in (('randomized', True, None), ('nominal_home', False, True)):
        final = rollout_success(env, policy, device, seeds, randomize, home, task.tolerance)
        evals[name] = {'episodes': n, 'success': float(np.mean(final < task.tolerance)),
                       'median_final_distance': float(np.median(final)),
                       'final_distances': final.round(5).tolist()}
        log(f'(a) training env, {name}: success {evals[name]["success"]:.3f} over {n} '
            f'episodes, median final distance {evals[name]["median_final_distance"]:.4f} m')
    env.close()
    env_steps = iterations * config.num_envs
    result = {
        'config': asdict(config), 'task': asdict(task), 'randomization': asdict(randomization),
        'card': str(card_path), 'device': str(device),
        'device_name': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
        'workers': workers, 'iterations': iterations, 'env_steps': env_steps,
        'grad_steps': grad_steps,
        'train_wall_s': train_s, 'fps': env_steps / train_s,
        'total_wall_s': time.monotonic() - t_start,
        'probe_loss_first': probe_first, 'probe_loss_last': probe_loss,
        'eval': evals, 'history': history,
    }
    policy_cpu = policy.to('cpu')
    torch.save(policy_cpu.state_dict(), out / 'student.pt')
    (out / 'train_log.json').write_text(json.dumps(result, indent=1))
    plot(history, out / 'training.png')
    log(f'trained {iterations} iterations x {config.num_envs} envs = {env_steps} env steps in '
        f'{train_s:.0f} s: {result["fps"]:.0f} env steps/s, {grad_steps} gradient steps; '
        f'weights {out / "student.pt"}')
    result['policy'] = policy_cpu
    return result


def plot(history: dict, path: Path) -> None:
    """Write the training curves (loss, success of finished episodes, beta) as a PNG."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax1.semilogy(history['iteration'], history['action_loss'], label='action (raw, MSE)')
    ax1.semilogy(history['iteration'], history['target_loss'], label='target (dm, MSE)')
    ax1.semilogy(history['iteration'], history['heat_loss'], label='heatmap (CE, nats)')
    ax1.set_xlabel('batched tick')
    ax1.set_title('DAgger losses')
    ax1.legend()
    ax2.plot(history['iteration'], history['success'], label='episode success')
    ax2.plot(history['iteration'], history['beta'], '--', label='beta (expert share)')
    ax2.set_xlabel('batched tick')
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_title('training episodes (randomised)')
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog='reach_training_train', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='folder for weights, log and figure')
    parser.add_argument('--card', help='policy card (default: models/reach_policy.yaml)')
    parser.add_argument('--smoke', action='store_true', help='a few CPU iterations')
    parser.add_argument('--num-envs', type=int)
    parser.add_argument('--workers', type=int)
    parser.add_argument('--iterations', type=int)
    parser.add_argument('--max-minutes', type=float)
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--grad-steps', type=int)
    parser.add_argument('--buffer-size', type=int)
    parser.add_argument('--beta-end', type=float)
    parser.add_argument('--init', help='start from these weights (student.pt)')
    parser.add_argument('--device')
    parser.add_argument('--seed', type=int)
    args = parser.parse_args(argv)
    config, task = (SMOKE, SMOKE_TASK) if args.smoke else (TrainConfig(), TaskConfig())
    overrides = {k: v for k, v in (('num_envs', args.num_envs), ('workers', args.workers),
                                   ('iterations', args.iterations), ('device', args.device),
                                   ('max_minutes', args.max_minutes), ('seed', args.seed),
                                   ('batch_size', args.batch_size),
                                   ('grad_steps', args.grad_steps), ('init', args.init),
                                   ('buffer_size', args.buffer_size),
                                   ('beta_end', args.beta_end))
                 if v is not None}
    config = replace(config, **overrides)
    try:
        train(Path(args.out), config, task, card_path=args.card)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f'reach_training_train: error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
