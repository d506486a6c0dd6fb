"""
Domain randomisation of one reach-arm MjModel: lights, colours, camera, target, joints.

Ranges are small on purpose. The twin renders the same MJCF with the same MuJoCo, so the
gap to cover is the GL driver (NVIDIA EGL in training, Mesa llvmpipe / OSMesa in SIL),
not a real camera. The target's size is the policy's only depth cue (one camera, no
shadows): its range stays within +-1.5 % (about +-2 cm of depth at 1.2 m).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import mujoco
import numpy as np


@dataclass(frozen=True)
class RandomizationConfig:
    """Ranges of each randomised quantity; `enabled=False` renders the twin's scene."""

    enabled: bool = True
    light_diffuse_scale: tuple = (0.75, 1.25)     # key, fill and head light
    light_ambient_scale: tuple = (0.75, 1.25)     # head light ambient
    light_pos_jitter: float = 0.2                 # m, key and fill light positions
    color_jitter: float = 0.06                    # per channel: table, arm, base, end effector
    target_red: tuple = (0.8, 1.0)
    target_green_blue: tuple = (0.0, 0.12)
    target_size_scale: tuple = (0.985, 1.015)
    camera_pos_jitter: float = 0.005              # m per axis
    camera_rot_jitter_deg: float = 0.3            # about a random axis
    camera_fovy_jitter_deg: float = 0.1
    kp_scale: tuple = (0.9, 1.1)                  # position servo gain
    damping_scale: tuple = (0.85, 1.15)           # joint damping
    frictionloss: tuple = (0.0, 0.05)             # N m


class ModelRandomizer:
    """Remembers a model's nominal values and draws new ones for each episode."""

    def __init__(self, model: mujoco.MjModel, config: RandomizationConfig):
        self.model = model
        self.config = config
        self._camera = model.camera('scene_camera').id
        self._target = model.geom('target_geom').id
        self._colored = [model.geom(n).id for n in
                         ('table', 'base_geom', 'shoulder_geom', 'upper_arm_geom',
                          'forearm_geom', 'ee_geom')]
        self._nominal = {name: np.array(getattr(model, name)) for name in (
            'light_diffuse', 'light_pos', 'geom_rgba', 'geom_size', 'cam_pos', 'cam_quat',
            'cam_fovy', 'actuator_gainprm', 'actuator_biasprm', 'dof_damping',
            'dof_frictionloss')}
        self._head = (np.array(model.vis.headlight.ambient), np.array(model.vis.headlight.diffuse))

    def restore(self) -> None:
        """Put every randomised value back to the model's nominal one."""
        for name, value in self._nominal.items():
            getattr(self.model, name)[:] = value
        self.model.vis.headlight.ambient[:] = self._head[0]
        self.model.vis.headlight.diffuse[:] = self._head[1]

    def apply(self, rng: np.random.Generator) -> None:
        """Draw one randomised scene into the model (nominal values when disabled)."""
        self.restore()
        cfg, m = self.config, self.model
        if not cfg.enabled:
            return
        nom = self._nominal
        m.light_diffuse[:] = nom['light_diffuse'] * rng.uniform(
            *cfg.light_diffuse_scale, size=(m.nlight, 1))
        m.light_pos[:] = nom['light_pos'] + rng.uniform(
            -cfg.light_pos_jitter, cfg.light_pos_jitter, size=nom['light_pos'].shape)
        m.vis.headlight.diffuse[:] = self._head[1] * rng.uniform(*cfg.light_diffuse_scale)
        m.vis.headlight.ambient[:] = self._head[0] * rng.uniform(*cfg.light_ambient_scale)
        for g in self._colored:
            m.geom_rgba[g, :3] = np.clip(nom['geom_rgba'][g, :3] + rng.uniform(
                -cfg.color_jitter, cfg.color_jitter, size=3), 0.0, 1.0)
        m.geom_rgba[self._target, :3] = (rng.uniform(*cfg.target_red),
                                         *rng.uniform(*cfg.target_green_blue, size=2))
        m.geom_size[self._target] = nom['geom_size'][self._target] * rng.uniform(
            *cfg.target_size_scale)
        c = self._camera
        m.cam_pos[c] = nom['cam_pos'][c] + rng.uniform(
            -cfg.camera_pos_jitter, cfg.camera_pos_jitter, size=3)
        axis = rng.normal(size=3)
        half = math.radians(rng.uniform(-cfg.camera_rot_jitter_deg,
                                        cfg.camera_rot_jitter_deg)) / 2.0
        turn = np.concatenate([[math.cos(half)], math.sin(half) * axis / np.linalg.norm(axis)])
        quat = np.zeros(4)
        mujoco.mju_mulQuat(quat, nom['cam_quat'][c], turn)
        m.cam_quat[c] = quat
        m.cam_fovy[c] = nom['cam_fovy'][c] + rng.uniform(-cfg.camera_fovy_jitter_deg,
                                                         cfg.camera_fovy_jitter_deg)
        kp = nom['actuator_gainprm'][:, 0] * rng.uniform(*cfg.kp_scale, size=m.nu)
        m.actuator_gainprm[:, 0] = kp
        m.actuator_biasprm[:, 1] = -kp
        m.dof_damping[:] = nom['dof_damping'] * rng.uniform(*cfg.damping_scale, size=m.nv)
        m.dof_frictionloss[:] = rng.uniform(*cfg.frictionloss, size=m.nv)
