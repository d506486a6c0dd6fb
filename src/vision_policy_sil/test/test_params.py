"""SIL parameter files: they parse, name only known parameters, and agree on topics."""
from pathlib import Path

import pytest
import rclpy
from vision_policy_sil import topics
from vision_policy_sil.trajectory_to_joint_command import TrajectoryToJointCommand
import yaml

PACKAGE = Path(__file__).resolve().parent.parent
WORKSPACE = PACKAGE.parent.parent
SIL_ISAAC = PACKAGE / 'config' / 'sil_isaac.yaml'
BRIDGE_CONFIG = WORKSPACE / 'src' / 'isaac_sim_bridge' / 'config' / 'isaac_sim_bridge.yaml'
EXAMPLE_CARD = WORKSPACE / 'models' / 'reach_policy.yaml'

# Parameters of vision_policy's policy_inference node (its README / node module).
POLICY_PARAMETERS = {
    'use_sim_time', 'model_path', 'card_path', 'autostart', 'image_topic',
    'joint_states_topic', 'trajectory_topic', 'estop_topic', 'control_dt', 'trigger',
    'providers', 'intra_op_threads', 'max_image_age', 'max_joint_state_age',
    'time_from_start', 'robot_joint_names', 'position_lower_limits',
    'position_upper_limits', 'max_joint_step',
}


@pytest.fixture(scope='module')
def sil() -> dict:
    return yaml.safe_load(SIL_ISAAC.read_text())


def test_file_shape(sil):
    assert set(sil) == {'policy_inference', 'trajectory_to_joint_command'}
    for node, section in sil.items():
        assert set(section) == {'ros__parameters'}, node


def test_policy_parameters_are_known_and_sane(sil):
    params = sil['policy_inference']['ros__parameters']
    assert set(params) <= POLICY_PARAMETERS, set(params) - POLICY_PARAMETERS
    assert params['use_sim_time'] is True
    assert params['autostart'] is True
    assert params['trigger'] in ('timer', 'image')
    assert params['providers'][-1] == 'CPUExecutionProvider'
    assert isinstance(params['intra_op_threads'], int) and params['intra_op_threads'] > 0
    for key in ('control_dt', 'time_from_start'):
        assert isinstance(params[key], float) and params[key] >= 0.0, key
    for key in ('max_image_age', 'max_joint_state_age'):
        assert isinstance(params[key], float) and params[key] > 0.0, key
    # Declared as double arrays by the node: a scalar here would be a type error.
    for key in ('max_joint_step', 'position_lower_limits', 'position_upper_limits',
                'providers', 'robot_joint_names'):
        assert isinstance(params[key], list) and params[key], key
    assert all(isinstance(v, float) and v > 0.0 for v in params['max_joint_step'])
    names = params['robot_joint_names']
    lower, upper = params['position_lower_limits'], params['position_upper_limits']
    assert len(lower) == len(upper) == len(names) == len(set(names))
    assert all(lo < hi for lo, hi in zip(lower, upper))


def test_policy_topics_match_the_sil_graph(sil):
    params = sil['policy_inference']['ros__parameters']
    assert params['image_topic'] == topics.CAMERA_IMAGE
    assert params['joint_states_topic'] == topics.JOINT_STATES
    assert params['trajectory_topic'] == topics.TRAJECTORY
    adapter = sil['trajectory_to_joint_command']['ros__parameters']
    assert adapter['input_topic'] == topics.TRAJECTORY
    assert adapter['output_topic'] == topics.JOINT_COMMAND


def test_isaac_sim_bridge_config_publishes_the_same_topics():
    bridge = yaml.safe_load(BRIDGE_CONFIG.read_text())
    assert bridge['camera']['image_topic'] == topics.CAMERA_IMAGE
    assert bridge['camera']['camera_info_topic'] == topics.CAMERA_INFO
    assert bridge['robot']['joint_states_topic'] == topics.JOINT_STATES
    assert bridge['robot']['joint_command_topic'] == topics.JOINT_COMMAND
    assert bridge['clock_topic'] == '/clock'


@pytest.mark.skipif(not EXAMPLE_CARD.is_file(), reason='example policy card not present')
def test_robot_joints_cover_the_example_card(sil):
    card = yaml.safe_load(EXAMPLE_CARD.read_text())
    params = sil['policy_inference']['ros__parameters']
    # robot_joint_names maps the card's joints, in card order, to robot names.
    assert len(params['robot_joint_names']) == len(card['joint_names'])
    assert len(params['position_lower_limits']) == len(card['action']['joint_names'])


def test_adapter_declares_and_applies_every_parameter_of_the_file():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = TrajectoryToJointCommand(
            context=context, cli_args=['--ros-args', '--params-file', str(SIL_ISAAC)])
        try:
            expected = yaml.safe_load(SIL_ISAAC.read_text())[
                'trajectory_to_joint_command']['ros__parameters']
            for key, value in expected.items():
                assert node.has_parameter(key), key
                assert node.get_parameter(key).value == value, key
            assert node.output_topic == topics.JOINT_COMMAND
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_image_plan_wires_enabled_stages():
    both = topics.image_plan(resize=True, convert=True)
    assert (both.convert_input, both.policy_image) == (
        topics.RESIZED_IMAGE, topics.POLICY_IMAGE)
    resize_only = topics.image_plan(resize=True, convert=False)
    assert resize_only.policy_image == topics.RESIZED_IMAGE
    convert_only = topics.image_plan(resize=False, convert=True)
    assert (convert_only.convert_input, convert_only.policy_image) == (
        topics.CAMERA_IMAGE, topics.POLICY_IMAGE)
    neither = topics.image_plan(resize=False, convert=False)
    assert neither.policy_image == topics.CAMERA_IMAGE
    assert both.encoder_input == neither.encoder_input == topics.CAMERA_IMAGE
