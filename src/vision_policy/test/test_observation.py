"""Observation terms and the builder against values computed by hand."""

import numpy as np
import pytest

from vision_policy.card import card_from_dict, CardError
from vision_policy.observation import ObservationBuilder, Sample
from vision_policy.registry import load_registry


def make_card(terms, history=None, obs_width=None, flatten=True, joints=3):
    names = ['j0', 'j1', 'j2', 'j3'][:joints]
    group = {'terms': terms, 'flatten_history_dim': flatten}
    if history is not None:
        group['history_length'] = history
    return {
        'control_dt': 0.02, 'joint_names': names,
        'default_joint_pos': [0.1, 0.2, 0.3, 0.4][:joints],
        'inputs': [{'name': 'obs', 'shape': [1, obs_width], 'group': 'policy'}],
        'observations': {'policy': group},
        'action': {'scale': 0.5},
    }


def sample(q, dq, last):
    return Sample(joint_pos=np.array(q, np.float32), joint_vel=np.array(dq, np.float32),
                  last_action=np.array(last, np.float32))


S = sample([1.0, 2.0, 3.0], [-1.0, 0.5, 4.0], [0.1, -0.2, 0.3])


@pytest.mark.parametrize('term, expected', [
    ('joint_pos', [1.0, 2.0, 3.0]),
    ('joint_pos_rel', [0.9, 1.8, 2.7]),          # minus default_joint_pos
    ('joint_vel', [-1.0, 0.5, 4.0]),
    ('joint_vel_rel', [-1.0, 0.5, 4.0]),         # default velocity is zero
    ('last_action', [0.1, -0.2, 0.3]),
    ('actions', [0.1, -0.2, 0.3]),
])
def test_each_term(term, expected):
    builder = ObservationBuilder(card_from_dict(make_card([{'name': term}], obs_width=3)))
    np.testing.assert_allclose(builder.build(S)['obs'][0], expected, rtol=1e-6)


def test_concatenation_order_clip_then_scale_and_joint_subset():
    terms = [
        {'name': 'joint_pos_rel', 'params': {'joint_names': ['j2', 'j0']}},
        # Isaac Lab: clip first, then scale: clip(-1, 0.5) then x2
        {'name': 'joint_vel', 'clip': [-1.0, 0.5], 'scale': 2.0},
        {'name': 'last_action', 'scale': [1.0, 10.0, 100.0]},
    ]
    builder = ObservationBuilder(card_from_dict(make_card(terms, obs_width=8)))
    obs = builder.build(S)['obs'][0]
    np.testing.assert_allclose(obs, [2.7, 0.9, -2.0, 1.0, 1.0, 0.1, -2.0, 30.0], rtol=1e-6)


def test_history_oldest_first_and_first_push_fills():
    card = card_from_dict(make_card([{'name': 'joint_pos', 'history_length': 3}],
                                    obs_width=9))
    builder = ObservationBuilder(card)
    first = builder.build(sample([1, 2, 3], [0] * 3, [0] * 3))['obs'][0].copy()
    # After a reset, Isaac Lab's CircularBuffer fills every slot with the first sample.
    np.testing.assert_allclose(first, [1, 2, 3] * 3)
    builder.build(sample([4, 5, 6], [0] * 3, [0] * 3))
    third = builder.build(sample([7, 8, 9], [0] * 3, [0] * 3))['obs'][0]
    np.testing.assert_allclose(third, [1, 2, 3, 4, 5, 6, 7, 8, 9])
    fourth = builder.build(sample([10, 11, 12], [0] * 3, [0] * 3))['obs'][0]
    np.testing.assert_allclose(fourth, [4, 5, 6, 7, 8, 9, 10, 11, 12])
    builder.reset()
    again = builder.build(sample([0, 0, 1], [0] * 3, [0] * 3))['obs'][0]
    np.testing.assert_allclose(again, [0, 0, 1] * 3)


def test_group_history_overrides_terms():
    terms = [{'name': 'joint_pos', 'history_length': 5}, {'name': 'last_action'}]
    card = card_from_dict(make_card(terms, history=2, obs_width=12))
    builder = ObservationBuilder(card)
    builder.build(sample([1, 2, 3], [0] * 3, [0.5] * 3))
    obs = builder.build(sample([4, 5, 6], [0] * 3, [0.7] * 3))['obs'][0]
    # Per term: [oldest, newest] flattened, terms in declaration order.
    np.testing.assert_allclose(obs, [1, 2, 3, 4, 5, 6, 0.5, 0.5, 0.5, 0.7, 0.7, 0.7],
                               rtol=1e-6)


def test_width_mismatch_says_how_many():
    with pytest.raises(CardError, match=r'produce 6 values .* \(7 values, missing 1\)'):
        ObservationBuilder(card_from_dict(make_card(
            [{'name': 'joint_pos'}, {'name': 'joint_vel'}], obs_width=7)))


def test_unknown_term_lists_known_ones():
    with pytest.raises(CardError) as err:
        ObservationBuilder(card_from_dict(make_card([{'name': 'joint_torque'}], obs_width=3)))
    assert "unknown observation term 'joint_torque'" in str(err.value)
    for name in load_registry().observation_terms:
        assert name in str(err.value)


def test_bad_scale_length():
    with pytest.raises(CardError, match='scale: expected 1 or 3 values, found 2'):
        ObservationBuilder(card_from_dict(make_card(
            [{'name': 'joint_pos', 'scale': [1.0, 2.0]}], obs_width=3)))


def test_builder_reuses_buffers():
    builder = ObservationBuilder(card_from_dict(make_card([{'name': 'joint_pos'}], obs_width=3)))
    a = builder.build(S)['obs']
    b = builder.build(S)['obs']
    assert a is b
