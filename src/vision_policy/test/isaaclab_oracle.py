"""
Isaac Lab 2.3 as a test oracle: its real managers and mdp terms on a synthetic scene.

``isaaclab==2.3.2.post1`` from PyPI (``requirements-oracle.txt``, installed by
``./ws setup`` with ``--no-deps``) ships Isaac Lab's Python source under
``isaaclab/source/``. Its ``ObservationManager``, ``ActionManager``, action terms
and ``envs/mdp`` functions are plain torch, but their modules import the simulator
(``omni``, ``carb``, ``isaacsim``, ``pxr``), which is not installable. ``load()``
puts stand-ins for those modules into ``sys.modules`` of this (test) process only,
then imports the real Isaac Lab code. Nothing of the simulator is executed: the
stand-ins only have to survive import time and ``configclass``.

The synthetic scene replaces what PhysX and the renderer would fill: an
articulation's data tensors (joint positions, velocities, defaults, soft limits,
root orientation and body-frame velocities), a camera's ``data.output`` and a
command manager. Derived quantities are computed with Isaac Lab's own math, as
``ArticulationData`` does (``projected_gravity_b`` from the root quaternion).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
from pathlib import Path
import sys
import types
from typing import Mapping, Optional, Sequence

import numpy as np

# Simulator modules: never installable here, always replaced inside the test process.
SIMULATOR_ROOTS = ('omni', 'carb', 'isaacsim', 'pxr')
# Heavy or binary dependencies Isaac Lab imports at module level but the oracle never calls;
# replaced only when absent, and only while Isaac Lab is being imported.
OPTIONAL_ROOTS = ('warp', 'trimesh', 'h5py', 'scipy', 'gymnasium', 'hid', 'flatdict')
# Largest |difference| accepted between Isaac Lab and this workspace (float32 arithmetic).
TOLERANCE = 1e-6


class OracleUnavailable(RuntimeError):
    """Isaac Lab cannot be imported here; the message says why (tests skip with it)."""


# --------------------------------------------------------------------------- stand-ins
class _StandInType(type):
    """Type of stand-in classes: any attribute is another stand-in class."""

    def __getattr__(cls, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _stand_in(f'{cls.__name__}.{name}')

    def __getitem__(cls, item):
        return cls

    def __or__(cls, other):
        return cls

    def __ror__(cls, other):
        return cls

    def __iter__(cls):
        return iter(())

    def __bool__(cls):
        return False


class _StandIn(metaclass=_StandInType):
    """Instances accept any arguments; attributes and calls give more stand-ins."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _stand_in(name)

    def __call__(self, *args, **kwargs):
        return _stand_in('result')()


def _stand_in(name: str) -> type:
    # A class (not an instance) so that Isaac Lab may subclass, annotate or call it.
    return _StandInType(name, (_StandIn,), {})


class _StandInModule(types.ModuleType):
    """A package whose every attribute is a stand-in class."""

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _stand_in(f'{self.__name__}.{name}')


class _StandInLoader(importlib.abc.Loader):
    """Creates stand-in packages; there is no code to run."""

    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


class _StandInFinder(importlib.abc.MetaPathFinder):
    """Answers imports of the given top-level packages (and their submodules) with stand-ins."""

    def __init__(self, roots: Sequence[str]):
        self.roots = frozenset(roots)

    def find_spec(self, fullname, path, target=None):
        if fullname.split('.')[0] not in self.roots:
            return None
        return importlib.machinery.ModuleSpec(fullname, _StandInLoader(), is_package=True)


# --------------------------------------------------------------------------- loading
class _SourceFinder(importlib.abc.MetaPathFinder):
    """
    Finds Isaac Lab's packages in the wheel's ``source/<package>/<package>`` folders.

    Only these names: putting ``source/<package>`` on sys.path would also expose the
    ``test``, ``docs`` and ``config`` folders beside them as top-level modules.
    """

    PACKAGES = ('isaaclab', 'isaaclab_contrib', 'isaaclab_tasks', 'isaaclab_assets',
                'isaaclab_rl')

    def __init__(self, root: Path):
        self.folders = {p: str(root / p) for p in self.PACKAGES}

    def find_spec(self, fullname, path, target=None):
        folder = self.folders.get(fullname)
        return None if folder is None else importlib.machinery.PathFinder.find_spec(
            fullname, [folder])


