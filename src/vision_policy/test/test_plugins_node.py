"""
A user's plugin in the running node, over real rclpy and DDS.

It is loaded only when the operator lists it, its source is subscribed, and a
broken term holds the robot with the reason.
"""

import numpy as np
from rclpy.parameter import Parameter
from std_msgs.msg import Float64
from test_node import JOINTS, linear_policy, Rig  # noqa: I100 (test helper)
from vision_policy.monitor import HoldReason
import yaml

PLUGIN = """
import numpy as np
from vision_policy.action import MappedTerm
from vision_policy.observation import extra, Term
from vision_policy.registry import ActionTerm, ObservationTerm
from vision_policy.sources import Source


def make_flaky(card, params):
    def compute(sample, out):
        if sample.joint_pos[0] > 0.5:
            raise RuntimeError('encoder fault')
        out[0] = np.nan if sample.joint_pos[0] < -0.5 else extra(sample, 'gain')[0]
    return Term((1,), compute)


def make_wide(card, params):
    return Term((2,), lambda sample, out: None)


def read_gain(msg):
    if msg.data < 0:
        raise KeyError('calibration table')
    return {'gain': np.array([msg.data])}


class Fragile(MappedTerm):
    def __init__(self, spec):
        super().__init__(len(spec.joint_names))

    def map(self, raw, joint_pos, out):
        if joint_pos[1] > 1.0:
            raise RuntimeError('servo bus down')
        out[:] = raw


GAIN = Source('gain', 'std_msgs/msg/Float64', 'gain', read_gain, stamped=False,
              qos='reliable')
FLAKY = ObservationTerm('flaky', make_flaky, 1, needs=('gain',))
WIDE = ObservationTerm('wide', make_wide, 1)
FRAGILE = ActionTerm('fragile', lambda card, spec: Fragile(spec),
                     lambda spec: len(spec.joint_names))
VISION_POLICY_PLUGINS = [GAIN, FLAKY, WIDE, FRAGILE]
"""


def plugin_model(tmp_path, monkeypatch, term='flaky'):
    """Write a camera-less policy of joint_pos_rel + one plugin term, and the plugin module."""
    (tmp_path / 'vp_node_plugin.py').write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return linear_policy(tmp_path, 'plugin', np.full((4, 3), 0.01, dtype=np.float32),
                         [{'name': 'joint_pos_rel'}, {'name': term}])


def test_plugin_term_and_source_run_and_a_broken_term_holds(harness, tmp_path, monkeypatch):
    path = plugin_model(tmp_path, monkeypatch)
    rig = Rig(harness, path, plugin_modules=['vp_node_plugin'], max_joint_state_age=1.0,
              max_extra_age=5.0)
    assert rig.node.core.needs == {'gain'}
    gain_pub = rig.peer.create_publisher(Float64, '/gain', 10)
    assert harness.wait_for(lambda: gain_pub.get_subscription_count() > 0)
    ok = [0.0, 0.3, -0.6]
    rig.send_joints(ok, (0.0, 0.0, 0.0))
    assert harness.wait_for(lambda: rig.node.hold is not None and
                            'gain' in str(rig.node.hold))

    def commands():
        return rig.node.stats.counters.commands

    assert harness.wait_for(lambda: (gain_pub.publish(Float64(data=2.0)),
                                     rig.send_joints(ok), commands() > 0)[-1])
    assert rig.node.core.tick.inputs['obs'].ravel().tolist() == [0.0, 0.0, 0.0, 2.0]
    for bad, words in (([0.6, 0.3, -0.6], ["'flaky' (module vp_node_plugin)",
                                           'RuntimeError: encoder fault']),
                       ([-0.6, 0.3, -0.6], ["'flaky'", 'returned NaN/Inf'])):
        assert harness.wait_for(lambda: (gain_pub.publish(Float64(data=2.0)),
                                         rig.send_joints(bad),
                                         rig.node.hold is not None and
                                         rig.node.hold.reason is HoldReason.TERM_FAILED)[-1])
        sent = commands()
        for word in words:
            assert word in rig.node.hold.detail
        reason = {kv.key: kv.value for kv in rig.node.diagnostics().values}['hold_reason']
        assert reason.startswith('observation term failed: ')
        # Held: more bad joint states bring no command, and the node is still active.
        for _ in range(5):
            rig.send_joints(bad)
            harness.wait_for(lambda: False, timeout=0.05)
        assert commands() == sent
        assert rig.node._state_machine.current_state[1] == 'active'
        assert harness.wait_for(lambda: (gain_pub.publish(Float64(data=2.0)),
                                         rig.send_joints(ok), commands() > sent)[-1])
    assert rig.counter('term_failures') >= 2


