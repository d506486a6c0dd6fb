"""
The importer's cards for real Isaac Lab runs against Isaac Lab built from the same env.yaml.

For each manager-based fixture in ``../shared/fixtures/isaaclab``, Isaac Lab's
own ``ObservationManager`` and ``ActionManager`` are built from the fixture's
``params/env.yaml`` term configs (same func, params, scale, clip, history; noise
off, as deployed) on a synthetic scene whose joint defaults Isaac Lab resolves
itself from ``init_state``. The importer's translation of the same file (what
``vision_policy_import`` writes into the card) then runs through this workspace's
``ObservationBuilder`` and ``ActionMapper`` on the same samples, 100 ticks with
resets. Compared: every actor-group term that is Isaac Lab core code and that the
importer maps to a built-in term, and every core action term. Project terms
(served by plugins) have no Isaac Lab code in the wheel to run; they are listed.
"""

import isaaclab_oracle as oracle
import numpy as np
import pytest
from test_isaaclab_fixtures import G1_29, SO101, SPOT
from vision_policy.action import ActionMapper
from vision_policy.card import card_from_dict
from vision_policy.isaaclab import env_yaml
from vision_policy.isaaclab.importer import import_run
from vision_policy.isaaclab.report import ImportReport
from vision_policy.isaaclab.yaml_loader import load_file
from vision_policy.observation import ObservationBuilder, Sample
from vision_policy.registry import load_registry, OBSERVATION_GROUP

il = oracle.load_or_skip()
torch = pytest.importorskip('torch')

TICKS = 100
RESETS = (0, 50)
RUNS = {
    'spot_arm_standing__DevMarkusLejon_RLonSpot': SPOT,
    'g1_mimic__andyzong16_Isaaclab_Training': G1_29,
    'so101_pickplace_bowl__JianwenCao_robot_learning': SO101,
}


