"""
The import on real Isaac Lab run files (../shared/fixtures/isaaclab, skipped when absent).

Each case either yields a card whose width matches the ONNX input, which then
runs through PolicyCore and onnxruntime on synthetic inputs, or is refused
with a report naming the unsupported terms.
"""

from types import MappingProxyType

import numpy as np
import pytest
from vision_policy.action import SafetyLimits
from vision_policy.card import load_card
from vision_policy.core import PolicyCore
from vision_policy.isaaclab.importer import import_run
from vision_policy.registry import GROUPS, load_registry, Registry
from vision_policy.runtime import open_session, PolicyRuntime, RuntimeOptions
from vision_policy.tools.import_isaaclab import main as import_main
import yaml

SPOT = ('fl_hx fr_hx hl_hx hr_hx arm0_sh0 fl_hy fr_hy hl_hy hr_hy arm0_sh1 fl_kn fr_kn hl_kn '
        'hr_kn arm0_el0 arm0_el1 arm0_wr0 arm0_wr1 arm0_f1x').split()
G1_29 = [f'{side}_{j}_joint' for j in ('hip_pitch', 'hip_roll', 'hip_yaw', 'knee',
                                       'ankle_pitch', 'ankle_roll') for side in ('left', 'right')]
G1_29 += ['waist_yaw_joint', 'waist_roll_joint', 'waist_pitch_joint']
G1_29 += [f'{side}_{j}_joint' for j in ('shoulder_pitch', 'shoulder_roll', 'shoulder_yaw',
                                        'elbow', 'wrist_roll', 'wrist_pitch', 'wrist_yaw')
          for side in ('left', 'right')]
SO101 = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']


def run_core(card, model):
    """One PolicyCore tick with onnxruntime on synthetic inputs; returns the command."""
    session = open_session(model, RuntimeOptions(providers=('CPUExecutionProvider',)))
    n = len(card.action.joint_names)
    core = PolicyCore(card, lambda inputs: PolicyRuntime(session, card, inputs, 0),
                      SafetyLimits.build(n, [-10.0], [10.0], [10.0]))
    core.set_extras({'imu_orientation': np.array([0.0, 0.0, 0.0, 1.0]),
                     'imu_angular_velocity': np.array([0.1, 0.0, -0.1]),
                     'base_lin_vel': np.array([0.3, 0.0, 0.0]),
                     'velocity_command': np.array([0.5, 0.0, 0.2])})
    pos = np.asarray(card.default_joint_pos, dtype=np.float32)
    command = core.step(pos, np.zeros_like(pos))
    assert np.all(np.isfinite(command))
    return command, core


def test_spot_env_yaml_card_runs(fixtures_dir):
    run = fixtures_dir / 'spot_arm_standing__DevMarkusLejon_RLonSpot'
    result = import_run(run, joint_names=SPOT)
    assert result.card is not None, result.report.render()
    card = result.card
    assert result.report.widths['obs'] == (69, 69)
    assert card.control_dt == pytest.approx(0.002 * 10)
    assert [t.name for t in card.groups[0].terms] == [
        'base_lin_vel', 'base_ang_vel', 'projected_gravity', 'velocity_commands',
        'joint_pos_rel', 'joint_vel_rel', 'last_action']
    # Two JointPositionAction terms, legs then arm, offsets from init_state.joint_pos.
    assert card.action.joint_names[:4] == ('fl_hx', 'fr_hx', 'hl_hx', 'hr_hx')
    assert card.action.joint_names[12:] == ('arm0_sh0', 'arm0_sh1', 'arm0_el0', 'arm0_el1',
                                            'arm0_wr0', 'arm0_wr1', 'arm0_f1x')
    assert card.action.scale == (0.2,) * 19
    assert card.action.offset[12:14] == (0.0, -3.13)
    command, core = run_core(card, run / 'exported' / 'policy.onnx')
    assert command.shape == (19,)
    obs = core.tick.inputs['obs'].ravel()
    np.testing.assert_allclose(obs[:12], [0.3, 0, 0, 0.1, 0, -0.1, 0, 0, -1, 0.5, 0, 0.2])


def test_go2_io_descriptors_card_runs(fixtures_dir):
    run = fixtures_dir / 'go2_flat_walk_iodesc__Chemauto_legged_ros2'
    result = import_run(run / 'IO_descriptors.yaml', onnx=run / 'exported' / 'policy.onnx')
    assert result.card is not None, result.report.render()
    assert result.report.widths['obs'] == (225, 225)
    assert {t.history_length for t in result.card.groups[0].terms} == {5}
    command, _ = run_core(result.card, run / 'exported' / 'policy.onnx')
    assert command.shape == (12,)


def test_old_descriptor_format_history_from_onnx(fixtures_dir, tmp_path):
    run = fixtures_dir / 'go2_flat_walk_iodesc__Chemauto_legged_ros2'
    data = yaml.safe_load((run / 'IO_descriptors.yaml').read_text())
    for term in data['observations']['policy']:
        term['overloads'] = {'clip': None, 'scale': None}     # the older export
    (tmp_path / 'IO_descriptors.yaml').write_text(yaml.safe_dump(data))
    result = import_run(tmp_path / 'IO_descriptors.yaml', onnx=run / 'exported' / 'policy.onnx')
    assert result.card is not None, result.report.render()
    assert {t.history_length for t in result.card.groups[0].terms} == {5}
    assert any('history_length 5 is assumed' in w for w in result.report.warnings)


