"""
Many ReachEnvs stepped as one batch: a process pool writes into shared-memory arrays.

Each worker owns a contiguous slice of the envs and one GL context. After step() the
batch's observations, camera images (already through the card's pipeline) and
privileged state lie in numpy arrays that view shared memory, ready to go to the GPU
as one tensor. With workers=0 the envs run in the calling process (tests, smoke).
"""
from __future__ import annotations

from dataclasses import dataclass
import multiprocessing as mp
import os
import traceback
from typing import Optional, Sequence

import numpy as np

from .randomization import RandomizationConfig
from .task import TaskConfig


class WorkerError(RuntimeError):
    """A worker process failed; the message holds its traceback."""


@dataclass(frozen=True)
class BatchSpec:
    """Shapes of the batch arrays, from the card."""

    num_envs: int
    obs_dim: int
    image_shape: tuple
    num_actions: int

    def fields(self) -> dict:
        """Return {name: (shape, dtype)} of every shared array."""
        n, a = self.num_envs, self.num_actions
        return {
            'actions': ((n, a), np.float32),
            'obs': ((n, self.obs_dim), np.float32),
            'image': ((n, *self.image_shape), np.float32),
            'joint_pos': ((n, a), np.float64),      # observed (delayed) joint positions
            'goal': ((n, a), np.float64),           # privileged: the target's joint solution
            'target': ((n, 3), np.float64),         # privileged: target position, world
            'pixel': ((n, 2), np.float64),          # privileged: target centre in the image
            'distance': ((n,), np.float64),         # end effector to target now
            'done': ((n,), np.uint8),               # an episode ended in the last step
            'final_distance': ((n,), np.float64),   # its final distance (NaN when not done)
        }


class _Arrays:
    """Numpy views of the shared arrays; `raw` is passed to the workers at their start."""

    def __init__(self, spec: BatchSpec, raw: Optional[dict] = None, ctx=None):
        if raw is None:
            raw = {key: ctx.RawArray('B', max(int(np.prod(shape)) * np.dtype(dtype).itemsize,
                                              1))
                   for key, (shape, dtype) in spec.fields().items()}
        self.raw = raw
        for key, (shape, dtype) in spec.fields().items():
            count = int(np.prod(shape))
            setattr(self, key, np.frombuffer(raw[key], dtype=dtype, count=count).reshape(shape))


def _build_envs(card_path: str, task: TaskConfig, randomization: RandomizationConfig,
                seeds: Sequence[int]) -> list:
    from mujoco_twin.sim import ReachArmSim, SimConfig
    from vision_policy.card import load_card

    from .env import ReachEnv, TiledRenderer
    card = load_card(card_path)
    model = ReachArmSim(SimConfig(timestep=task.physics_dt, image_width=task.render_width,
                                  image_height=task.render_height)).model
    renderer = TiledRenderer(model, task.render_width, task.render_height, len(seeds))
    envs = [ReachEnv(card, task, randomization, seed, renderer, slot)
            for slot, seed in enumerate(seeds)]
    _render(envs)
    return envs


def _render(envs: list) -> None:
    """Draw every env's captured scene in one pass, then run each through the pipeline."""
    envs[0].renderer.render(len(envs))
    for env in envs:
        env.process_image()


def _write(arrays: _Arrays, i: int, env) -> None:
    obs = env.observation()
    arrays.obs[i] = obs['obs'].reshape(-1)
    arrays.image[i] = obs['image'].reshape(arrays.image.shape[1:])
    arrays.joint_pos[i] = env.joint_pos
    arrays.goal[i] = env.goal
    arrays.target[i] = env.sim.target_position
    arrays.pixel[i] = env.target_pixel()
    arrays.distance[i] = env.sim.ee_distance


def _run(envs: list, arrays: _Arrays, offset: int, command: tuple) -> None:
    kind = command[0]
    if kind == 'step':
        for k, env in enumerate(envs):
            i = offset + k
            result = env.step(arrays.actions[i])
            arrays.done[i] = result.done
            arrays.final_distance[i] = result.final_distance
        _render(envs)
        for k, env in enumerate(envs):
            _write(arrays, offset + k, env)
    elif kind == 'reset':
        _, seeds, randomize, home_start, stagger = command
        rng = np.random.default_rng(0 if seeds is None else seeds[0])
        for k, env in enumerate(envs):
            i = offset + k
            env.reset(None if seeds is None else seeds[k], randomize, home_start)
            if stagger:  # spread episode ends over time so resets do not come in waves
                env.tick = int(rng.integers(0, env.task.episode_ticks))
            arrays.done[i] = 0
            arrays.final_distance[i] = np.nan
        _render(envs)
        for k, env in enumerate(envs):
            _write(arrays, offset + k, env)
    else:
        raise ValueError(f'unknown command {kind!r}')


