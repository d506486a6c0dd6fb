"""Card validation: the example card loads, and each kind of bad card names its problem."""

import copy

from conftest import workspace_root
import pytest
from vision_policy.card import card_from_dict, card_from_yaml, CardError, load_card
import yaml


@pytest.fixture
def card_data():
    return yaml.safe_load((workspace_root() / 'models' / 'reach_policy.yaml').read_text())


def test_example_card_loads(card_data):
    card = card_from_dict(card_data)
    assert card.joint_names == ('shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint')
    assert card.control_dt == 0.05
    assert card.action.offset == (0.0, 0.3, -0.6)  # offset: default -> default_joint_pos
    assert card.action.scale == (0.5, 0.5, 0.5)
    assert card.group('policy').terms[1].scale == (0.1,)
    assert card.image.width == 64 and card.image.layout == 'NCHW'
    # Round trip through YAML gives the same card.
    assert card_from_yaml(card.to_yaml()) == card


def _set(data, path, value):
    keys = path.split('.')
    node = data
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.parametrize('path, value, message', [
    ('control_dt', KeyError, 'control_dt: required field is missing'),
    ('control_dt', -0.1, 'control_dt: expected seconds in (0, 10]'),
    ('control_dt', 'fast', 'control_dt: expected int or float'),
    ('joint_names', ['a', 'a', 'b'], "joint_names: duplicate name(s) ['a']"),
    ('default_joint_pos', [0.0, 0.1], 'default_joint_pos: expected 3 values, found 2'),
    ('default_joint_pos', [0.0, 0.1, '.nan'], 'default_joint_pos[2]: expected a finite number'),
    ('format_version', 9, 'format_version: this node reads version 1'),
    ('colour', 'red', "card: unknown field(s) ['colour']"),
    ('image.resize', [64], 'image.resize: expected [width, height]'),
    ('image.layout', 'CHW', "image.layout: expected one of ['NCHW', 'NHWC'], found 'CHW'"),
    ('image.interpolation', 'bilinear', 'image.interpolation: expected one of'),
    ('image.normalize', 'imagenet', 'image.normalize: expected one of'),
    ('image.source_encodings', ['yuv422'], 'image.source_encodings[0]: expected one of'),
    ('image.source_encodings', ['16UC1'], "'16UC1' cannot feed a 'rgb' image"),
    ('image.crop', [0, 0, 0, 10], 'image.crop: expected [x, y, width, height]'),
    ('image', KeyError, 'image: an observation term uses the camera but the card has no image'),
    ('action.joint_names', ['wrist'], "action.joint_names: ['wrist'] not in joint_names"),
    ('action.scale', [1.0, 2.0], 'action.scale: expected 3 values, found 2'),
    ('action.offset', 'zero', "action.offset: expected 'default', a number or 3 numbers"),
    ('action.clip', [[1.0, -1.0], [0, 1], [0, 1]], 'action.clip[0]: lower bound 1.0 is above'),
    ('inputs.0.group', 'proprio', "inputs[0].group: 'proprio' is not an observation group"),
    ('inputs.0.shape', [1, -9], 'inputs[0].shape: expected integer dims >= 0'),
    ('inputs.1', {'name': 'image', 'shape': [1, 3, 64, 64]}, 'give exactly one of group'),
    ('observations.policy.terms', [], 'observations.policy.terms: a group needs at least one'),
    ('observations.policy.terms.0.clip', [1.0, 0.0], 'terms[0].clip: lower bound 1.0'),
    ('observations.policy.terms.0.history_length', -2, 'history_length: expected >= 0'),
    ('observations.policy.terms.0.gain', 2.0, "terms[0]: unknown field(s) ['gain']"),
    ('inputs.1.group', 'policy', "observations: group(s) ['camera'] feed no model input"),
])
def test_bad_card_names_the_field(card_data, path, value, message):
    data = copy.deepcopy(card_data)
    _set(data, path, value)
    with pytest.raises(CardError) as err:
        card_from_dict(data)
    assert message in str(err.value)


def test_load_card_errors_name_the_file(tmp_path):
    with pytest.raises(CardError, match='cannot read policy card'):
        load_card(tmp_path / 'missing.yaml')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('name: [unclosed')
    with pytest.raises(CardError, match=f'{bad}: not valid YAML'):
        load_card(bad)
    python = tmp_path / 'python.yaml'
    python.write_text('!!python/object/apply:os.system ["echo unsafe"]')
    with pytest.raises(CardError, match='not valid YAML'):
        load_card(python)
