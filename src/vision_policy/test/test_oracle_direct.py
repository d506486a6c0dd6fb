"""
Isaac Lab's direct cartpole camera tasks: the importer's card against the task's own code.

``isaaclab_tasks``' ``CartpoleCameraEnv`` (Isaac Lab 2.3) runs here on a synthetic
camera and cartpole: its ``_get_observations``, ``_pre_physics_step`` and
``_apply_action``, inside rl_games' ``RlGamesVecEnvWrapper.step`` (the fixture was
trained with rl_games, ``clip_observations`` 5, ``clip_actions`` 1). The card
``vision_policy_import`` writes from the fixture's env.yaml (RGB), and from an
env.yaml written as Isaac Lab writes it (``yaml.dump(class_to_dict(cfg))``) from the
depth task's own ``CartpoleDepthCameraEnvCfg``, is run through this workspace's image
pipeline and observation builder on the same frames, 100 ticks each.
"""

import functools
import types

import isaaclab_oracle as oracle
import numpy as np
import pytest
from vision_policy.card import card_from_dict
from vision_policy.image import ImagePipeline, view_image
from vision_policy.isaaclab import direct_env
from vision_policy.isaaclab.importer import import_run
from vision_policy.isaaclab.report import ImportReport
from vision_policy.isaaclab.yaml_loader import load_file
from vision_policy.isaaclab.yaml_loader import load_text
from vision_policy.observation import ObservationBuilder, Sample
import yaml

il = oracle.load_or_skip()
torch = pytest.importorskip('torch')
from isaaclab.utils import class_to_dict  # noqa: E402,I100 (importable after load())
try:
    task = oracle.load_task_module(il, 'isaaclab_tasks.direct.cartpole.cartpole_camera_env')
    wrappers = oracle.load_wrappers(il)
except oracle.OracleUnavailable as exc:
    pytest.skip(str(exc), allow_module_level=True)

RUN = 'cartpole_rgb_camera_direct__minseo104_IsaacLab_UR_reach'
TICKS = 100
CFGS = {'rgb': task.CartpoleRGBCameraEnvCfg, 'depth': task.CartpoleDepthCameraEnvCfg}


def dumped(cfg):
    """Return env.yaml as Isaac Lab's train.py writes it for a cfg, parsed by the importer."""
    return load_text(yaml.dump(class_to_dict(cfg)), type(cfg).__name__)


def fixture_files(fixtures_dir, variant):
    """(env.yaml, agent.yaml): the fixture's run; for depth, the depth task's own cfg."""
    env = load_file(fixtures_dir / RUN / 'params' / 'env.yaml')
    agent = load_file(fixtures_dir / RUN / 'params' / 'agent.yaml')
    return (env if variant == 'rgb' else dumped(CFGS['depth']())), agent


class CartpoleRig:
    """CartpoleCameraEnv's own methods over a synthetic cartpole and camera, rl_games-wrapped."""

    def __init__(self, cfg, clip_obs, clip_actions):
        self.cfg = cfg
        camera = oracle.Camera()
        cartpole = oracle.Articulation(il, ['slider_to_cart', 'cart_to_pole'], [0.0, 0.0])
        env = types.SimpleNamespace(
            cfg=cfg, _tiled_camera=camera, _cartpole=cartpole, action_scale=cfg.action_scale,
            _cart_dof_idx=cartpole.find_joints(cfg.cart_dof_name)[0], device='cpu')
        env.unwrapped = env
        env.cfg.is_finite_horizon = False

        def step(actions):
            # DirectRLEnv.step for one policy step: pre-physics, apply per substep, observe.
            task.CartpoleCameraEnv._pre_physics_step(env, actions)
            for _ in range(cfg.decimation):
                task.CartpoleCameraEnv._apply_action(env)
            obs = task.CartpoleCameraEnv._get_observations(env)
            zeros = torch.zeros(1, dtype=torch.bool)
            return obs, torch.zeros(1), zeros, zeros.clone(), {}
        env.step = step
        shape = tuple(cfg.observation_space)
        this = types.SimpleNamespace(
            _sim_device='cpu', _rl_device='cpu', _clip_actions=clip_actions, _clip_obs=clip_obs,
            env=env, unwrapped=env, _obs_groups={'obs': ['policy'], 'states': []},
            _concate_obs_groups=True, _obs_concat_fn=wrappers.make_concat_plan([shape])[1])
        this._process_obs = functools.partial(wrappers.rl_games._process_obs, this)
        self.wrapper, self.env, self.camera, self.cartpole = this, env, camera, cartpole

    def step(self, frame, raw):
        """One wrapped step: (observation the network sees, effort targets)."""
        key = 'rgb' if 'rgb' in self.cfg.tiled_camera.data_types else 'depth'
        self.camera.data.output[key] = frame
        obs = wrappers.rl_games.step(self.wrapper, torch.from_numpy(raw)[None])[0]['obs']
        return oracle.to_numpy(obs), oracle.to_numpy(self.cartpole.data.joint_effort_target)


def workspace(card_data):
    """Build this workspace's pipeline and builder for the card's observation side."""
    # The node has no effort action term (the card says so); the observation side is
    # independent of it, so it is built here with a position placeholder.
    data = dict(card_data, action={'joint_names': ['slider_to_cart']})
    card = card_from_dict(data)
    return card, ImagePipeline(card.image), ObservationBuilder(card)


