"""
One training environment: the twin's scene, randomised, seen through the card's pipeline.

The observation is built by vision_policy's own ObservationBuilder and ImagePipeline
from a 640x480 render (the twin node's default), and raw actions go through its
ActionMapper and SafetyFilter, exactly as PolicyCore does in the node. Commands then
follow the twin's trajectory semantics (task.LinearCommand), with the ROS loop's
delays drawn per tick.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Optional

import mujoco
from mujoco_twin.sim import (CAMERA_NAME, HOME, ReachArmSim, SimConfig, TARGET_JOINT_HIGH,
                             TARGET_JOINT_LOW)
import numpy as np
from vision_policy.action import ActionMapper, SafetyFilter
from vision_policy.card import PolicyCard
from vision_policy.image import ImagePipeline
from vision_policy.observation import ObservationBuilder, Sample

from .randomization import ModelRandomizer, RandomizationConfig
from .task import LinearCommand, node_limits, TaskConfig


class TiledRenderer:
    """
    One GL context that renders scene_camera for many envs in one pass.

    Each env's scene is captured (mjv_updateScene) into its own slot when its image is
    due; render() then draws every slot into its tile of one offscreen buffer and reads
    it back once, instead of one GPU round trip per image. Lights, colours, sizes and
    the camera pose come from the model handed to capture(), so randomised copies share
    the context. Slot 0 equals ReachArmSim.render() pixel for pixel; other tiles differ
    by at most one intensity level in a few edge pixels (test_env checks both).
    """

    MAX_SIDE = 8192

    def __init__(self, model: mujoco.MjModel, width: int, height: int, tiles: int = 1):
        self.width, self.height = width, height
        self.cols = max(1, min(tiles, self.MAX_SIDE // width))
        self.rows = -(-tiles // self.cols)
        if self.rows * height > self.MAX_SIDE:
            raise ValueError(f'{tiles} tiles of {width}x{height} do not fit a '
                             f'{self.MAX_SIDE}x{self.MAX_SIDE} buffer; use more workers')
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.cols * width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.rows * height)
        self._gl = mujoco.GLContext(model.vis.global_.offwidth, model.vis.global_.offheight)
        self._gl.make_current()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = model.camera(CAMERA_NAME).id
        self._scenes = [mujoco.MjvScene(model, maxgeom=1000) for _ in range(tiles)]
        self._buffer = np.zeros((self.rows * height, self.cols * width, 3), dtype=np.uint8)
        self._used = 0
        self.frame = np.zeros((height, width, 3), dtype=np.uint8)

    def capture(self, slot: int, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Record what the camera sees now in this slot's scene."""
        mujoco.mjv_updateScene(model, data, self._option, None, self._camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self._scenes[slot])

    def _rect(self, slot: int) -> mujoco.MjrRect:
        row, col = divmod(slot, self.cols)
        return mujoco.MjrRect(col * self.width, row * self.height, self.width, self.height)

    def render(self, count: int) -> None:
        """Draw slots 0..count-1 and read the buffer back (one GPU round trip)."""
        self._gl.make_current()
        for slot in range(count):
            mujoco.mjr_render(self._rect(slot), self._scenes[slot], self._context)
        rows = -(-count // self.cols)
        mujoco.mjr_readPixels(self._buffer[:rows * self.height], None, mujoco.MjrRect(
            0, 0, self.cols * self.width, rows * self.height), self._context)
        self._used = count

    def tile(self, slot: int) -> np.ndarray:
        """Return slot's image of the last render(), (H, W, 3) uint8 RGB, top row first."""
        if slot >= self._used:
            raise IndexError(f'slot {slot} was not rendered (last render: {self._used})')
        row, col = divmod(slot, self.cols)
        tile = self._buffer[row * self.height:(row + 1) * self.height,
                            col * self.width:(col + 1) * self.width]
        np.copyto(self.frame, tile[::-1])  # OpenGL rows run bottom-up
        return self.frame

    def close(self) -> None:
        """Free the GL context."""
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._gl.free()
            self._context = None


@dataclass
class StepResult:
    """What one environment reports after a tick (episode end fields when done)."""

    done: bool = False
    final_distance: float = float('nan')


class ReachEnv:
    """The reach task for one arm: reset, step(raw action), observation, privileged state."""

    def __init__(self, card: PolicyCard, task: TaskConfig, randomization: RandomizationConfig,
                 seed: int, renderer: Optional[TiledRenderer] = None, slot: int = 0):
        task.validate()
        self.card, self.task = card, task
        self.steps_per_tick = task.steps_per_tick(card)
        self.sim = ReachArmSim(SimConfig(timestep=task.physics_dt,
                                         image_width=task.render_width,
                                         image_height=task.render_height), seed=seed)
        self.randomizer = ModelRandomizer(self.sim.model, randomization)
        # A shared renderer is drawn by its owner (vec_env) after all envs captured;
        # an own one renders each image at once.
        self.owns_renderer = renderer is None
        self.renderer = renderer or TiledRenderer(
            self.sim.model, task.render_width, task.render_height)
        self.slot = slot
        self._camera_id = self.sim.model.camera(CAMERA_NAME).id
        self.pipeline = ImagePipeline(card.image)
        self.builder = ObservationBuilder(card)
        self.mapper = ActionMapper(card)
        self.safety = SafetyFilter(node_limits(card, task))
        n = len(card.joint_names)
        self.sample = Sample(joint_pos=np.zeros(n, np.float32), joint_vel=np.zeros(n, np.float32),
                             last_action=np.zeros(n, np.float32))
        self.image = np.zeros_like(self.pipeline.out)
        self.joint_pos = np.zeros(n)     # the observed (possibly delayed) joint state, float64
        self.joint_vel = np.zeros(n)
        self.command: Optional[LinearCommand] = None
        self.last_command = np.zeros(n)  # what the node would have published last tick
        self.tick = 0
        self.rng = np.random.default_rng(seed)
        self.reset()

    # -- episodes -------------------------------------------------------------------------

    def reset(self, seed: Optional[int] = None, randomize: Optional[bool] = None,
              home_start: Optional[bool] = None) -> None:
        """
        Start an episode: a new target (the twin's seeded stream), scene and start pose.

        With `seed`, the target stream and this env's random draws restart from it.
        `randomize` and `home_start` override the configured probabilities.
        """
        if seed is not None:
            self.rng = np.random.default_rng(seed + 7919)
        self.sim.reset(seed=seed)
        if randomize is False:
            self.randomizer.restore()
        else:
            self.randomizer.apply(self.rng)
        task, rng = self.task, self.rng
        if home_start is None:
            home_start = rng.random() < task.home_start_prob
        start = np.array(HOME)
        if not home_start:
            start = np.clip(start + rng.uniform(-task.start_noise, task.start_noise, 3),
                            self.sim.joint_limits[:, 0], self.sim.joint_limits[:, 1])
        data = self.sim.data
        data.qpos[:] = start
        data.qvel[:] = 0.0
        data.ctrl[:] = start
        mujoco.mj_forward(self.sim.model, data)
        self.command = None
        self.builder.reset()
        self.safety.has_reference = False
        self.sample.last_action.fill(0.0)
        if rng.random() < task.stale_command_prob:
            # As after a twin reset with the node running on: its last command was for
            # another target, and the safety filter steps from there.
            stale = rng.uniform(TARGET_JOINT_LOW, TARGET_JOINT_HIGH)
            self.safety.set_reference(stale)
            action = self.card.action
            self.sample.last_action[:] = (stale - np.asarray(action.offset)) / np.asarray(
                action.scale)
        self.tick = 0
        self.joint_pos[:] = self.sim.joint_positions
        self.joint_vel[:] = self.sim.joint_velocities
        self._capture()

    def _capture(self) -> None:
        self.renderer.capture(self.slot, self.sim.model, self.sim.data)
        if self.owns_renderer:
            self.renderer.render(1)
            self.process_image()

    def process_image(self) -> None:
        """Run this env's rendered tile through the card's image pipeline."""
        np.copyto(self.image, self.pipeline.process(self.renderer.tile(self.slot), 'rgb8'))

    # -- one tick -------------------------------------------------------------------------

    def observation(self) -> dict:
        """Return {input name: array} built by the card's ObservationBuilder (as PolicyCore)."""
        self.sample.joint_pos[:] = self.joint_pos
        self.sample.joint_vel[:] = self.joint_vel
        self.sample.images[''] = self.image
        return self.builder.build(self.sample)

    def step(self, raw: np.ndarray) -> StepResult:
        """
        Apply one raw network output as the node would, then run one control period.

        Call observation() first for this tick (it advances observation history, as
        PolicyCore.step does before inference). Auto-resets at the episode end.
        """
        if not self.safety.has_reference:
            self.safety.set_reference(self.joint_pos)
        target = self.safety.apply(self.mapper.map(np.asarray(raw, dtype=np.float32)))
        if target is None:
            raise ValueError(f'non-finite action {np.asarray(raw).tolist()}')
        target = target.copy()
        self.last_command = target
        self.sample.last_action[:] = raw
        task, rng, sim = self.task, self.rng, self.sim
        n = self.steps_per_tick
        delay = rng.integers(0, task.max_command_delay_steps + 1)
        image_at = n - 1 - rng.integers(0, task.max_image_age_steps + 1)
        state_at = n - 1 - rng.integers(0, task.max_joint_state_age_steps + 1)
        for j in range(n):
            if j == delay:  # the trajectory arrives: plan from the measured positions
                self.command = LinearCommand(sim.time, sim.joint_positions, target,
                                             self.card.control_dt)
            if self.command is not None:
                sim.set_position_targets(self.command.sample(sim.time))
            sim.step(1)
            if j == state_at:
                self.joint_pos[:] = sim.joint_positions
                self.joint_vel[:] = sim.joint_velocities
            if j == image_at:
                self._capture()
        self.tick += 1
        if self.tick < task.episode_ticks:
            return StepResult()
        result = StepResult(True, sim.ee_distance)
        self.reset()
        return result

    def target_pixel(self) -> np.ndarray:
        """
        Return the target centre's (x, y) in the card's resized image, pixels (privileged).

        Projected with the (randomised) camera's pose and fovy, ROS pixel convention (as
        mujoco_twin's camera_info), then mapped through the card's resize.
        """
        model, data = self.sim.model, self.sim.data
        cam = self._camera_id
        rel = data.cam_xmat[cam].reshape(3, 3).T @ (self.sim.target_position - data.cam_xpos[cam])
        x, y, z = rel[0], -rel[1], -rel[2]  # MuJoCo camera (y up, looks along -z) -> optical
        width, height = self.task.render_width, self.task.render_height
        f = (height / 2.0) / math.tan(math.radians(model.cam_fovy[cam]) / 2.0)
        u, v = f * x / z + (width - 1) / 2.0, f * y / z + (height - 1) / 2.0
        spec = self.card.image
        return np.array([(u + 0.5) * spec.width / width - 0.5,
                         (v + 0.5) * spec.height / height - 0.5])

    @property
    def goal(self) -> np.ndarray:
        """Return the target's joint solution (privileged; unique in the sampled region)."""
        return self.sim.target_joint_positions

    def close(self) -> None:
        """Free this env's renderer if it owns it."""
        if self.owns_renderer:
            self.renderer.close()