def source_root() -> Path:
    """Folder holding Isaac Lab's packages (``isaaclab``, ``isaaclab_tasks``) in the wheel."""
    spec = importlib.util.find_spec('isaaclab')
    if spec is None or not spec.submodule_search_locations:
        raise OracleUnavailable('isaaclab is not installed (pip install --no-deps -r '
                                'requirements-oracle.txt; ./ws setup does it)')
    location = Path(list(spec.submodule_search_locations)[0])
    # The wheel's launcher package, or (once load() ran) the framework package inside it.
    root = location.parent.parent if (location / 'managers').is_dir() else location / 'source'
    if not (root / 'isaaclab' / 'isaaclab' / 'managers').is_dir():
        raise OracleUnavailable(f'isaaclab is installed but {root}/isaaclab/isaaclab is not '
                                f'the PyPI wheel layout this oracle reads')
    return root


def load() -> types.SimpleNamespace:
    """
    Import Isaac Lab's managers, mdp terms and math with simulator stand-ins.

    Returns a namespace of modules; raises OracleUnavailable with the reason.
    Calling it again returns the modules already imported.
    """
    root = source_root()
    if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        # Ahead of site-packages: the wheel's top-level ``isaaclab`` is a launcher that
        # boots Isaac Sim; the framework itself is source/isaaclab/isaaclab.
        sys.meta_path.insert(0, _SourceFinder(root))
    if not any(isinstance(f, _StandInFinder) and f.roots == frozenset(SIMULATOR_ROOTS)
               for f in sys.meta_path):
        sys.meta_path.insert(0, _StandInFinder(SIMULATOR_ROOTS))
    missing = [m for m in OPTIONAL_ROOTS if m not in sys.modules and
               importlib.util.find_spec(m) is None]
    optional = _StandInFinder(missing)
    sys.meta_path.append(optional)
    try:
        import isaaclab.envs  # noqa: F401 (first: managers <-> envs import each other)
        from isaaclab.envs import mdp
        from isaaclab.envs.mdp.actions import actions_cfg
        from isaaclab.managers import action_manager, observation_manager, \
            manager_term_cfg, scene_entity_cfg
        from isaaclab.sensors.ray_caster import patterns
        from isaaclab.utils import math as math_utils, string as string_utils
    except Exception as exc:  # noqa: B902 (any import failure means: no oracle here)
        raise OracleUnavailable(f'importing Isaac Lab from {root} failed: '
                                f'{type(exc).__name__}: {exc}') from exc
    finally:
        # Keep later imports in this process honest: an absent optional package must raise
        # ImportError again for code outside Isaac Lab.
        sys.meta_path.remove(optional)
        for name in [n for n in sys.modules if n.split('.')[0] in missing]:
            del sys.modules[name]
    return types.SimpleNamespace(
        root=root, mdp=mdp, actions_cfg=actions_cfg, ActionManager=action_manager.ActionManager,
        ObservationManager=observation_manager.ObservationManager,
        ObservationGroupCfg=manager_term_cfg.ObservationGroupCfg,
        ObservationTermCfg=manager_term_cfg.ObservationTermCfg,
        SceneEntityCfg=scene_entity_cfg.SceneEntityCfg, math=math_utils,
        string=string_utils, patterns=patterns)


def _load_files(files: Mapping[str, Path], roots: Sequence[str]) -> dict:
    """Execute Python files as private modules, with stand-ins for absent ``roots``."""
    roots = [m for m in roots if m not in sys.modules and importlib.util.find_spec(m) is None]
    finder = _StandInFinder(roots)
    sys.meta_path.append(finder)
    modules = {}
    try:
        for name, path in files.items():
            spec = importlib.util.spec_from_file_location(f'_isaaclab_oracle_{name}', path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module     # dataclasses look their module up there
            spec.loader.exec_module(module)
            modules[name] = module
    except Exception as exc:  # noqa: B902 (any failure means: that part of the oracle is absent)
        raise OracleUnavailable(f'importing {list(files.values())} failed: '
                                f'{type(exc).__name__}: {exc}') from exc
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n.split('.')[0] in roots]:
            del sys.modules[name]
    return modules


