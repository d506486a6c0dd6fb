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


class ParityRig:
    """Isaac Lab's managers and a workspace card on one synthetic scene, tick by tick."""

    def __init__(self, joints, defaults, il_terms, group_options, card_terms, card,
                 il_actions, group='policy', commands=(), soft_limits=None, scanners=None):
        self.joints, self.defaults, self.group = list(joints), list(defaults), group
        # name -> Isaac Lab GridPatternCfg of a height scanner (one at most feeds the card)
        self.patterns = dict(scanners or {})
        self.env = oracle.SyntheticEnv(il, self.joints, self.defaults, soft_limits, scanners={
            n: oracle.HeightScanner(il, p) for n, p in self.patterns.items()})
        self.actions_core = il_actions is not None
        if self.actions_core:
            self.env.set_actions(il_actions)
        # command name -> 'velocity' or 'pose' / 'pose_unique' (make_quat_unique)
        self.commands = dict(commands)
        for name, kind in self.commands.items():
            self.env.command_manager.commands[name] = torch.zeros(1, 3 if kind == 'velocity'
                                                                  else 7)
        self.rng = np.random.default_rng(0)
        self.extras = {}
        self.draw()     # the managers call each term once at construction
        self.env.set_observations({group: oracle.group_cfg(il, il_terms, **group_options)})
        width = self.env.observation_manager.group_obs_dim[group]
        self.card = card_from_dict({
            **card, 'inputs': [{'name': 'obs', 'shape': [1, *width], 'group': group}],
            'observations': {group: {'terms': list(card_terms)}}})

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
        lin_acc, base_pos = (rng.uniform(-5.0, 5.0, 3).astype(np.float32) for _ in range(2))
        data.root_pos_w[0] = torch.from_numpy(base_pos)
        imu = self.env.scene.sensors['imu'].data    # an IMU aligned with the base
        imu.quat_w[0], imu.ang_vel_b[0] = torch.from_numpy(quat), torch.from_numpy(ang_vel)
        imu.lin_acc_b[0] = torch.from_numpy(lin_acc)
        self.extras = {'imu_orientation': quat[[1, 2, 3, 0]], 'imu_angular_velocity': ang_vel,
                       'base_lin_vel': lin_vel, 'imu_linear_acceleration': lin_acc,
                       'base_pos': base_pos}
        for name, kind in self.commands.items():
            command = self.env.command_manager.commands[name]
            if kind == 'velocity':
                value = rng.uniform(-1.0, 1.0, 3).astype(np.float32)
                command[0] = torch.from_numpy(value)
                self.extras['velocity_command'] = value
                continue
            # A pose in the base frame (x, y, z, qw, qx, qy, qz); UniformPoseCommand makes
            # the quaternion unique when it samples, if configured; ROS may carry either sign.
            value = np.concatenate([rng.uniform(-1.0, 1.0, 3), rng.normal(size=4)])
            value[3:] /= np.linalg.norm(value[3:])
            value = value.astype(np.float32)
            command[0] = torch.from_numpy(value)
            if kind == 'pose_unique':
                command[0, 3:] = il.math.quat_unique(command[0, 3:])
            self.extras['pose_command'] = value
        for name, pattern in self.patterns.items():
            self.extras['height_map'] = self._terrain(name, pattern)
        return pos, vel

    def _terrain(self, name, pattern):
        """Random hit heights under a scanner: its RayCaster data and the ROS height map."""
        scanner = self.env.scene.sensors[name]
        size, res = pattern.size, pattern.resolution
        ix = np.round((scanner.ray_xy[:, 0] + size[0] / 2) / res).astype(int)
        iy = np.round((scanner.ray_xy[:, 1] + size[1] / 2) / res).astype(int)
        sensor_z = np.float32(self.rng.uniform(0.3, 0.8))
        heights = self.rng.uniform(-1.2, 0.2, (iy.max() + 1, ix.max() + 1)).astype(np.float32)
        hits = np.zeros((1, len(ix), 3), dtype=np.float32)
        hits[0, :, 2] = heights[iy, ix] + sensor_z
        scanner.data.ray_hits_w = torch.from_numpy(hits)
        scanner.data.pos_w = torch.tensor([[0.0, 0.0, float(sensor_z)]])
        return heights   # (ny, nx), in the sensor frame: rows along y

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
                update_history=True)[self.group])
            got = builder.build(Sample(joint_pos=pos, joint_vel=vel,
                                       last_action=last_action.copy(),
                                       extras=self.extras))['obs'][0]
            obs_worst = max(obs_worst, oracle.max_abs_diff(expected, got))
            if mapper is None:
                continue
            raw = self.rng.normal(0.0, 1.5, mapper.width).astype(np.float32)
            self.env.action_manager.process_action(torch.from_numpy(raw)[None])
            self.env.action_manager.apply_action()
            self.env.episode_length_buf += 1     # ManagerBasedRLEnv.step counts the step
            targets = oracle.to_numpy(self.env.robot.data.joint_pos_target)
            order = [self.joints.index(n) for n in mapper.joint_names]
            act_worst = max(act_worst, oracle.max_rel_diff(targets[order],
                                                           mapper.map(raw, pos)))
            last_action[:] = raw
        return obs_worst, act_worst