class FixtureRig:
    """Isaac Lab from env.yaml and the importer's card from env.yaml, on the same scene."""

    def __init__(self, run_dir, joints, agent=None):
        self.joints = list(joints)
        self.env_cfg = load_file(run_dir / 'params' / 'env.yaml')
        agent = load_file(run_dir / 'params' / 'agent.yaml') if agent is None else agent
        report = ImportReport(source=str(run_dir))
        self.tr = env_yaml.translate(self.env_cfg, agent, self.joints, report)
        builtin = {n for g, n in load_registry().builtin if g == OBSERVATION_GROUP}
        lines = [t for t in report.terms if t.supported and t.group == self.tr.group]
        assert len(lines) == len(self.tr.terms)
        group_cfg = self.env_cfg['observations'][self.tr.group]
        # (env.yaml term name, env.yaml term cfg, card term) for the terms compared here
        self.compared, self.not_compared = [], []
        for line, card_term in zip(lines, self.tr.terms):
            yaml_term = group_cfg[line.name]
            if oracle.is_core(yaml_term['func']) and card_term['name'] in builtin:
                self.compared.append((line.name, yaml_term, card_term))
            else:
                self.not_compared.append(f'{line.name} ({line.source} -> {card_term["name"]})')
        self.defaults = oracle.default_joint_pos(il, self.env_cfg, self.joints)
        self.env = oracle.SyntheticEnv(il, self.joints, self.defaults)
        actions = {name: cfg for name, cfg in (self.env_cfg.get('actions') or {}).items()
                   if cfg is not None}
        self.actions_core = all(oracle.is_core(c['class_type']) for c in actions.values())
        if self.actions_core:
            self.env.set_actions({n: oracle.action_term_from_yaml(il, c)
                                  for n, c in actions.items()})
        self.commands = sorted({t[1]['params']['command_name'] for t in self.compared
                                if t[1]['func'].endswith(':generated_commands')})
        for name in self.commands:
            self.env.command_manager.commands[name] = torch.zeros(1, 3)
        self.rng = np.random.default_rng(0)
        self.extras = {}
        self.draw()
        il_group = oracle.group_cfg(il, {n: oracle.observation_term_from_yaml(il, c)
                                         for n, c, _ in self.compared},
                                    history_length=group_cfg.get('history_length'),
                                    flatten_history_dim=group_cfg.get('flatten_history_dim',
                                                                      True))
        self.env.set_observations({self.tr.group: il_group})
        width = self.env.observation_manager.group_obs_dim[self.tr.group]
        self.card = card_from_dict({
            'control_dt': self.tr.control_dt, 'joint_names': self.joints,
            'default_joint_pos': list(self.tr.default_joint_pos),
            'inputs': [{'name': 'obs', 'shape': [1, *width], 'group': self.tr.group}],
            'observations': {self.tr.group: {'terms': [t for _, _, t in self.compared]}},
            'action': self.tr.action})

    def draw(self):
        """Random robot state, IMU and commands into the scene; returns joint pos, vel."""
        rng, data = self.rng, self.env.robot.data
        n = len(self.joints)
        pos = (np.asarray(self.defaults) + rng.uniform(-0.5, 0.5, n)).astype(np.float32)
        vel = rng.uniform(-10.0, 10.0, n).astype(np.float32)
        quat = rng.normal(size=4)
        quat = (quat / np.linalg.norm(quat)).astype(np.float32)
        ang_vel, lin_vel = (rng.uniform(-2.0, 2.0, 3).astype(np.float32) for _ in range(2))
        data.joint_pos[0], data.joint_vel[0] = torch.from_numpy(pos), torch.from_numpy(vel)
        data.root_quat_w[0] = torch.from_numpy(quat)
        data.root_ang_vel_b[0], data.root_lin_vel_b[0] = (torch.from_numpy(ang_vel),
                                                          torch.from_numpy(lin_vel))
        self.extras = {'imu_orientation': quat[[1, 2, 3, 0]], 'imu_angular_velocity': ang_vel,
                       'base_lin_vel': lin_vel}
        for name in self.commands:
            command = rng.uniform(-1.0, 1.0, 3).astype(np.float32)
            self.env.command_manager.commands[name][0] = torch.from_numpy(command)
            self.extras['velocity_command'] = command
        return pos, vel

    def run(self):
        """(max |obs difference|, max scaled |target difference| or None) over the ticks."""
        builder = ObservationBuilder(self.card)
        mapper = ActionMapper(self.card) if self.actions_core else None
        last_action = np.zeros(len(self.card.action.joint_names) if mapper is None
                               else mapper.width, dtype=np.float32)
        obs_worst, act_worst = 0.0, None if mapper is None else 0.0
        for tick in range(TICKS):
            pos, vel = self.draw()
            if tick in RESETS:
                self.env.reset()
                builder.reset()
                last_action[:] = 0.0
                if mapper is not None:
                    mapper.reset()
            expected = oracle.to_numpy(self.env.observation_manager.compute(
                update_history=True)[self.tr.group])
            got = builder.build(Sample(joint_pos=pos, joint_vel=vel,
                                       last_action=last_action.copy(),
                                       extras=self.extras))['obs'][0]
            obs_worst = max(obs_worst, oracle.max_abs_diff(expected, got))
            if mapper is None:
                continue
            raw = self.rng.normal(0.0, 1.5, mapper.width).astype(np.float32)
            self.env.action_manager.process_action(torch.from_numpy(raw)[None])
            self.env.action_manager.apply_action()
            targets = oracle.to_numpy(self.env.robot.data.joint_pos_target)
            order = [self.joints.index(n) for n in mapper.joint_names]
            act_worst = max(act_worst, oracle.max_rel_diff(targets[order],
                                                           mapper.map(raw, pos)))
            last_action[:] = raw
        return obs_worst, act_worst


@pytest.mark.parametrize('run', sorted(RUNS))
def test_fixture_card_matches_isaaclab(fixtures_dir, run):
    rig = FixtureRig(fixtures_dir / run, RUNS[run])
    # The defaults (offsets of joint_pos_rel and of the actions) as Isaac Lab resolves them.
    assert oracle.max_abs_diff(rig.defaults, rig.tr.default_joint_pos) == 0.0
    assert rig.compared, 'no term to compare'
    obs, act = rig.run()
    names = ', '.join(n for n, _, _ in rig.compared)
    oracle.report(f'fixture {run.split("__")[0]} observation ({names})',
                  'ObservationManager from env.yaml', obs,
                  'not compared (project terms, no Isaac Lab code): ' +
                  (', '.join(rig.not_compared) or 'none'))
    assert obs <= oracle.TOLERANCE
    if act is not None:
        classes = sorted({c['class_type'].rsplit(':', 1)[1]
                          for c in rig.env_cfg['actions'].values() if c})
        oracle.report(f'fixture {run.split("__")[0]} actions', ' + '.join(classes) +
                      ' from env.yaml', act, 'scaled |difference| (targets)')
        assert act <= oracle.TOLERANCE


@pytest.mark.parametrize('run', sorted(RUNS))
def test_fixture_card_is_the_translation(fixtures_dir, run):
    # The card vision_policy_import writes carries the translated terms and actions verbatim.
    result = import_run(fixtures_dir / run, joint_names=RUNS[run])
    if result.card_data is None:
        pytest.skip(f'the importer wrote no card for {run}: {result.report.problems}')
    rig = FixtureRig(fixtures_dir / run, RUNS[run])
    group = result.card_data['observations'][rig.tr.group]
    assert group['terms'] == list(rig.tr.terms)
    assert result.card_data['action'] == rig.tr.action