def load_task_module(il, dotted: str) -> types.ModuleType:
    """
    Import an ``isaaclab_tasks`` module that uses relative imports, by its dotted name.

    Its parent packages are registered empty (their ``__init__`` files import every
    task and register gym ids); absent optional packages get stand-ins while it loads.
    """
    parts = dotted.split('.')
    folder = il.root / 'isaaclab_tasks'
    for i in range(1, len(parts)):
        folder = folder / parts[i - 1]
        name = '.'.join(parts[:i])
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(folder)]
            sys.modules[name] = package
    roots = [m for m in OPTIONAL_ROOTS + ('torchvision',)
             if m not in sys.modules and importlib.util.find_spec(m) is None]
    finder = _StandInFinder(roots)
    sys.meta_path.append(finder)
    try:
        return importlib.import_module(dotted)
    except Exception as exc:  # noqa: B902 (any failure means: that part of the oracle is absent)
        raise OracleUnavailable(f'importing {dotted} failed: {type(exc).__name__}: {exc}') \
            from exc
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if n.split('.')[0] in roots]:
            del sys.modules[name]


def load_wrappers(il) -> types.SimpleNamespace:
    """
    Isaac Lab's RL-library wrappers (``isaaclab_rl``), whose ``step`` clips what the env sees.

    Loaded from their files, not through the package (its ``__init__`` imports every
    library); rsl_rl, rl_games, gym and tensordict get stand-ins while they load.
    """
    folder = il.root / 'isaaclab_rl' / 'isaaclab_rl'
    modules = _load_files({'rsl_rl': folder / 'rsl_rl' / 'vecenv_wrapper.py',
                           'rl_games': folder / 'rl_games' / 'rl_games.py'},
                          ('rsl_rl', 'rl_games', 'gym', 'gymnasium', 'tensordict'))
    return types.SimpleNamespace(rsl_rl=modules['rsl_rl'].RslRlVecEnvWrapper,
                                 rl_games=modules['rl_games'].RlGamesVecEnvWrapper,
                                 make_concat_plan=modules['rl_games'].make_concat_plan)


def load_or_skip() -> types.SimpleNamespace:
    """load(), or skip the calling test module with the reason."""
    import pytest
    try:
        return load()
    except OracleUnavailable as exc:
        pytest.skip(f'Isaac Lab oracle unavailable: {exc}', allow_module_level=True)


# --------------------------------------------------------------------------- synthetic scene
class ArticulationData:
    """The tensors of Isaac Lab's ``ArticulationData`` that observation and action terms read."""

    def __init__(self, il, joint_names: Sequence[str], default_joint_pos: Sequence[float],
                 soft_limits: Optional[Sequence[Sequence[float]]] = None):
        import torch
        n = len(joint_names)
        self._math = il.math
        self.joint_pos = torch.zeros(1, n)
        self.joint_vel = torch.zeros(1, n)
        self.default_joint_pos = torch.tensor([list(default_joint_pos)], dtype=torch.float32)
        self.default_joint_vel = torch.zeros(1, n)
        limits = soft_limits if soft_limits is not None else [(-3.5, 3.5)] * n
        self.soft_joint_pos_limits = torch.tensor([list(map(list, limits))],
                                                  dtype=torch.float32)
        self.joint_pos_limits = self.soft_joint_pos_limits.clone()
        self.joint_pos_target = torch.zeros(1, n)
        self.joint_vel_target = torch.zeros(1, n)
        self.joint_effort_target = torch.zeros(1, n)
        self.root_quat_w = torch.tensor([[1.0, 0.0, 0.0, 0.0]])  # (w, x, y, z), Isaac Lab order
        self.root_pos_w = torch.zeros(1, 3)
        self.root_lin_vel_b = torch.zeros(1, 3)
        self.root_ang_vel_b = torch.zeros(1, 3)
        self.GRAVITY_VEC_W = torch.tensor([[0.0, 0.0, -1.0]])

    @property
    def root_link_quat_w(self):
        """Root orientation (w, x, y, z); the synthetic root link is the base."""
        return self.root_quat_w

    @property
    def projected_gravity_b(self):
        """Gravity direction in the base frame, exactly as ``ArticulationData`` computes it."""
        return self._math.quat_apply_inverse(self.root_link_quat_w, self.GRAVITY_VEC_W)


