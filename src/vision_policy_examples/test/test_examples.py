"""
The two refused fixtures deploy through this package's terms: card width == ONNX width, one tick.

The fixtures are read from ../shared/fixtures/isaaclab (relative to the workspace
root); the tests skip when the folder is absent.
"""

from pathlib import Path

from geometry_msgs.msg import PoseStamped
import numpy as np
import pytest
from sensor_msgs.msg import JointState
from vision_policy.action import SafetyLimits
from vision_policy.core import PolicyCore
from vision_policy.isaaclab.importer import import_run
from vision_policy.isaaclab.onnx_io import read_signature
from vision_policy.registry import load_registry, OBSERVATION_GROUP, SOURCE_GROUP
from vision_policy.runtime import open_session, PolicyRuntime, RuntimeOptions
from vision_policy_examples import g1_mimic, so101_pickplace

G1_29 = [f'{side}_{j}_joint' for j in ('hip_pitch', 'hip_roll', 'hip_yaw', 'knee',
                                       'ankle_pitch', 'ankle_roll') for side in ('left', 'right')]
G1_29 += ['waist_yaw_joint', 'waist_roll_joint', 'waist_pitch_joint']
G1_29 += [f'{side}_{j}_joint' for j in ('shoulder_pitch', 'shoulder_roll', 'shoulder_yaw',
                                        'elbow', 'wrist_roll', 'wrist_pitch', 'wrist_yaw')
          for side in ('left', 'right')]
SO101 = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']


@pytest.fixture(scope='module')
def fixtures():
    for parent in Path(__file__).resolve().parents:
        if (parent / 'src' / 'vision_policy').is_dir():
            path = parent.parent / 'shared' / 'fixtures' / 'isaaclab'
            if path.is_dir():
                return path
    pytest.skip('Isaac Lab fixtures (../shared/fixtures/isaaclab) not found')


def pose(x, y, z, quat_xyzw=(0.0, 0.0, 0.0, 1.0)):
    msg = PoseStamped()
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = quat_xyzw
    return msg


def tick(card, model, extras, joint_pos):
    session = open_session(model, RuntimeOptions(providers=('CPUExecutionProvider',)))
    n = len(card.action.joint_names)
    core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs, 0),
                      SafetyLimits.build(n, [-10.0], [10.0], [10.0]))
    for values in extras:
        core.set_extras(values)
    command = core.step(joint_pos, np.zeros_like(joint_pos))
    assert command.shape == (n,) and np.all(np.isfinite(command))
    return core


def test_entry_points_register_the_example_terms_and_sources():
    registry = load_registry()
    for name in ('motion_command', 'motion_anchor_pos_b', 'bowl_xy', 'gripper_state'):
        assert name in registry.observation_terms
        assert 'vision_policy_examples' in registry.origin(OBSERVATION_GROUP, name)
    assert {'motion_reference', 'robot_anchor', 'cube_pose', 'ee_pose'} <= set(registry.sources)
    assert registry.source('cube_pose') is so101_pickplace.CUBE
    assert not registry.broken
    assert registry.origin(SOURCE_GROUP, 'bowl_pose').startswith('entry point bowl_pose =')


