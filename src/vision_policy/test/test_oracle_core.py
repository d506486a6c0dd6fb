"""
The whole tick through ``PolicyCore`` and the real spot policy, against Isaac Lab's managers.

The spot fixture's card (``import_run``) drives ``PolicyCore`` with its exported
ONNX network on onnxruntime; Isaac Lab's ``ObservationManager`` and
``ActionManager`` are built from the same env.yaml (test_oracle_fixtures.py).
Each tick both see the same robot state; Isaac Lab gets the network's raw output
through ``ActionManager.process_action`` (so its ``last_action`` is the core's
previous output), and the core's observation input and mapped targets are
compared with Isaac Lab's, over 100 ticks with an episode reset (``core.reset()``).
"""

import isaaclab_oracle as oracle
import numpy as np
import pytest
from test_isaaclab_fixtures import SPOT
from test_oracle_fixtures import from_env_yaml
from vision_policy.action import SafetyLimits
from vision_policy.core import PolicyCore
from vision_policy.isaaclab.importer import import_run
from vision_policy.runtime import open_session, PolicyRuntime, RuntimeOptions

il = oracle.load_or_skip()
torch = pytest.importorskip('torch')

RUN = 'spot_arm_standing__DevMarkusLejon_RLonSpot'
TICKS = 100
RESET = 60


def test_policy_core_tick_matches_isaaclab(fixtures_dir):
    result = import_run(fixtures_dir / RUN, joint_names=SPOT)
    assert result.card is not None, result.report.render()
    card = result.card
    session = open_session(fixtures_dir / RUN / 'exported' / 'policy.onnx',
                           RuntimeOptions(providers=('CPUExecutionProvider',)))
    core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs, 0),
                      SafetyLimits.build(len(card.action.joint_names), [-10.0], [10.0], [10.0]))
    rig = from_env_yaml(fixtures_dir / RUN, SPOT)
    assert not rig.skipped
    order = [SPOT.index(n) for n in card.action.joint_names]
    obs_worst, act_worst, raw_seen = 0.0, 0.0, 0.0
    for tick in range(TICKS):
        pos, vel = rig.draw()
        if tick in (0, RESET):
            rig.env.reset()
            core.reset()
        expected = oracle.to_numpy(rig.env.observation_manager.compute(
            update_history=True)[rig.group])
        core.set_extras(rig.extras)
        core.step(pos, vel)
        obs_worst = max(obs_worst, oracle.max_abs_diff(expected, core.tick.inputs['obs'][0]))
        raw = np.array(core.tick.raw, dtype=np.float32)
        raw_seen = max(raw_seen, float(np.abs(raw).max()))
        rig.env.action_manager.process_action(torch.from_numpy(raw)[None])
        rig.env.action_manager.apply_action()
        targets = oracle.to_numpy(rig.env.robot.data.joint_pos_target)[order]
        act_worst = max(act_worst, oracle.max_rel_diff(targets, core.tick.targets))
    oracle.report('PolicyCore tick, spot policy on onnxruntime: observation',
                  'ObservationManager from env.yaml', obs_worst,
                  'last_action = the previous output of the core; zeros after core.reset()')
    oracle.report('PolicyCore tick, spot policy on onnxruntime: targets',
                  'JointPositionAction x 2 from env.yaml', act_worst,
                  f'before the safety filter; |raw| up to {raw_seen:.2f}')
    assert obs_worst <= oracle.TOLERANCE and act_worst <= oracle.TOLERANCE