class Articulation:
    """What Isaac Lab's terms use of an ``Articulation``: names, data, joint lookup, targets."""

    def __init__(self, il, joint_names: Sequence[str], default_joint_pos: Sequence[float],
                 soft_limits: Optional[Sequence[Sequence[float]]] = None):
        self._string = il.string
        self.joint_names = list(joint_names)
        self.num_joints = len(self.joint_names)
        self.data = ArticulationData(il, joint_names, default_joint_pos, soft_limits)

    def find_joints(self, name_keys, joint_subset=None, preserve_order=False):
        """Regex joint lookup, as ``Articulation.find_joints`` (Isaac Lab's own resolver)."""
        subset = self.joint_names if joint_subset is None else joint_subset
        return self._string.resolve_matching_names(name_keys, subset, preserve_order)

    def _set(self, buffer, target, joint_ids, env_ids):
        # Articulation.set_joint_*_target: fill the buffer only (PhysX reads it later).
        env_ids = slice(None) if env_ids is None else env_ids
        joint_ids = slice(None) if joint_ids is None else joint_ids
        buffer[env_ids, joint_ids] = target

    def set_joint_position_target(self, target, joint_ids=None, env_ids=None):
        """Record joint position targets."""
        self._set(self.data.joint_pos_target, target, joint_ids, env_ids)

    def set_joint_velocity_target(self, target, joint_ids=None, env_ids=None):
        """Record joint velocity targets."""
        self._set(self.data.joint_vel_target, target, joint_ids, env_ids)

    def set_joint_effort_target(self, target, joint_ids=None, env_ids=None):
        """Record joint effort targets."""
        self._set(self.data.joint_effort_target, target, joint_ids, env_ids)


class Camera:
    """A camera sensor: ``data.output[data_type]`` as (1, H, W, C) tensors, NHWC."""

    def __init__(self):
        self.data = types.SimpleNamespace(output={}, intrinsic_matrices=None)


class HeightScanner:
    """A RayCaster with a grid pattern: ``data.pos_w`` and ``data.ray_hits_w`` (1, rays, 3)."""

    def __init__(self, il, pattern):
        # Ray (x, y) offsets from Isaac Lab's own grid_pattern: the ray order is its order.
        starts, _ = il.patterns.grid_pattern(pattern, 'cpu')
        self.ray_xy = starts[:, :2].numpy()
        self.data = types.SimpleNamespace(pos_w=None, ray_hits_w=None)


class ImuData:
    """The Imu sensor data terms read; gravity rotated into the sensor frame as ``Imu`` does."""

    def __init__(self, il):
        import torch
        self._math = il.math
        self.quat_w = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
        self.ang_vel_b = torch.zeros(1, 3)
        self.lin_acc_b = torch.zeros(1, 3)
        self.GRAVITY_VEC_W = torch.tensor([[0.0, 0.0, -1.0]])

    @property
    def projected_gravity_b(self):
        """Gravity direction in the sensor frame (Imu._update_buffers_impl)."""
        return self._math.quat_apply_inverse(self.quat_w, self.GRAVITY_VEC_W)


class Scene:
    """``InteractiveScene`` lookups: ``scene[name]``, ``scene.keys()``, ``scene.sensors``."""

    def __init__(self, robot: Articulation, sensors: Mapping[str, object]):
        self.articulations = {'robot': robot}
        self.sensors = dict(sensors)

    def keys(self):
        """Names of every entity."""
        return list(self.articulations) + list(self.sensors)

    def __getitem__(self, name):
        return self.articulations.get(name) or self.sensors[name]