def test_unlisted_plugin_module_is_never_loaded_and_configure_names_the_term(
        harness, tmp_path, monkeypatch):
    path = plugin_model(tmp_path, monkeypatch)
    rig = Rig(harness, path, autostart=False)
    rig.node.trigger_configure()
    assert rig.node._state_machine.current_state[1] == 'unconfigured'
    assert "unknown observation term 'flaky'" in rig.node.error
    assert 'plugin_modules' in rig.node.error


def test_plugin_of_wrong_width_fails_configure_naming_it(harness, tmp_path, monkeypatch):
    path = plugin_model(tmp_path, monkeypatch, term='wide')
    rig = Rig(harness, path, autostart=False, plugin_modules=['vp_node_plugin'])
    rig.node.trigger_configure()
    assert rig.node._state_machine.current_state[1] == 'unconfigured'
    for word in ("'wide' (module vp_node_plugin)", 'made shape [2]', 'declared width 1'):
        assert word in rig.node.error
    rig.node.set_parameters([Parameter('plugin_modules', value=['no_such_module_xyz'])])
    rig.node.trigger_configure()
    assert "importing 'no_such_module_xyz' raised ModuleNotFoundError" in rig.node.error


def test_velocity_action_card_is_refused_not_published_as_positions(
        harness, tmp_path, monkeypatch):
    path = plugin_model(tmp_path, monkeypatch)
    card = yaml.safe_load(path.with_suffix('.yaml').read_text())
    card['observations']['policy']['terms'][1] = {'name': 'joint_vel', 'params': {
        'joint_names': [JOINTS[0]]}}
    card['action'] = {'terms': [
        {'type': 'joint_position', 'joint_names': JOINTS[:2], 'clip': [[-2, 2], [-1.5, 1.5]]},
        {'type': 'joint_velocity', 'joint_names': JOINTS[2:], 'clip': [[-1, 1]]}]}
    path.with_suffix('.yaml').write_text(yaml.safe_dump(card))
    # A velocity term's clip is no position limit: the card-wide clip is gone, so limits
    # are given here.
    rig = Rig(harness, path, autostart=False, position_lower_limits=[-2.0],
              position_upper_limits=[2.0])
    rig.node.trigger_configure()
    assert rig.node._state_machine.current_state[1] == 'unconfigured'
    assert "joint velocities for ['elbow_joint']" in rig.node.error


def test_broken_plugin_source_and_action_term_hold_without_a_crash(harness, tmp_path,
                                                                   monkeypatch):
    path = plugin_model(tmp_path, monkeypatch)
    card = yaml.safe_load(path.with_suffix('.yaml').read_text())
    card['action'] = {'terms': [{'type': 'fragile', 'joint_names': JOINTS,
                                 'clip': [[-2, 2], [-1.5, 1.5], [-2.5, 2.5]]}]}
    path.with_suffix('.yaml').write_text(yaml.safe_dump(card))
    rig = Rig(harness, path, plugin_modules=['vp_node_plugin'], max_joint_state_age=1.0,
              max_extra_age=5.0)
    gain_pub = rig.peer.create_publisher(Float64, '/gain', 10)
    assert harness.wait_for(lambda: gain_pub.get_subscription_count() > 0)
    ok = [0.0, 0.3, -0.6]

    def commands():
        return rig.node.stats.counters.commands

    assert harness.wait_for(lambda: (gain_pub.publish(Float64(data=1.0)),
                                     rig.send_joints(ok), commands() > 0)[-1])
    # The source's read raises: the message is rejected and counted, the node runs on.
    rejected = rig.counter('extras_rejected')
    assert harness.wait_for(lambda: (gain_pub.publish(Float64(data=-1.0)),
                                     rig.counter('extras_rejected') > rejected)[-1])
    # The action term raises: held with its name, no command from it.
    assert harness.wait_for(lambda: (gain_pub.publish(Float64(data=1.0)),
                                     rig.send_joints([0.0, 1.2, -0.6]),
                                     rig.node.hold is not None and
                                     rig.node.hold.reason is HoldReason.TERM_FAILED)[-1])
    assert "'fragile' (module vp_node_plugin) raised RuntimeError: servo bus down" in \
        rig.node.hold.detail
    sent = commands()
    for _ in range(5):
        rig.send_joints([0.0, 1.2, -0.6])
        harness.wait_for(lambda: False, timeout=0.05)
    assert commands() == sent
    assert rig.node._state_machine.current_state[1] == 'active'
