"""env.yaml translation on small synthetic configs: actions, groups, history, ONNX wiring."""

import numpy as np

from vision_policy.action import ActionMapper
from vision_policy.card import card_from_dict
from vision_policy.isaaclab import env_yaml
from vision_policy.isaaclab.assemble import assemble
from vision_policy.isaaclab.onnx_io import classify, Tensor
from vision_policy.isaaclab.report import ImportReport

JOINTS = ['fl_hx', 'fr_hx', 'arm_sh', 'fl_kn', 'fr_kn']
OBS = 'isaaclab.envs.mdp.observations:'
JPA = 'isaaclab.envs.mdp.actions.joint_actions:JointPositionAction'


def env(actions=None, policy=None, extra_groups=None, **top):
    data = {
        'sim': {'dt': 0.005}, 'decimation': 4,
        'scene': {'robot': {'init_state': {'joint_pos': {'.*_hx': 0.1, '.*_kn': -1.0},
                                           'joint_vel': {'.*': 0.0}},
                            'soft_joint_pos_limit_factor': 0.5},
                  'cam': {'width': 8, 'height': 6}},
        'commands': {'base_velocity': {
            'class_type': 'isaaclab.envs.mdp.commands.velocity_command:UniformVelocityCommand'}},
        'actions': actions or {'legs': {'class_type': JPA, 'joint_names': ['.*_hx', '.*_kn'],
                                        'scale': 0.5, 'use_default_offset': True}},
        'observations': {'policy': policy or {
            'concatenate_terms': True, 'history_length': None,
            'a': {'func': OBS + 'joint_pos_rel', 'params': {'asset_cfg': {
                'name': 'robot', 'joint_names': ['.*_kn'], 'preserve_order': False}},
                'scale': 2.0, 'clip': (-5.0, 5.0), 'history_length': 3},
            'cmd': {'func': OBS + 'generated_commands',
                    'params': {'command_name': 'base_velocity'}},
            'act': {'func': OBS + 'last_action', 'params': {}, 'noise': {'std': 1.0}}},
            **(extra_groups or {})},
    }
    data.update(top)
    return data


def translate(data, agent=None, sig=None, limits=None):
    report = ImportReport('test')
    tr = env_yaml.translate(data, agent, JOINTS, report, limits)
    return assemble(tr, sig, report), report


def test_terms_widths_history_and_control_dt():
    card, report = translate(env())
    assert report.ok, report.render()
    assert report.control_dt == 0.02
    terms = card['observations']['policy']['terms']
    assert terms[0] == {'name': 'joint_pos_rel', 'scale': 2.0, 'clip': [-5.0, 5.0],
                        'history_length': 3, 'params': {'joint_names': ['fl_kn', 'fr_kn']}}
    assert [t['name'] for t in terms] == ['joint_pos_rel', 'velocity_commands', 'last_action']
    assert [t.width for t in report.terms] == [6, 3, 4]
    assert card['inputs'][0]['shape'] == [1, 13]
    assert card['default_joint_pos'] == [0.1, 0.1, 0.0, -1.0, -1.0]


def test_group_history_overrides_terms():
    data = env()
    data['observations']['policy']['history_length'] = 2
    card, report = translate(data)
    assert [t.history for t in report.terms] == [2, 2, 2]
    assert card['inputs'][0]['shape'] == [1, (2 + 3 + 4) * 2]


def test_joint_position_action_mapping():
    actions = {
        'arm': {'class_type': JPA, 'joint_names': ['arm_sh'], 'scale': 1.0, 'offset': 0.3,
                'clip': {'arm_sh': (-0.5, 0.5)}},
        'legs': {'class_type': JPA, 'joint_names': ['.*_kn', '.*_hx'], 'preserve_order': True,
                 'scale': {'.*_kn': 0.2, 'fl_hx': 0.4}, 'use_default_offset': True,
                 'clip': {'.*': (-2.0, 2.0)}},
    }
    card, report = translate(env(actions=actions))
    assert report.ok, report.render()
    act = card['action']
    assert act['joint_names'] == ['arm_sh', 'fl_kn', 'fr_kn', 'fl_hx', 'fr_hx']
    assert act['scale'] == [1.0, 0.2, 0.2, 0.4, 1.0]      # unmatched joints keep scale 1
    assert act['offset'] == [0.3, -1.0, -1.0, 0.1, 0.1]
    mapper = ActionMapper(card_from_dict(card))
    targets = mapper.map(np.array([1.0, 1.0, -10.0, 1.0, 1.0]))
    # target = raw x scale + offset, then the term's clip
    np.testing.assert_allclose(targets, [0.5, -0.8, -2.0, 0.5, 1.1])


def test_agent_clip_actions_folds_into_target_clip():
    card, report = translate(env(), agent={'clip_actions': 1.0})
    # raw in [-1, 1] -> target in [offset - |scale|, offset + |scale|]
    assert card['action']['clip'] == [[-0.4, 0.6], [-0.4, 0.6], [-1.5, -0.5], [-1.5, -0.5]]
    assert any('clip_actions' in w for w in report.warnings)