class CommandManager:
    """``env.command_manager.get_command(name)`` over fixed tensors."""

    def __init__(self):
        self.commands = {}

    def get_command(self, name):
        """Return the named command tensor (1, D)."""
        return self.commands[name]


class SyntheticEnv:
    """The parts of ``ManagerBasedEnv`` the managers and terms read; one env, on the CPU."""

    num_envs = 1
    device = 'cpu'

    def __init__(self, il, joint_names: Sequence[str], default_joint_pos: Sequence[float],
                 soft_limits: Optional[Sequence[Sequence[float]]] = None,
                 cameras: Sequence[str] = ('tiled_camera',),
                 scanners: Optional[Mapping[str, HeightScanner]] = None):
        self.il = il
        self.robot = Articulation(il, joint_names, default_joint_pos, soft_limits)
        self.scene = Scene(self.robot, {name: Camera() for name in cameras})
        self.scene.sensors.update(scanners or {})
        self.scene.sensors['imu'] = types.SimpleNamespace(data=ImuData(il))
        self.command_manager = CommandManager()
        # Scene entities resolve at construction (as after the simulation starts playing).
        self.sim = types.SimpleNamespace(is_playing=lambda: True)
        self.action_manager = None
        self.observation_manager = None
        self.cfg = types.SimpleNamespace(is_finite_horizon=False)
        self.physics = None
        self.reset_in_step = False
        # ManagerBasedRLEnv's episode clock: steps since the reset, step_dt, episode length.
        import torch
        self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long)
        self.step_dt = 0.02
        self.max_episode_length_s = 20.0

    def set_actions(self, terms: Mapping[str, object]) -> None:
        """Build Isaac Lab's ActionManager over action term cfgs, in order."""
        cfg = types.SimpleNamespace(**terms)
        self.action_manager = self.il.ActionManager(cfg, self)

    def set_observations(self, groups: Mapping[str, object]) -> None:
        """Build Isaac Lab's ObservationManager over {group name: ObservationGroupCfg}."""
        self.observation_manager = self.il.ObservationManager(dict(groups), self)

    def step(self, actions):
        """``ManagerBasedRLEnv.step`` for one policy step, no termination: the 5-tuple."""
        import torch
        self.action_manager.process_action(actions)
        self.action_manager.apply_action()
        if self.physics is not None:
            self.physics()      # the simulation moves the scene on before the observation
        self.episode_length_buf += 1
        if self.reset_in_step:
            # A terminated episode: _reset_idx runs before the step's observation.
            self.reset_in_step = False
            self.reset()
        obs = self.observation_manager.compute(update_history=True)
        zeros = torch.zeros(self.num_envs, dtype=torch.bool)
        return obs, torch.zeros(self.num_envs), zeros, zeros.clone(), {}

    @property
    def unwrapped(self):
        """Return the env itself (what the wrappers read cfg from)."""
        return self

    def reset(self) -> None:
        """Episode reset, in ManagerBasedEnv._reset_idx order (observations, then actions)."""
        import torch
        env_ids = torch.arange(self.num_envs)   # _reset_idx passes indices, never None
        self.episode_length_buf[env_ids] = 0
        for manager in (self.observation_manager, self.action_manager):
            if manager is not None:
                manager.reset(env_ids)


def group_cfg(il, terms: Mapping[str, object], **options) -> object:
    """Make an ObservationGroupCfg with the given terms, in order (as a configclass subclass)."""
    group = il.ObservationGroupCfg()
    group.concatenate_terms = True
    group.enable_corruption = False
    for key, value in options.items():
        setattr(group, key, value)
    for name, term in terms.items():
        setattr(group, name, term)
    return group


# --------------------------------------------------------------------------- env.yaml -> cfgs
def is_core(func_path: str) -> bool:
    """Tell whether an env.yaml func / class_type path is Isaac Lab's own code (in the wheel)."""
    return str(func_path).startswith('isaaclab.')