def test_g1_mimic_card_and_tick(fixtures):
    run = fixtures / 'g1_mimic__andyzong16_Isaaclab_Training'
    result = import_run(run, joint_names=G1_29)
    assert result.card is not None, result.report.render()
    onnx = read_signature(run / 'exported' / 'policy.onnx')
    assert result.report.widths['obs'] == (160, onnx.obs.width) == (160, 160)
    card = result.card
    assert [t.name for t in card.groups[0].terms][:3] == [
        'motion_command', 'motion_anchor_pos_b', 'motion_anchor_ori_b']
    ref = JointState(name=list(reversed(G1_29)), position=[0.01 * i for i in range(29)],
                     velocity=[-0.1] * 29)
    yaw90 = (0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4))
    extras = [g1_mimic.read_reference(ref), g1_mimic.ROBOT_ANCHOR.read(pose(0, 0, 0.8, yaw90)),
              g1_mimic.MOTION_ANCHOR.read(pose(1.0, 0, 0.8)),
              {'imu_orientation': np.array([0, 0, 0, 1.0]),
               'imu_angular_velocity': np.zeros(3), 'base_lin_vel': np.zeros(3)}]
    core = tick(card, run / 'exported' / 'policy.onnx', extras,
                np.asarray(card.default_joint_pos, dtype=np.float32))
    obs = core.tick.inputs['obs'].ravel()
    # The reference arrives in reverse order and is put back in the card's joint order.
    np.testing.assert_allclose(obs[:29], [0.01 * (28 - i) for i in range(29)], atol=1e-6)
    np.testing.assert_allclose(obs[29:58], -0.1, atol=1e-6)
    # Robot turned +90 deg about z: a target 1 m ahead along world x lies at -y in its frame,
    # and the relative rotation is -90 deg: first two columns, row by row.
    np.testing.assert_allclose(obs[58:61], [0.0, -1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(obs[61:67], [0, 1, -1, 0, 0, 0], atol=1e-6)


def test_so101_card_with_binary_gripper_and_tick(fixtures):
    run = fixtures / 'so101_pickplace_bowl__JianwenCao_robot_learning'
    result = import_run(run, joint_names=SO101)
    assert result.card is not None, result.report.render()
    assert result.report.widths['obs'] == (27, 27)
    card = result.card
    assert [t.type for t in card.action.terms] == ['joint_position', 'binary_joint_position']
    extras = [so101_pickplace.CUBE.read(pose(0.2, 0.05, 0.01)),
              so101_pickplace.BOWL.read(pose(0.25, -0.1, 0.0)),
              so101_pickplace.EE.read(pose(0.15, 0.0, 0.1))]
    joint_pos = np.asarray(card.default_joint_pos, dtype=np.float32)
    core = tick(card, run / 'exported' / 'policy.onnx', extras, joint_pos)
    obs = core.tick.inputs['obs'].ravel()
    # joint_pos_rel 6, joint_vel_rel 6, gripper_state 1, bowl 2, ee 2, ee->bowl 2, action 6, cube 2
    assert obs[12] == pytest.approx(0.5)
    np.testing.assert_allclose(obs[13:19], [0.25, -0.1, 0.15, 0.0, 0.1, -0.1], atol=1e-6)
    np.testing.assert_allclose(obs[25:27], [0.2, 0.05], atol=1e-6)
    # The gripper target is one of the two training positions, by the sign of its raw value.
    raw = core.tick.raw
    assert core.tick.targets[5] == (0.0 if raw[5] < 0 else 0.5)


def test_plugin_modules_give_the_same_definitions():
    # Listed as an operator would (the node's plugin_modules): the same objects as the entry
    # points name, so no conflict and nothing broken.
    registry = load_registry(plugin_modules=['vision_policy_examples.so101_pickplace'])
    assert registry.observation_term('bowl_xy') is so101_pickplace.BOWL_XY
    assert not registry.broken
    # The module's own list names every definition its entry points name.
    assert {d.name for d in so101_pickplace.VISION_POLICY_PLUGINS} == {
        'bowl_xy', 'ee_proj_xy', 'ee_to_bowl_xy', 'cube_pos_xy', 'gripper_state',
        'cube_pose', 'bowl_pose', 'ee_pose'}


def test_rotation_matches_a_known_quaternion():
    r = g1_mimic.rotation(np.array([0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4)]))
    np.testing.assert_allclose(r, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)


def test_so101_tool_writes_the_card_and_inspect_prints_actuators(fixtures, tmp_path, capsys):
    from vision_policy.tools.import_isaaclab import main as import_main
    from vision_policy.tools.inspect_model import main as inspect_main
    run = fixtures / 'so101_pickplace_bowl__JianwenCao_robot_learning'
    out = tmp_path / 'so101.yaml'
    assert import_main([str(run), '--joint-names', ','.join(SO101), '--output', str(out)]) == 0
    assert inspect_main([str(run / 'exported' / 'policy.onnx'), '--card', str(out)]) == 0
    text = capsys.readouterr().out
    assert 'shoulder_pan: ImplicitActuator stiffness 200 damping 80 effort_limit 1.9' in text
    assert 'binary_joint_position gripper_action: joints' in text
    assert 'bowl_xy: ' in text and '(distribution vision_policy_examples 0.1.0)' in text
    assert 'model and card agree' in text


OBS = 'isaaclab.envs.mdp.observations:'
GAIT = 'unitree_rl_lab.tasks.locomotion.mdp.observations:gait_phase'


def gait_env():
    return {'sim': {'dt': 0.005}, 'decimation': 4,
            'scene': {'robot': {'init_state': {'joint_pos': {'.*': 0.0}}}},
            'actions': {'legs': {'class_type': 'isaaclab.envs.mdp.actions.joint_actions:'
                                               'JointPositionAction',
                                 'joint_names': ['.*'], 'scale': 0.25}},
            'observations': {'policy': {
                'phase': {'func': GAIT, 'params': {'period': 0.8}},
                'pos': {'func': OBS + 'joint_pos_rel', 'params': {}}}}}


def test_readme_walkthrough_refused_gait_phase_then_a_running_term():
    from vision_policy.card import card_from_dict
    from vision_policy.isaaclab import env_yaml
    from vision_policy.isaaclab.assemble import assemble
    from vision_policy.isaaclab.report import ImportReport
    from vision_policy.observation import ObservationBuilder, Sample
    from vision_policy.registry import Registry
    full = load_registry()
    builtin = Registry(*({n: d for n, d in t.items() if (g, n) in full.builtin}
                         for g, t in ((OBSERVATION_GROUP, full.observation_terms),
                                      ('vision_policy.action_terms', full.action_terms),
                                      (SOURCE_GROUP, full.sources))),
                       origins=full.origins, builtin=full.builtin)
    report = ImportReport('gait')
    assemble(env_yaml.translate(gait_env(), None, ['hip', 'knee'], report, registry=builtin),
             None, report)
    refusal = report.problems[0].reason
    assert f"isaaclab_funcs=('{GAIT}',)" in refusal
    assert "entry-point group 'vision_policy.observation_terms'" in refusal
    assert "{'period': 0.8}" in refusal
    # With this package installed the same run files give a card, and the term runs.
    report = ImportReport('gait')
    data = assemble(env_yaml.translate(gait_env(), None, ['hip', 'knee'], report), None, report)
    assert report.ok, report.render()
    card = card_from_dict(data)
    assert card.groups[0].terms[0].params == {'period': 0.8}
    builder = ObservationBuilder(card)
    sample = Sample(np.zeros(2, np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32))
    # unitree_rl_lab: phase = (episode steps x step_dt) % period / period -> [sin, cos].
    for steps in (0, 1, 2, 0):
        if steps == 0:
            builder.reset()
        phase = (steps * 0.02) % 0.8 / 0.8
        np.testing.assert_allclose(builder.build(sample)['obs'].ravel()[:2],
                                   [np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase)],
                                   atol=1e-6)
