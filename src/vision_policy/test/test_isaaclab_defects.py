"""The importer defects found on real runs (issue 12, item 4), one test each."""

import pytest
from vision_policy.card import card_from_dict
from vision_policy.isaaclab import env_yaml
from vision_policy.isaaclab.assemble import assemble
from vision_policy.isaaclab.importer import import_run
from vision_policy.isaaclab.onnx_io import classify, Tensor
from vision_policy.isaaclab.report import ImportReport
from vision_policy.observation import ObservationBuilder
from vision_policy.registry import load_registry
from vision_policy.tools.import_isaaclab import main as import_main
import yaml

JOINTS = ['fl_hx', 'fr_hx', 'arm_sh', 'fl_kn', 'fr_kn']
OBS = 'isaaclab.envs.mdp.observations:'
JPA = 'isaaclab.envs.mdp.actions.joint_actions:JointPositionAction'
HOLD = 'my_task.mdp.actions:HoldArmAction'
LEGS = {'class_type': JPA, 'joint_names': ['.*_hx', '.*_kn'], 'scale': 0.5,
        'use_default_offset': True}


def env(policy=None, actions=None, scene=None):
    return {
        'sim': {'dt': 0.005}, 'decimation': 4,
        'scene': {'robot': {'init_state': {'joint_pos': {'.*_hx': 0.1, '.*_kn': -1.0}}},
                  **(scene or {})},
        'actions': actions or {'legs': LEGS},
        'observations': {'policy': policy or {
            'a': {'func': OBS + 'joint_pos_rel', 'params': {}},
            'act': {'func': OBS + 'last_action', 'params': {}}}},
    }


def translate(data, sig=None, agent=None, registry=None):
    report = ImportReport('test')
    tr = env_yaml.translate(data, agent, JOINTS, report, registry=registry)
    return assemble(tr, sig, report), report


def run_folder(tmp_path, data):
    (tmp_path / 'params').mkdir()
    (tmp_path / 'params' / 'env.yaml').write_text(yaml.safe_dump(data))
    return tmp_path


def test_unwritable_output_exits_1_without_a_traceback(tmp_path, capsys):
    run = run_folder(tmp_path, env())
    assert import_main([str(run), '--joint-names', ','.join(JOINTS), '--output',
                        str(tmp_path)]) == 1
    assert 'is a directory' in capsys.readouterr().err
    missing = tmp_path / 'no_such_folder' / 'card.yaml'
    assert import_main([str(run), '--joint-names', ','.join(JOINTS), '--output',
                        str(missing)]) == 1
    assert 'does not exist' in capsys.readouterr().err


def test_zero_width_action_term_is_not_misread_as_extra_values():
    actions = {'legs': LEGS, 'arm_hold': {'class_type': HOLD, 'joint_names': ['arm_sh']}}
    sig = classify((Tensor('obs', (1, 9)),), (Tensor('actions', (1, 4)),))
    card, report = translate(env(actions=actions), sig)
    assert card is None
    reasons = ' '.join(p.reason for p in report.problems)
    assert 'no registered action term implements ' + HOLD in reasons
    assert 'extra' not in reasons and 'missing' not in reasons
    assert report.widths['obs'] == (None, 9)