def _scene_entity(il, value):
    """Turn an env.yaml dict written from a SceneEntityCfg back into one (unresolved)."""
    if isinstance(value, Mapping) and 'name' in value and 'joint_ids' in value:
        fields = set(il.SceneEntityCfg.__dataclass_fields__)
        return il.SceneEntityCfg(**{k: v for k, v in value.items() if k in fields})
    return value


def observation_term_from_yaml(il, cfg: Mapping) -> object:
    """Isaac Lab's ObservationTermCfg for an env.yaml term, without noise (as deployed)."""
    def tuple_or(value):
        return tuple(value) if isinstance(value, (list, tuple)) else value
    return il.ObservationTermCfg(
        func=il.string.string_to_callable(cfg['func']),
        params={k: _scene_entity(il, v) for k, v in (cfg.get('params') or {}).items()},
        scale=tuple_or(cfg.get('scale')), clip=tuple_or(cfg.get('clip')),
        history_length=int(cfg.get('history_length') or 0),
        flatten_history_dim=bool(cfg.get('flatten_history_dim', True)))


def action_term_from_yaml(il, cfg: Mapping) -> object:
    """Isaac Lab's action term cfg for an env.yaml action entry (by its class_type)."""
    cls = il.string.string_to_callable(cfg['class_type'])
    for candidate in vars(il.actions_cfg).values():
        if isinstance(candidate, type) and getattr(candidate, 'class_type', None) is cls:
            fields = set(candidate.__dataclass_fields__)
            return candidate(**{k: v for k, v in cfg.items() if k in fields and
                                k != 'class_type'})
    raise LookupError(f'no action cfg class in isaaclab.envs.mdp.actions for {cls}')


def default_joint_pos(il, env: Mapping, joint_names: Sequence[str]) -> list:
    """Defaults as ``Articulation._process_cfg`` resolves init_state.joint_pos (others 0)."""
    init = (((env.get('scene') or {}).get('robot') or {}).get('init_state') or {})
    values = [0.0] * len(joint_names)
    index, _, value = il.string.resolve_matching_names_values(init.get('joint_pos') or {},
                                                              list(joint_names))
    for i, v in zip(index, value):
        values[i] = float(v)
    return values


def soft_limits(il, env: Mapping, joint_names: Sequence[str],
                hard: Optional[Mapping[str, Sequence[float]]]) -> Optional[list]:
    """Soft limits as ``Articulation`` computes them from the hard ones (None if none given)."""
    import torch
    if not hard:
        return None
    factor = float(((env.get('scene') or {}).get('robot') or {}).get(
        'soft_joint_pos_limit_factor') or 1.0)
    limits = torch.tensor([list(hard[n]) for n in joint_names], dtype=torch.float32)
    mean = (limits[..., 0] + limits[..., 1]) / 2
    span = limits[..., 1] - limits[..., 0]
    return torch.stack([mean - 0.5 * span * factor, mean + 0.5 * span * factor], -1).tolist()


def to_numpy(tensor) -> np.ndarray:
    """First env of a (1, ...) tensor, as float32 numpy."""
    return tensor[0].detach().cpu().numpy().astype(np.float32)


def max_abs_diff(a, b) -> float:
    """Largest |a - b| (NaN counts as an infinite difference unless both are NaN)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f'shapes differ: Isaac Lab {a.shape}, workspace {b.shape}'
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    return float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))


def max_rel_diff(a, b) -> float:
    """
    Largest |a - b| / max(1, |a|): float32 rounding of values above 1 scales with them.

    Isaac Lab computes in float32; where this workspace computes in float64 (action
    targets) a value of 90 may differ by one float32 step, 7.6e-6, which is 8e-8 of it.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f'shapes differ: Isaac Lab {a.shape}, workspace {b.shape}'
    diff = np.abs(a - b) / np.maximum(1.0, np.abs(a))
    return float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))


def report(row: str, function: str, diff: float, note: str = '',
           rel: Optional[float] = None) -> None:
    """Print one line of the parity table (collected with ``pytest -s | grep ORACLE``)."""
    scaled = '' if rel is None else f' ({rel:.2g} of max(1, |value|))'
    print(f'ORACLE | {row} | {function} | {diff:.3g}{scaled} | {note}')