def test_unsupported_action_and_terms_are_named_with_what_to_write():
    actions = {'grip': {'class_type': 'my_task.mdp.actions:DelayedJointPositionAction',
                        'joint_names': ['arm_sh']}}
    policy = {'x': {'func': 'my_task.mdp:cube_pos', 'params': {'asset_name': 'cube'}},
              'c': {'func': OBS + 'generated_commands', 'params': {'command_name': 'pose'}},
              'j': {'func': OBS + 'joint_pos', 'params': {}},
              'act': {'func': OBS + 'last_action', 'params': {}}}
    data = env(actions=actions, policy=policy)
    data['commands'] = {'pose': {'class_type': 'my_task.mdp:TargetCommand'}}
    card, report = translate(data)
    assert card is None
    whats = {p.what: p.reason for p in report.problems}
    grip = whats["action 'grip'"]
    assert 'no registered action term implements my_task.mdp.actions:' \
        'DelayedJointPositionAction' in grip
    assert "isaaclab_classes=('my_task.mdp.actions:DelayedJointPositionAction',)" in grip
    assert "entry-point group 'vision_policy.action_terms'" in grip
    cube = whats['term policy.x']
    assert "ObservationTerm(name='cube_pos'" in cube
    assert "isaaclab_funcs=('my_task.mdp:cube_pos',)" in cube
    assert "entry-point group 'vision_policy.observation_terms'" in cube
    assert "{'asset_name': 'cube'}" in cube
    assert "isaaclab_commands=('my_task.mdp:TargetCommand',)" in whats['term policy.c']
    assert 'term policy.j' not in whats
    # An action class of unknown width leaves last_action's width unknown, not guessed.
    assert [t.width for t in report.terms if t.name == 'act'] == [None]


def test_disabled_and_critic_groups_skipped():
    card, report = translate(env(extra_groups={'critic': {'a': {'func': OBS + 'joint_pos'}},
                                               'wrist': None}))
    assert list(card['observations']) == ['policy']
    assert any("'wrist' is disabled" in w for w in report.warnings)
    assert any("'critic' does not feed the actor" in w for w in report.warnings)


def test_limit_normalized_needs_limits_then_uses_soft_factor():
    policy = {'n': {'func': OBS + 'joint_pos_limit_normalized',
                    'params': {'asset_cfg': {'joint_names': ['arm_sh']}}}}
    card, report = translate(env(policy=policy))
    assert card is None and '--urdf' in report.problems[0].reason
    card, report = translate(env(policy=policy), limits={'arm_sh': (-2.0, 4.0)})
    # soft factor 0.5: mid 1, half range 3 * 0.5
    assert card['observations']['policy']['terms'][0]['params'] == {
        'joint_names': ['arm_sh'], 'soft_joint_pos_limits': [[-0.5, 2.5]]}


def test_width_mismatch_says_by_how_much():
    sig = classify((Tensor('obs', (1, 20)),), (Tensor('actions', (1, 4)),))
    card, report = translate(env(), sig=sig)
    assert card is None
    assert report.widths['obs'] == (13, 20)
    assert 'missing 7' in report.problems[0].reason
    assert 'DIFFERS by -7' in report.render()


def test_recurrent_signature_wiring():
    sig = classify((Tensor('obs', (1, 13)), Tensor('h_in', (1, 1, 16)),
                    Tensor('c_in', (1, 1, 16))),
                   (Tensor('actions', (1, 4)), Tensor('h_out', (1, 1, 16)),
                    Tensor('c_out', (1, 1, 16))))
    assert sig.states == (('h_in', 'h_out'), ('c_in', 'c_out'))
    card, report = translate(env(), sig=sig)
    parsed = card_from_dict(card)
    assert parsed.recurrent == (('h_in', 'h_out'), ('c_in', 'c_out'))
    assert [i.state_of for i in parsed.inputs] == [None, 'h_out', 'c_out']


def test_cnn_signature_image_group():
    camera = {'concatenate_terms': True,
              'img': {'func': OBS + 'image', 'params': {'sensor_cfg': {'name': 'cam'},
                                                        'data_type': 'rgb'}}}
    sig = classify((Tensor('obs', (1, 13)), Tensor('camera', (1, 3, 6, 8))),
                   (Tensor('actions', (1, 4)),))
    card, report = translate(env(extra_groups={'camera': camera}),
                             agent={'obs_groups': {'policy': ['policy', 'camera']}}, sig=sig)
    assert report.ok, report.render()
    parsed = card_from_dict(card)
    assert parsed.image.width == 8 and parsed.image.height == 6
    assert parsed.image.layout == 'NCHW' and parsed.image.normalize == 'isaaclab'
    assert [(i.name, i.shape, i.group) for i in parsed.inputs] == [
        ('obs', (1, 13), 'policy'), ('camera', (1, 3, 6, 8), 'camera')]