def _worker(conn, card_path, task, randomization, seeds, offset, spec, raw) -> None:
    try:
        import cv2
        cv2.setNumThreads(1)
        arrays = _Arrays(spec, raw)
        envs = _build_envs(card_path, task, randomization, seeds)
        conn.send(('ready', None))
        while True:
            command = conn.recv()
            if command[0] == 'close':
                break
            _run(envs, arrays, offset, command)
            conn.send(('ok', None))
    except Exception:
        conn.send(('error', traceback.format_exc()))
    finally:
        conn.close()


class BatchEnv:
    """num_envs ReachEnvs in `workers` processes (0: in this process)."""

    def __init__(self, card_path: str, num_envs: int, workers: int, task: TaskConfig,
                 randomization: RandomizationConfig, seed: int = 0):
        from vision_policy.card import load_card
        card = load_card(card_path)
        obs_spec = next(s for s in card.inputs if s.name == 'obs')
        image_spec = next(s for s in card.inputs if s.name == 'image')
        self.card, self.task = card, task
        self.spec = BatchSpec(num_envs, int(np.prod(obs_spec.shape)),
                              tuple(image_spec.shape[1:]), len(card.action.joint_names))
        ctx = mp.get_context('spawn')
        self.arrays = _Arrays(self.spec, ctx=ctx)
        self.num_envs = num_envs
        seeds = [seed * 1_000_003 + i for i in range(num_envs)]
        self._procs, self._conns, self._slices = [], [], []
        self._envs = None
        if workers <= 0:
            self._envs = _build_envs(card_path, task, randomization, seeds)
            self._slices = [(0, num_envs)]
        else:
            os.environ.setdefault('MUJOCO_GL', 'egl')
            bounds = np.linspace(0, num_envs, min(workers, num_envs) + 1).astype(int)
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, daemon=True, args=(
                    child, card_path, task, randomization, seeds[lo:hi], int(lo), self.spec,
                    self.arrays.raw))
                proc.start()
                self._procs.append(proc)
                self._conns.append(parent)
                self._slices.append((int(lo), int(hi)))
            self._wait()

    def _wait(self) -> None:
        errors = []
        for conn in self._conns:
            status, detail = conn.recv()
            if status == 'error':
                errors.append(detail)
        if errors:
            self.close()
            raise WorkerError('worker failed:\n' + '\n'.join(errors))

    def _send(self, make_command) -> None:
        if self._envs is not None:
            lo, hi = self._slices[0]
            _run(self._envs, self.arrays, lo, make_command(lo, hi))
            return
        for conn, (lo, hi) in zip(self._conns, self._slices):
            conn.send(make_command(lo, hi))

    def step_async(self, actions: np.ndarray) -> None:
        """Start one tick for every env with these raw actions [num_envs, num_actions]."""
        self.arrays.actions[:] = actions
        self._send(lambda lo, hi: ('step',))

    def step_wait(self) -> None:
        """Wait for the tick started by step_async; the arrays then hold its results."""
        if self._envs is None:
            self._wait()

    def ready(self) -> bool:
        """Return True when every worker has answered (in-process: always)."""
        return all(conn.poll() for conn in self._conns)

    def step(self, actions: np.ndarray) -> None:
        """Run one tick for every env (step_async + step_wait)."""
        self.step_async(actions)
        self.step_wait()

    def reset(self, seeds: Optional[Sequence[int]] = None, randomize: Optional[bool] = None,
              home_start: Optional[bool] = None, stagger: bool = False) -> None:
        """Reset every env (env i with seeds[i] when given) and write first observations."""
        if seeds is not None and len(seeds) != self.num_envs:
            raise ValueError(f'reset: {len(seeds)} seeds for {self.num_envs} envs')
        self._send(lambda lo, hi: ('reset', None if seeds is None else list(seeds[lo:hi]),
                                   randomize, home_start, stagger))
        if self._envs is None:
            self._wait()

    def close(self) -> None:
        """Stop the workers and free the shared memory."""
        for conn in self._conns:
            try:
                conn.send(('close',))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.terminate()
        self._procs, self._conns = [], []
        if self._envs is not None:
            self._envs[0].renderer.close()
            self._envs = None
        self.arrays = None