def _split(entries, card_terms, report, group, is_core, builtin):
    """Pair the supported source terms with their card terms: (compared, not compared)."""
    lines = [t for t in report.terms if t.supported and t.group == group]
    assert len(lines) == len(card_terms)
    compared, skipped = [], []
    for line, card_term in zip(lines, card_terms):
        entry = entries[line.name]
        if is_core(entry) and card_term['name'] in builtin:
            compared.append((line.name, entry, card_term))
        else:
            skipped.append(f'{line.name} ({line.source} -> {card_term["name"]})')
    return compared, skipped


def from_env_yaml(run_dir, joints, agent=None):
    """Build a ParityRig from a run folder's env.yaml (with the translation, skipped terms)."""
    env_cfg = load_file(run_dir / 'params' / 'env.yaml')
    agent = load_file(run_dir / 'params' / 'agent.yaml') if agent is None else agent
    return from_env_dict(env_cfg, agent, joints)


def from_env_dict(env_cfg, agent, joints, joint_limits=None):
    """Build a ParityRig from a parsed env.yaml; joint_limits: hard limits by joint name."""
    report = ImportReport(source='env.yaml')
    tr = env_yaml.translate(env_cfg, agent, list(joints), report, joint_limits)
    assert not report.problems, report.render()
    builtin = {n for g, n in load_registry().builtin if g == OBSERVATION_GROUP}
    group_cfg = env_cfg['observations'][tr.group]
    compared, skipped = _split(group_cfg, tr.terms, report, tr.group,
                               lambda e: oracle.is_core(e['func']), builtin)
    actions = {n: c for n, c in (env_cfg.get('actions') or {}).items() if c is not None}
    il_actions = {n: oracle.action_term_from_yaml(il, c) for n, c in actions.items()} \
        if all(oracle.is_core(c['class_type']) for c in actions.values()) else None
    commands = {}
    for _, entry, _ in compared:
        if entry['func'].endswith(':generated_commands'):
            name = entry['params']['command_name']
            cmd = (env_cfg.get('commands') or {}).get(name) or {}
            pose = str(cmd.get('class_type')).endswith('PoseCommand')
            commands[name] = ('pose_unique' if cmd.get('make_quat_unique') else 'pose') \
                if pose else 'velocity'
    scanners = {}
    for _, entry, _ in compared:
        if entry['func'].endswith(':height_scan'):
            name = entry['params']['sensor_cfg']['name']
            pattern = env_cfg['scene'][name]['pattern_cfg']
            scanners[name] = il.patterns.GridPatternCfg(
                size=tuple(pattern['size']), resolution=pattern['resolution'],
                ordering=pattern.get('ordering', 'xy'))
    rig = ParityRig(
        joints, oracle.default_joint_pos(il, env_cfg, joints),
        {n: oracle.observation_term_from_yaml(il, e) for n, e, _ in compared},
        {'history_length': group_cfg.get('history_length'),
         'flatten_history_dim': group_cfg.get('flatten_history_dim', True)},
        [t for _, _, t in compared],
        {'control_dt': tr.control_dt, 'joint_names': list(joints),
         'default_joint_pos': list(tr.default_joint_pos), 'action': tr.action},
        il_actions, tr.group, commands, oracle.soft_limits(il, env_cfg, joints, joint_limits),
        scanners)
    rig.tr, rig.skipped, rig.compared, rig.env_cfg = tr, skipped, compared, env_cfg
    return rig


def _descriptor_func(entry):
    module, _, func = entry['full_path'].rpartition('.')
    return f'{module}:{func}'


