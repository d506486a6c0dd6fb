"""Action mapping and the safety filter."""

import math

import numpy as np
import pytest

from vision_policy.action import ActionMapper, SafetyFilter, SafetyLimits
from vision_policy.card import card_from_dict


def card(action):
    return card_from_dict({
        'control_dt': 0.02, 'joint_names': ['a', 'b', 'c'], 'default_joint_pos': [0.1, 0.2, 0.3],
        'inputs': [{'name': 'obs', 'shape': [1, 3], 'group': 'p'}],
        'observations': {'p': {'terms': [{'name': 'joint_pos'}]}}, 'action': action})


def test_scale_offset_default_and_clip():
    mapper = ActionMapper(card({'scale': [1.0, 2.0, 0.5], 'offset': 'default',
                                'clip': [[-1, 1], [-1, 1], [0.0, 0.4]]}))
    np.testing.assert_allclose(mapper.map(np.array([0.5, -1.0, 1.0])), [0.6, -1.0, 0.4])


def test_subset_of_joints_and_explicit_offset():
    mapper = ActionMapper(card({'joint_names': ['c', 'a'], 'scale': 0.25, 'offset': [1.0, 2.0]}))
    assert mapper.joint_names == ('c', 'a')
    np.testing.assert_allclose(mapper.map(np.array([4.0, -4.0])), [2.0, 1.0])


def limits(step=0.1):
    return SafetyLimits.build(3, [-1.0, -1.0, -1.0], [1.0, 1.0, 0.5], [step])


def test_position_limits_and_step_limit():
    f = SafetyFilter(limits())
    f.set_reference(np.array([0.0, 0.0, 0.45]))
    np.testing.assert_allclose(f.apply(np.array([0.05, -5.0, 5.0])), [0.05, -0.1, 0.5])
    np.testing.assert_allclose(f.apply(np.array([0.05, -5.0, 5.0])), [0.05, -0.2, 0.5])


def test_reference_outside_limits_snaps_to_nearest_limit():
    f = SafetyFilter(limits())
    f.set_reference(np.array([3.0, -3.0, 0.0]))
    np.testing.assert_allclose(f.apply(np.array([3.0, -3.0, 0.0])), [1.0, -1.0, 0.0])


def test_nan_or_inf_gives_no_command():
    f = SafetyFilter(limits())
    f.set_reference(np.zeros(3))
    assert f.apply(np.array([np.nan, 0, 0])) is None
    assert f.apply(np.array([0, np.inf, 0])) is None
    np.testing.assert_allclose(f.command, 0.0)  # the last command is untouched


def test_no_reference_no_command():
    assert SafetyFilter(limits()).apply(np.zeros(3)) is None


@pytest.mark.parametrize('lower, upper, step, message', [
    ([0.0, 0.0], [1.0], [0.1], 'position_lower_limits: expected 1 or 3 values, found 2'),
    ([1.0], [0.0], [0.1], 'lower > upper for joint index(es) [0, 1, 2]'),
    ([0.0], [1.0], [0.0], 'max_joint_step: every value must be finite and > 0'),
    # An infinite step would switch the step limit off (issue 11, defect 5).
    ([0.0], [1.0], [float('inf')], 'max_joint_step: every value must be finite and > 0'),
    ([float('nan')], [1.0], [0.1], 'NaN is not a limit'),
])
def test_bad_limits(lower, upper, step, message):
    with pytest.raises(ValueError) as err:
        SafetyLimits.build(3, lower, upper, step)
    assert message in str(err.value)


def card_with_clip(clip):
    return card_from_dict({
        'control_dt': 0.02, 'joint_names': ['a', 'b'], 'default_joint_pos': [0.0, 0.0],
        'inputs': [{'name': 'obs', 'shape': [1, 2], 'group': 'policy'}],
        'observations': {'policy': {'terms': [{'name': 'joint_pos'}]}},
        'action': {'joint_names': ['a', 'b'], 'scale': 1.0, 'offset': 0.0, 'clip': clip}})


def test_limits_from_card_fill_infinite_limits_with_the_clip():
    card = card_with_clip([[-1.0, 1.0], [-2.0, 2.0]])
    limits = SafetyLimits.from_card(card, [-math.inf], [0.5, math.inf], [0.1])
    assert limits.lower == (-1.0, -2.0) and limits.upper == (0.5, 2.0)
    assert limits.max_step == (0.1, 0.1)


def test_limits_from_card_without_clip_need_finite_limits():
    card = card_with_clip(None)
    with pytest.raises(ValueError, match='no action clip'):
        SafetyLimits.from_card(card, [-math.inf], [1.0], [0.1])
    assert SafetyLimits.from_card(card, [-1.0], [1.0], [0.1]).lower == (-1.0, -1.0)


def terms_card(terms):
    joints = [j for t in terms for j in t['joint_names']]
    return card_from_dict({
        'control_dt': 0.02, 'joint_names': joints, 'default_joint_pos': [0.0] * len(joints),
        'inputs': [{'name': 'obs', 'shape': [1, len(joints)], 'group': 'policy'}],
        'observations': {'policy': {'terms': [{'name': 'joint_pos'}]}},
        'action': {'terms': terms}})


def test_a_relative_terms_step_clip_is_never_taken_as_position_limits():
    # The clip of a relative term bounds the step: as position limits it would make a hold
    # at 1.0 rad jump the joint to 0.1 rad.
    relative = terms_card([{'type': 'relative_joint_position', 'joint_names': ['a'],
                            'scale': 0.1, 'offset': 0.0, 'clip': [[-0.1, 0.1]]}])
    assert relative.action.clip is None
    with pytest.raises(ValueError, match='no action clip'):
        SafetyLimits.from_card(relative, [-math.inf], [math.inf], [0.1])
    absolute = terms_card([{'type': 'joint_position', 'joint_names': ['a'], 'scale': 1.0,
                            'offset': 0.0, 'clip': [[-2.0, 2.0]]}])
    assert SafetyLimits.from_card(absolute, [-math.inf], [math.inf], [0.1]).upper == (2.0,)
