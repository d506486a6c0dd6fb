"""
What the RL library's wrapper does between policy and env, against Isaac Lab's own wrappers.

Training runs the env inside ``isaaclab_rl``'s wrapper: rsl_rl's
``RslRlVecEnvWrapper.step`` clamps the raw action to ``clip_actions`` before the
env sees it (so the targets *and* ``last_action`` see the clamped value), and
rl_games' ``RlGamesVecEnvWrapper`` clamps the actions and then every observation
to ``clip_observations`` (after the manager's clip and scale). The real wrapper
``step`` runs here over Isaac Lab's managers built from the spot fixture's
env.yaml, with an agent.yaml that sets those clips; the importer's card for the
same files runs through this workspace on the same samples.
"""

import functools
import types

import isaaclab_oracle as oracle
import numpy as np
import pytest
from test_isaaclab_fixtures import SPOT
from test_oracle_fixtures import from_env_yaml
from vision_policy.action import ActionMapper
from vision_policy.isaaclab.yaml_loader import load_file
from vision_policy.observation import ObservationBuilder, Sample

il = oracle.load_or_skip()
torch = pytest.importorskip('torch')
try:
    wrappers = oracle.load_wrappers(il)
except oracle.OracleUnavailable as exc:
    pytest.skip(str(exc), allow_module_level=True)

RUN = 'spot_arm_standing__DevMarkusLejon_RLonSpot'
TICKS = 100
RESET = 55      # an episode ends inside this step


def wrapped(rig, library, clip_actions, clip_obs=None):
    """Give (step(actions) -> obs, obs after reset) through the wrapper's own ``step``."""
    env, group = rig.env, rig.group
    if library == 'rsl_rl':
        this = types.SimpleNamespace(clip_actions=clip_actions, env=env, unwrapped=env, num_envs=1)

        def step(actions):
            wrappers.rsl_rl.step(this, actions)
            # rsl_rl hands the policy the manager's output unchanged (its TensorDict).
            return env.observation_manager._obs_buffer[group]
        return step, lambda obs: obs[group]
    shape = env.observation_manager.group_obs_dim[group]
    this = types.SimpleNamespace(
        _sim_device='cpu', _rl_device='cpu', _clip_actions=clip_actions, _clip_obs=clip_obs,
        env=env, unwrapped=env, _obs_groups={'obs': [group], 'states': []},
        _concate_obs_groups=True, _obs_concat_fn=wrappers.make_concat_plan([shape])[1])
    this._process_obs = functools.partial(wrappers.rl_games._process_obs, this)
    return (lambda actions: wrappers.rl_games.step(this, actions)[0]['obs'],
            lambda obs: this._process_obs(obs)['obs'])


def run(rig, library, clip_actions, clip_obs=None):
    """Max (|obs difference|, scaled |target difference|) over the ticks."""
    step, first = wrapped(rig, library, clip_actions, clip_obs)
    builder, mapper = ObservationBuilder(rig.card), ActionMapper(rig.card)
    rng = np.random.default_rng(1)
    raw = np.zeros(mapper.width, dtype=np.float32)
    order = [rig.joints.index(n) for n in mapper.joint_names]
    velocity = [i for i, n in enumerate(mapper.joint_names) if n in mapper.velocity_joints]
    kinds = ((rig.env.robot.data.joint_pos_target, [i for i in range(len(order))
                                                    if i not in velocity]),
             (rig.env.robot.data.joint_vel_target, velocity))
    state = {}

    def physics():
        state['pos'], state['vel'] = rig.draw()
    rig.env.physics = physics
    physics()
    pending = None      # this workspace's targets for the raw action the env applies next
    obs_worst, act_worst = 0.0, 0.0
    for tick in range(TICKS):
        if tick == 0:
            rig.env.reset()
            expected = first(rig.env.observation_manager.compute(update_history=True))
        else:
            # Last tick's raw action through the wrapper into the env, applied to the state
            # it was computed from; then the scene moves on and the env observes it.
            rig.env.reset_in_step = tick == RESET
            expected = step(torch.from_numpy(raw)[None])
            for buffer, index in kinds:
                targets = oracle.to_numpy(buffer)[order]
                act_worst = max(act_worst, oracle.max_rel_diff(targets[index],
                                                               pending[index]))
        if tick == RESET:
            # What PolicyCore.reset does: history, last action, moving averages.
            builder.reset()
            mapper.reset()
            raw[:] = 0.0
        sample = Sample(joint_pos=state['pos'], joint_vel=state['vel'], last_action=raw.copy(),
                        extras=rig.extras)
        got = builder.build(sample)['obs'][0]
        obs_worst = max(obs_worst, oracle.max_abs_diff(oracle.to_numpy(expected), got))
        raw = rng.normal(0.0, 1.5, mapper.width).astype(np.float32)   # often beyond +-1
        pending = mapper.map(raw, state['pos']).copy()
    return obs_worst, act_worst


def test_rsl_rl_clip_actions(fixtures_dir):
    agent = load_file(fixtures_dir / RUN / 'params' / 'agent.yaml')
    agent['clip_actions'] = 1.0
    obs, act = run(from_env_yaml(fixtures_dir / RUN, SPOT, agent), 'rsl_rl', 1.0)
    oracle.report('rsl_rl clip_actions 1.0 (spot): observation', 'RslRlVecEnvWrapper.step', obs,
                  'last_action observes the clamped raw action: the importer clips the term')
    oracle.report('rsl_rl clip_actions 1.0 (spot): targets', 'RslRlVecEnvWrapper.step', act,
                  'the clamp folded into the target clip')
    assert obs <= oracle.TOLERANCE and act <= oracle.TOLERANCE


def test_rl_games_clip_observations_and_actions(fixtures_dir):
    agent = {'params': {'env': {'clip_observations': 5.0, 'clip_actions': 1.0}}}
    obs, act = run(from_env_yaml(fixtures_dir / RUN, SPOT, agent), 'rl_games', 1.0, 5.0)
    oracle.report('rl_games clip_observations 5, clip_actions 1 (spot): observation',
                  'RlGamesVecEnvWrapper.step + _process_obs', obs,
                  'the clamp after scale, folded into each term clip')
    oracle.report('rl_games clip_observations 5, clip_actions 1 (spot): targets',
                  'RlGamesVecEnvWrapper.step', act, 'the clamp folded into the target clip')
    assert obs <= oracle.TOLERANCE and act <= oracle.TOLERANCE