@pytest.mark.parametrize('robot, width, joints', [('anymal_d', 48, 12), ('g1', 123, 37)])
def test_docs_io_descriptors(fixtures_dir, robot, width, joints):
    path = fixtures_dir / 'anymal_d_g1_flat_iodesc__isaac-sim_IsaacLab' / robot
    result = import_run(path / 'IO_descriptors.yaml')
    assert result.card is not None, result.report.render()
    assert result.report.widths['obs'] == (width, None)
    assert len(result.card.joint_names) == joints
    assert result.card.action.joint_names == result.card.joint_names


def builtin_only():
    """Return the registry as a fresh install has it: vision_policy's own terms only."""
    full = load_registry()
    keep = set(full.builtin)
    tables = [MappingProxyType({n: d for n, d in table.items() if (group, n) in keep})
              for group, table in zip(GROUPS, (full.observation_terms, full.action_terms,
                                               full.sources))]
    return Registry(*tables, origins=full.origins, builtin=full.builtin)


def test_g1_mimic_refused_naming_task_terms(fixtures_dir):
    run = fixtures_dir / 'g1_mimic__andyzong16_Isaaclab_Training'
    result = import_run(run, joint_names=G1_29, registry=builtin_only())
    assert result.card is None
    whats = [p.what for p in result.report.problems]
    assert whats == ['term policy.command', 'term policy.motion_anchor_pos_b',
                     'term policy.motion_anchor_ori_b']
    assert 'MotionCommand' in result.report.problems[0].reason
    # The regex -> float scale dict resolved with preserve_order: true.
    legs = result.report.actions[0]
    assert legs.joints[:2] == ('left_hip_pitch_joint', 'left_hip_roll_joint')
    assert legs.scale[:2] == pytest.approx((0.5475464652142303, 0.3506614663788243))
    assert any('leaves 67 values' in w for w in result.report.warnings)


def test_so101_refused_naming_project_terms(fixtures_dir):
    run = fixtures_dir / 'so101_pickplace_bowl__JianwenCao_robot_learning'
    result = import_run(run, joint_names=SO101, registry=builtin_only())
    assert result.card is None
    text = result.report.render()
    for name in ('gripper_state', 'bowl_xy', 'ee_proj_xy', 'ee_to_bowl_xy',
                 'cube_pos_xy_noisy'):
        assert name in text
    # Isaac Lab's own gripper action is built in: only the project's terms are refused.
    assert [p.what for p in result.report.problems if p.what.startswith('action')] == []
    assert 'BinaryJointPositionAction -> binary_joint_position, width 1' in text
    assert any("'wrist_image' is disabled" in w for w in result.report.warnings)
    clip = result.report.actions[0].clip
    assert clip[4] == (-2.74385, 2.84121)


def test_cartpole_direct_complete_card(fixtures_dir, tmp_path, capsys):
    # Isaac Lab's own Cartpole-RGB-Camera task is recognised: a complete card, exit 3 only
    # because its effort action has no built-in term (test_oracle_direct.py checks values).
    run = fixtures_dir / 'cartpole_rgb_camera_direct__minseo104_IsaacLab_UR_reach'
    out = tmp_path / 'card.yaml'
    assert import_main([str(run), '--output', str(out)]) == 3
    text = out.read_text()
    data = yaml.safe_load(text)
    assert data['image']['resize'] == [100, 100]
    assert data['inputs'][0]['shape'] == [1, 100, 100, 3]
    assert data['control_dt'] == pytest.approx(2 / 120)
    assert 'FILL_ME' not in text and 'EFFORT' in text
    assert data['action']['terms'][0]['clip'] == [[-100.0, 100.0]]   # 100 x clip_actions 1


def test_unknown_direct_env_template(fixtures_dir, tmp_path):
    # A direct env that is not one of Isaac Lab's own tasks still gets the template.
    run = fixtures_dir / 'cartpole_rgb_camera_direct__minseo104_IsaacLab_UR_reach'
    (tmp_path / 'params').mkdir()
    env = (run / 'params' / 'env.yaml').read_text().replace('cart_dof_name:', 'my_dof_name:')
    (tmp_path / 'params' / 'env.yaml').write_text(env)
    (tmp_path / 'params' / 'agent.yaml').write_text((run / 'params' / 'agent.yaml').read_text())
    out = tmp_path / 'card.yaml'
    assert import_main([str(tmp_path), '--output', str(out)]) == 3
    text = out.read_text()
    assert 'FILL_ME' in text and 'clips raw actions to [-1.0, 1.0]' in text


def test_tool_writes_card_and_refuses_width_mismatch(fixtures_dir, tmp_path, capsys):
    go2 = fixtures_dir / 'go2_flat_walk_iodesc__Chemauto_legged_ros2'
    out = tmp_path / 'go2.yaml'
    assert import_main([str(go2), '--output', str(out)]) == 0
    assert load_card(out).inputs[0].shape == (1, 225)
    spot = fixtures_dir / 'spot_arm_standing__DevMarkusLejon_RLonSpot'
    names = tmp_path / 'joints.txt'
    names.write_text('\n'.join(SPOT))
    bad = tmp_path / 'spot.yaml'
    code = import_main([str(spot), '--onnx', str(go2 / 'exported' / 'policy.onnx'),
                        '--joint-names-file', str(names), '--output', str(bad)])
    captured = capsys.readouterr()
    assert code == 2 and not bad.exists()
    assert 'card width 69, ONNX width 225: DIFFERS by -156' in captured.out
    assert 'missing 156' in captured.out
