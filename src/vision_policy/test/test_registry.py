"""
The one registry: entry points, plugin_modules, and what a broken plugin does.

Fake distributions (a dist-info folder with entry_points.txt) are put on
sys.path for a test, as pip would install them; importlib.metadata finds them.
"""

import textwrap

import numpy as np
import pytest
from vision_policy.card import card_from_dict
from vision_policy.observation import ObservationBuilder, Sample, TermError
from vision_policy.registry import ACTION_GROUP, load_registry, OBSERVATION_GROUP, PluginError, \
    SOURCE_GROUP

TERMS = """
import numpy as np
from vision_policy.observation import Term
from vision_policy.registry import ObservationTerm


def _const(value, width=1):
    def make(card, params):
        def compute(sample, out):
            out[:] = value
        return Term((width,), compute)
    return make


def _raise_make(card, params):
    return 1 / 0


def _raises_at_run(card, params):
    def compute(sample, out):
        raise RuntimeError('sensor driver gone')
    return Term((1,), compute)


GOOD = ObservationTerm('good_term', _const(7.0), 1, needs=('good_source',),
                       isaaclab_funcs=('my_task.mdp:good',))
WRONG_TYPE = 42
RAISES_MAKE = ObservationTerm('raises_make', _raise_make, 1)
WRONG_WIDTH = ObservationTerm('wrong_width', _const(1.0, width=4), 3)
RAISES_AT_RUN = ObservationTerm('raises_at_run', _raises_at_run, 1)
GIVES_NAN = ObservationTerm('gives_nan', _const(float('nan')), 1)
MISNAMED = ObservationTerm('another_name', _const(1.0), 1)
TWIN_A = ObservationTerm('twin_term', _const(1.0), 1)
TWIN_B = ObservationTerm('twin_term', _const(2.0), 1)
VISION_POLICY_PLUGINS = [GOOD]
"""

ENTRY_POINTS_A = """
[vision_policy.observation_terms]
good_term = vp_fake_terms:GOOD
wrong_type = vp_fake_terms:WRONG_TYPE
raises_make = vp_fake_terms:RAISES_MAKE
wrong_width = vp_fake_terms:WRONG_WIDTH
raises_at_run = vp_fake_terms:RAISES_AT_RUN
gives_nan = vp_fake_terms:GIVES_NAN
misnamed = vp_fake_terms:MISNAMED
broken_import = vp_fake_broken:ANY
twin_term = vp_fake_terms:TWIN_A
"""


def _dist(root, name, entry_points):
    info = root / f'{name}-1.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n')
    (info / 'entry_points.txt').write_text(textwrap.dedent(entry_points))


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    (tmp_path / 'vp_fake_terms.py').write_text(TERMS)
    (tmp_path / 'vp_fake_broken.py').write_text("raise ImportError('needs torch')\n")
    (tmp_path / 'vp_no_list.py').write_text('X = 1\n')
    _dist(tmp_path, 'fake_plugins_a', ENTRY_POINTS_A)
    _dist(tmp_path, 'fake_plugins_b',
          '[vision_policy.observation_terms]\ntwin_term = vp_fake_terms:TWIN_B\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def card(term, width=1):
    return card_from_dict({
        'control_dt': 0.02, 'joint_names': ['j0', 'j1'],
        'inputs': [{'name': 'obs', 'shape': [1, width + 2], 'group': 'policy'}],
        'observations': {'policy': {'terms': [{'name': term}, {'name': 'joint_pos'}]}},
        'action': {'scale': 1.0, 'offset': 0.0}})


def sample():
    return Sample(joint_pos=np.zeros(2, np.float32), joint_vel=np.zeros(2, np.float32),
                  last_action=np.zeros(2, np.float32))


def test_builtins_come_from_vision_policy_entry_points():
    registry = load_registry()
    for group, name in ((OBSERVATION_GROUP, 'joint_pos'), (OBSERVATION_GROUP, 'height_scan'),
                        (ACTION_GROUP, 'binary_joint_position'), (SOURCE_GROUP, 'imu'),
                        (SOURCE_GROUP, 'height_map')):
        assert registry.is_builtin(group, name), name
        assert 'distribution vision_policy' in registry.origin(group, name)
    assert registry.observation_term('base_ang_vel').needs == ('imu',)
    assert registry.by_isaaclab_func('isaaclab.envs.mdp.observations.imu_ang_vel').name == \
        'base_ang_vel'


def test_installed_plugin_term_is_found_and_fills_its_slice(fake_plugins):
    registry = load_registry()
    builder = ObservationBuilder(card('good_term'), registry)
    assert builder.needs == {'good_source'}
    assert builder.build(sample())['obs'].ravel().tolist() == [7.0, 0.0, 0.0]
    assert registry.by_isaaclab_func('my_task.mdp:good') is registry.observation_term('good_term')


def test_broken_entry_points_do_not_break_other_cards(fake_plugins):
    registry = load_registry()
    ObservationBuilder(card('joint_vel', width=2), registry)
    assert set(registry.broken) >= {(OBSERVATION_GROUP, n) for n in (
        'wrong_type', 'misnamed', 'broken_import', 'twin_term')}


@pytest.mark.parametrize('term, words', [
    ('broken_import', ['broken_import = vp_fake_broken:ANY', 'fake_plugins_a',
                       'ImportError: needs torch']),
    ('wrong_type', ['expected a vision_policy.registry.ObservationTerm, found int']),
    ('misnamed', ["named 'misnamed' but the definition is 'another_name'"]),
    ('twin_term', ['a second definition', 'fake_plugins_a',
                   'fake_plugins_b']),
    ('raises_make', ['raises_make', 'fake_plugins_a', 'ZeroDivisionError at configure']),
    ('wrong_width', ['made shape [4]', 'declared width 3', 'vp_fake_terms:WRONG_WIDTH']),
    ('leg_phase', ["unknown observation term 'leg_phase'",
                   "entry point in group 'vision_policy.observation_terms' named 'leg_phase'",
                   'plugin_modules']),
])
def test_bad_plugin_fails_configure_naming_it(fake_plugins, term, words):
    with pytest.raises(PluginError) as err:
        ObservationBuilder(card(term, width=3 if term == 'wrong_width' else 1))
    for word in words:
        assert word in str(err.value), str(err.value)


@pytest.mark.parametrize('term, words', [
    ('raises_at_run', ['raises_at_run', 'fake_plugins_a', 'RuntimeError: sensor driver gone']),
    ('gives_nan', ['gives_nan', 'returned NaN/Inf']),
])
def test_broken_term_at_run_time_raises_term_error_not_a_command(fake_plugins, term, words):
    builder = ObservationBuilder(card(term))
    with pytest.raises(TermError) as err:
        builder.build(sample())
    for word in words:
        assert word in str(err.value)


def test_plugin_modules_are_loaded_only_when_listed(fake_plugins):
    # vp_fake_terms is importable, but a card naming a term does not import anything.
    (fake_plugins / 'fake_plugins_a-1.0.dist-info' / 'entry_points.txt').unlink()
    assert 'good_term' not in load_registry().observation_terms
    registry = load_registry(plugin_modules=['vp_fake_terms'])
    assert registry.origin(OBSERVATION_GROUP, 'good_term') == 'module vp_fake_terms'
    with pytest.raises(PluginError, match="importing 'vp_fake_broken' raised ImportError"):
        load_registry(plugin_modules=['vp_fake_broken'])
    with pytest.raises(PluginError, match="'vp_no_list' has no list VISION_POLICY_PLUGINS"):
        load_registry(plugin_modules=['vp_no_list'])