def test_registered_zero_width_term_leaves_last_action_its_raw_width(tmp_path, monkeypatch):
    (tmp_path / 'vp_hold.py').write_text(
        'from vision_policy.action import HOLD_DEFAULT\n'
        'from dataclasses import replace\n'
        f'HOLD = replace(HOLD_DEFAULT, name="arm_hold", isaaclab_classes=("{HOLD}",),\n'
        '               import_spec=lambda cfg, joints, tr: {})\n'
        'VISION_POLICY_PLUGINS = [HOLD]\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry(['vp_hold'])
    actions = {'legs': LEGS, 'arm_hold': {'class_type': HOLD, 'joint_names': ['arm_sh']}}
    sig = classify((Tensor('obs', (1, 9)),), (Tensor('actions', (1, 4)),))
    data, report = translate(env(actions=actions), sig, registry=registry)
    assert report.ok, report.render()
    # joint_pos_rel over 5 joints; last_action 4: the held arm joint takes no raw value.
    assert [t.width for t in report.terms] == [5, 4]
    card = card_from_dict(data)
    assert card.action.joint_names == ('fl_hx', 'fr_hx', 'fl_kn', 'fr_kn', 'arm_sh')
    builder = ObservationBuilder(card, registry)
    assert builder.inputs['obs'].shape == (1, 9)


def test_group_of_only_unsupported_terms_is_named_as_the_feeder():
    policy = {'x': {'func': 'my_task.mdp:cube_pos', 'params': {}}}
    sig = classify((Tensor('obs', (1, 3)),), (Tensor('actions', (1, 4)),))
    _, report = translate(env(policy=policy), sig)
    reasons = {p.what: p.reason for p in report.problems}
    assert 'nothing in the run files feeds it' not in ' '.join(reasons.values())
    assert "group 'policy' feeds it, but none of its terms" in reasons["ONNX input 'obs'"]


def test_depth_camera_routed_to_a_separate_encoder_is_an_image_input():
    depth = {'func': OBS + 'image', 'params': {'sensor_cfg': {'name': 'depth_cam'},
                                               'data_type': 'distance_to_image_plane'}}
    data = env()
    data['observations']['depth_camera'] = {'image': depth}
    data['scene']['depth_cam'] = {'width': 8, 'height': 6}
    agent = {'obs_groups': {'policy': ['policy'], 'critic': ['policy'],
                            'depth_encoder': ['depth_camera']}}
    sig = classify((Tensor('obs', (1, 9)), Tensor('depth_camera', (1, 1, 6, 8))),
                   (Tensor('actions', (1, 4)),))
    card, report = translate(data, sig, agent)
    assert card is not None, report.render()
    assert [i['name'] for i in card['inputs']] == ['obs', 'depth_camera']
    assert card['image']['data_type'] == 'depth'
    assert not any('does not feed the actor' in w for w in report.warnings)


def test_ray_caster_camera_size_from_pattern_cfg():
    image = {'func': OBS + 'image', 'params': {'sensor_cfg': {'name': 'ray_cam'},
                                               'data_type': 'distance_to_image_plane'}}
    data = env(policy={'image': image})
    data['scene']['ray_cam'] = {'class_type': 'isaaclab.sensors.ray_caster:RayCasterCamera',
                                'pattern_cfg': {'width': 16, 'height': 12}}
    card, report = translate(data)
    assert card['image']['resize'] == [16, 12], report.render()


def test_zero_width_obs_input_is_fed_with_nothing():
    image = {'func': OBS + 'image', 'params': {'sensor_cfg': {'name': 'cam'}}}
    data = env(policy={'image': image}, scene={'cam': {'width': 8, 'height': 6}})
    data['observations'] = {'camera': {'image': image}}
    sig = classify((Tensor('obs', (1, 0)), Tensor('camera', (1, 6, 8, 3))),
                   (Tensor('actions', (1, 4)),))
    card, report = translate(data, sig, agent={'obs_groups': {'policy': ['camera']}})
    assert card is not None, report.render()
    assert card['inputs'][-1] == {'name': 'obs', 'shape': [1, 0], 'dtype': 'float32'}
    builder = ObservationBuilder(card_from_dict(card))
    assert builder.inputs['obs'].shape == (1, 0)


@pytest.mark.parametrize('names, words', [
    (['a', 'b', 'c', 'd', 'e'], ["'.*_hx'", 'match none of the robot joints',
                                 'do not match env.yaml']),
    (JOINTS[:4] + ['fl_hx'], ["list ['fl_hx'] more than once"]),
])
def test_wrong_or_repeated_joint_names_exit_2_naming_them(tmp_path, capsys, names, words):
    run = run_folder(tmp_path, env())
    code = import_main([str(run), '--joint-names', ','.join(names), '--output',
                        str(tmp_path / 'card.yaml')])
    text = capsys.readouterr().out
    assert code == 2
    assert 'driven by more than one term' not in text
    for word in words:
        assert word in text


def test_import_run_reports_wrong_joint_names(tmp_path):
    result = import_run(run_folder(tmp_path, env()), joint_names=['x', 'y'])
    assert result.card is None
    assert [p.what for p in result.report.problems] == ['joint_names']