def from_descriptors(path, onnx=None):
    """
    Build a ParityRig from IO_descriptors.yaml: Isaac Lab's terms from what they recorded.

    A descriptor records a term's function, resolved joint names (in order) and
    overloads (scale, clip, history), and an action's resolved per-joint scale,
    offset and clip: the same config, after Isaac Lab resolved its regexes.
    """
    data = load_file(path)
    result = import_run(path, onnx=onnx)
    assert result.card_data is not None, result.report.render()
    robot = data['articulations']['robot']
    joints, defaults = list(robot['joint_names']), list(robot['default_joint_pos'])
    group = 'policy'
    entries = {e['name']: e for e in data['observations'][group]}
    builtin = {n for g, n in load_registry().builtin if g == OBSERVATION_GROUP}
    card_terms = result.card_data['observations'][group]['terms']
    compared, skipped = _split(entries, card_terms, result.report, group,
                               lambda e: oracle.is_core(e['full_path']), builtin)
    il_terms = {}
    for name, entry, card_term in compared:
        params = {}
        if entry.get('joint_names'):
            params['asset_cfg'] = il.SceneEntityCfg('robot', joint_names=entry['joint_names'],
                                                    preserve_order=True)
        if entry['name'] == 'generated_commands':
            params['command_name'] = 'base_velocity'    # the descriptor does not name it
        over = entry.get('overloads') or {}
        # Old descriptors record no history; the importer took it from the ONNX width.
        history = over.get('history_length', card_term.get('history_length', 0))
        il_terms[name] = il.ObservationTermCfg(
            func=il.string.string_to_callable(_descriptor_func(entry)), params=params,
            scale=over.get('scale'), clip=None if over.get('clip') is None else
            tuple(over['clip']), history_length=history or 0,
            flatten_history_dim=over.get('flatten_history_dim', True))
    il_actions = {}
    for i, action in enumerate(data['actions']):
        names = list(action['joint_names'])
        scale = action['scale']

        def per_joint(values, names=names):
            return dict(zip(names, values)) if isinstance(values, list) else values
        clip = action.get('clip')
        il_actions[f'a{i}'] = il.actions_cfg.JointPositionActionCfg(
            asset_name='robot', joint_names=names, preserve_order=True,
            scale=per_joint(scale), offset=per_joint(action['offset']),
            use_default_offset=False,
            clip=None if clip is None else {n: tuple(c) for n, c in zip(names, clip)})
    uses_command = any(e['name'] == 'generated_commands' for _, e, _ in compared)
    commands = {'base_velocity': 'velocity'} if uses_command else {}
    card = {k: v for k, v in result.card_data.items() if k not in ('inputs', 'observations')}
    rig = ParityRig(joints, defaults, il_terms, {}, [t for _, _, t in compared], card,
                    il_actions, group, commands)
    rig.skipped, rig.compared, rig.card_defaults = skipped, compared, \
        result.card_data['default_joint_pos']
    return rig


@pytest.mark.parametrize('run', sorted(RUNS))
def test_fixture_card_matches_isaaclab(fixtures_dir, run):
    rig = from_env_yaml(fixtures_dir / run, RUNS[run])
    # The defaults (offsets of joint_pos_rel and of the actions) as Isaac Lab resolves them.
    assert oracle.max_abs_diff(rig.defaults, rig.tr.default_joint_pos) == 0.0
    report_rig(rig, run.split('__')[0], 'env.yaml',
               sorted({c['class_type'].rsplit(':', 1)[1]
                       for c in rig.env_cfg['actions'].values() if c}))


DESCRIPTORS = {
    'anymal_d': ('anymal_d_g1_flat_iodesc__isaac-sim_IsaacLab/anymal_d/IO_descriptors.yaml',
                 None),
    'g1 (descriptors)': ('anymal_d_g1_flat_iodesc__isaac-sim_IsaacLab/g1/IO_descriptors.yaml',
                         None),
    'go2_flat_walk': ('go2_flat_walk_iodesc__Chemauto_legged_ros2/IO_descriptors.yaml',
                      'go2_flat_walk_iodesc__Chemauto_legged_ros2/exported/policy.onnx'),
}


@pytest.mark.parametrize('case', sorted(DESCRIPTORS))
def test_descriptor_card_matches_isaaclab(fixtures_dir, case):
    path, onnx = DESCRIPTORS[case]
    rig = from_descriptors(fixtures_dir / path, onnx and fixtures_dir / onnx)
    assert oracle.max_abs_diff(rig.defaults, rig.card_defaults) == 0.0
    report_rig(rig, case, 'IO_descriptors.yaml', ['JointPositionAction'])


def report_rig(rig, label, source, classes):
    """Run a rig, print its two table rows and check them."""
    assert rig.compared, 'no term to compare'
    obs, act = rig.run()
    names = ', '.join(n for n, _, _ in rig.compared)
    oracle.report(f'fixture {label} observation ({names})', f'ObservationManager from {source}',
                  obs, 'not compared (project terms, no Isaac Lab code): ' +
                  (', '.join(rig.skipped) or 'none'))
    assert obs <= oracle.TOLERANCE
    if act is not None:
        oracle.report(f'fixture {label} actions', ' + '.join(classes) + f' from {source}', act,
                      'scaled |difference| (targets)')
        assert act <= oracle.TOLERANCE


@pytest.mark.parametrize('run', sorted(RUNS))
def test_fixture_card_is_the_translation(fixtures_dir, run):
    # The card vision_policy_import writes carries the translated terms and actions verbatim.
    result = import_run(fixtures_dir / run, joint_names=RUNS[run])
    if result.card_data is None:
        pytest.skip(f'the importer wrote no card for {run}: {result.report.problems}')
    rig = from_env_yaml(fixtures_dir / run, RUNS[run])
    group = result.card_data['observations'][rig.tr.group]
    assert group['terms'] == list(rig.tr.terms)
    assert result.card_data['action'] == rig.tr.action