@pytest.mark.parametrize('variant', ['rgb', 'depth'])
def test_cartpole_card_matches_the_task(fixtures_dir, variant):
    env, agent = fixture_files(fixtures_dir, variant)
    assert direct_env.recognise(env) is direct_env.CARTPOLE_CAMERA
    cfg = CFGS[variant]()
    # The env.yaml is the task's own cfg: the fields the card is made from agree with it.
    for key in ('action_scale', 'decimation', 'cart_dof_name', 'pole_dof_name'):
        assert env[key] == getattr(cfg, key), key
    assert env['tiled_camera']['data_types'] == list(cfg.tiled_camera.data_types)
    size = [cfg.tiled_camera.height, cfg.tiled_camera.width]
    assert [env['tiled_camera'][k] for k in ('height', 'width')] == size
    report = ImportReport(source=RUN)
    data = direct_env.cartpole_card(env, agent, report)
    assert data is not None and report.ok, report.render()
    clip_obs = agent['params']['env']['clip_observations']
    clip_actions = agent['params']['env']['clip_actions']
    rig = CartpoleRig(cfg, clip_obs, clip_actions)
    card, pipeline, builder = workspace(data)
    assert card.inputs[0].shape == (1, *cfg.observation_space)
    term = data['action']['terms'][0]
    rng = np.random.default_rng(2)
    height, width, channels = cfg.observation_space
    obs_worst, act_worst = 0.0, 0.0
    for _ in range(TICKS):
        if variant == 'rgb':
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            frame, encoding = torch.from_numpy(image.copy())[None], 'rgb8'
        else:
            # clipping_range (0.1, 20) m; no return: +inf
            image = rng.uniform(0.1, 20.0, (height, width)).astype(np.float32)
            image[rng.random((height, width)) < 0.1] = np.inf
            frame, encoding = torch.from_numpy(image.copy())[None, :, :, None], '32FC1'
        raw = rng.normal(0.0, 1.5, 1).astype(np.float32)
        expected, efforts = rig.step(frame, raw)
        view = view_image(image.tobytes(), width, height, encoding, image.strides[0])
        sample = Sample(joint_pos=np.zeros(2, np.float32), joint_vel=np.zeros(2, np.float32),
                        last_action=np.zeros(1, np.float32),
                        images={'': pipeline.process(view, encoding)})
        got = builder.build(sample)['obs'][0]
        obs_worst = max(obs_worst, oracle.max_abs_diff(expected, got))
        # The card's effort mapping: clip(raw x scale + offset).
        target = np.clip(raw * term['scale'] + term['offset'], *term['clip'][0])
        act_worst = max(act_worst, oracle.max_rel_diff(efforts[rig.env._cart_dof_idx], target))
    oracle.report(f'direct Cartpole-{variant.upper()}-Camera observation',
                  'CartpoleCameraEnv._get_observations + RlGamesVecEnvWrapper', obs_worst,
                  'NHWC; rgb /255 - per-image mean' if variant == 'rgb' else
                  'NHWC; +inf -> 0; clip_observations 5 -> max_depth 5')
    oracle.report(f'direct Cartpole-{variant.upper()}-Camera action (effort, card data)',
                  'CartpoleCameraEnv._pre_physics_step + _apply_action', act_worst,
                  'effort = 100 x clamp(raw, -1, 1); no built-in effort term: the node '
                  'refuses the card')
    assert obs_worst <= oracle.TOLERANCE and act_worst <= oracle.TOLERANCE


def test_importer_writes_the_complete_cartpole_card(fixtures_dir):
    result = import_run(fixtures_dir / RUN)
    assert result.card is None and result.card_data is not None
    assert [p.what for p in result.report.problems] == ['action']
    assert 'FILL_ME' not in result.template
    assert card_from_dict(result.card_data).image.normalize == 'isaaclab'
    assert result.card_data['joint_names'] == ['slider_to_cart', 'cart_to_pole']


def test_isaaclab_direct_camera_tasks_are_recognised_from_their_own_cfg():
    vision = oracle.load_task_module(
        il, 'isaaclab_tasks.direct.shadow_hand.shadow_hand_vision_env')
    plain = oracle.load_task_module(il, 'isaaclab_tasks.direct.shadow_hand.shadow_hand_env_cfg')
    for cfg, expected in ((task.CartpoleRGBCameraEnvCfg(), direct_env.CARTPOLE_CAMERA),
                          (task.CartpoleDepthCameraEnvCfg(), direct_env.CARTPOLE_CAMERA),
                          (vision.ShadowHandVisionEnvCfg(), direct_env.SHADOW_HAND_VISION),
                          (plain.ShadowHandEnvCfg(), None)):
        env = dumped(cfg)
        assert direct_env.is_direct(env)
        assert direct_env.recognise(env) is expected, type(cfg).__name__


def test_cartpole_space_variants_are_refused():
    # cartpole_showcase's envs share CartpoleCameraEnvCfg's fields but not its spaces.
    env = dumped(task.CartpoleRGBCameraEnvCfg())
    env['action_space'] = {'n': 3}                     # a Discrete action
    report = ImportReport(source='showcase')
    assert direct_env.cartpole_card(env, None, report) is None
    assert [p.what for p in report.problems] == ['spaces']


def test_importer_refuses_the_shadow_hand_vision_task(tmp_path):
    vision = oracle.load_task_module(
        il, 'isaaclab_tasks.direct.shadow_hand.shadow_hand_vision_env')
    (tmp_path / 'params').mkdir()
    (tmp_path / 'params' / 'env.yaml').write_text(
        yaml.dump(class_to_dict(vision.ShadowHandVisionEnvCfg())))
    result = import_run(tmp_path)
    assert result.card_data is None and result.template is None
    assert 'FeatureExtractor' in result.report.problems[0].reason
