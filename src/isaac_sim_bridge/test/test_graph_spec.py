"""Tests of the action graph description built from the bridge config."""
import copy
from pathlib import Path

from isaac_sim_bridge.graph_spec import (
    BridgeConfigError, graph_spec_from_dict, NODE_TYPES, PrimTargets)
import pytest
import yaml

CONFIG_FILE = Path(__file__).resolve().parent.parent / 'config' / 'isaac_sim_bridge.yaml'


@pytest.fixture
def config() -> dict:
    return yaml.safe_load(CONFIG_FILE.read_text())


def _types(spec) -> dict:
    return {node.name: node.node_type for node in spec.nodes}


def _incoming(spec, node: str, attr: str) -> list:
    return [c.src for c in spec.connections if c.dst == f'{node}.{attr}']


def _assert_well_formed(spec):
    types = _types(spec)
    assert len(types) == len(spec.nodes), 'node names must be unique'
    for node in spec.nodes:
        assert node.node_type in NODE_TYPES, node.node_type
    for c in spec.connections:
        assert c.src_node in types and c.dst_node in types, c
        src_type = NODE_TYPES[types[c.src_node]].get(c.src_attr)
        dst_type = NODE_TYPES[types[c.dst_node]].get(c.dst_attr)
        assert c.src_attr.startswith('outputs:') and src_type is not None, c
        assert c.dst_attr.startswith('inputs:') and dst_type is not None, c
        assert src_type == dst_type, (c, src_type, dst_type)
    for v in spec.values:
        assert v.node in types, v
        declared = NODE_TYPES[types[v.node]].get(v.attr)
        assert v.attr.startswith('inputs:') and declared is not None, v
        if declared == 'target':
            assert isinstance(v.value, PrimTargets) and v.value.paths, v
        elif declared == 'string':
            assert isinstance(v.value, str), v
        elif declared in ('uint', 'uint64'):
            assert isinstance(v.value, int) and v.value >= 0, v
    # No input is fed twice (OmniGraph keeps one upstream per non-execution input).
    data_inputs = [c.dst for c in spec.connections
                   if NODE_TYPES[types[c.dst_node]][c.dst_attr] != 'execution']
    assert len(data_inputs) == len(set(data_inputs))


def test_shipped_config_gives_well_formed_graph(config):
    spec = graph_spec_from_dict(config)
    _assert_well_formed(spec)
    assert spec.graph_path == '/World/ROS2BridgeGraph'
    assert spec.evaluator_name == 'execution'
    assert sorted(_types(spec).values()) == sorted([
        'isaacsim.core.nodes.OnPhysicsStep',
        'isaacsim.core.nodes.IsaacReadSimulationTime',
        'isaacsim.ros2.bridge.ROS2Context',
        'isaacsim.ros2.bridge.ROS2PublishClock',
        'isaacsim.core.nodes.IsaacCreateRenderProduct',
        'isaacsim.ros2.bridge.ROS2CameraHelper',
        'isaacsim.ros2.bridge.ROS2CameraInfoHelper',
        'isaacsim.ros2.bridge.ROS2PublishJointState',
        'isaacsim.ros2.bridge.ROS2SubscribeJointState',
        'isaacsim.core.nodes.IsaacArticulationController',
    ])


def test_everything_ticks_on_physics_step(config):
    config['camera']['depth'] = True
    config['tf']['enabled'] = True
    spec = graph_spec_from_dict(config)
    # OnPhysicsStep only fires in an on-demand graph (OgnOnPhysicsStep.cpp).
    assert spec.pipeline_stage == 'on_demand'
    types = _types(spec)
    ticks = [n for n, t in types.items() if t == 'isaacsim.core.nodes.OnPhysicsStep']
    assert ticks == ['OnPhysicsStep']
    assert not [t for t in types.values() if 'OnPlaybackTick' in t]
    for name, node_type in types.items():
        if 'inputs:execIn' not in NODE_TYPES[node_type]:
            continue
        sources = _incoming(spec, name, 'inputs:execIn')
        assert sources, f'{name} is never executed'
        assert all(s in ('OnPhysicsStep.outputs:step', 'CreateRenderProduct.outputs:execOut')
                   for s in sources), (name, sources)
    assert _incoming(spec, 'CreateRenderProduct', 'inputs:execIn') == [
        'OnPhysicsStep.outputs:step']


def test_topics_frames_and_resolution_follow_config(config):
    config['camera'].update(width=320, height=240, image_topic='/cam/rgb',
                            camera_info_topic='/cam/info', frame_id='cam_frame')
    config['robot'].update(joint_states_topic='/robot/joint_states',
                           joint_command_topic='/robot/joint_command',
                           articulation_prim='/World/arm')
    config['clock_topic'] = '/sim/clock'
    spec = graph_spec_from_dict(config)
    assert spec.value('CreateRenderProduct', 'inputs:width') == 320
    assert spec.value('CreateRenderProduct', 'inputs:height') == 240
    assert spec.value('CreateRenderProduct', 'inputs:cameraPrim') == PrimTargets(
        ('/World/robot/camera',))
    assert spec.value('CameraRgb', 'inputs:type') == 'rgb'
    assert spec.value('CameraRgb', 'inputs:topicName') == '/cam/rgb'
    assert spec.value('CameraRgb', 'inputs:frameId') == 'cam_frame'
    assert spec.value('CameraInfo', 'inputs:topicName') == '/cam/info'
    assert spec.value('CameraInfo', 'inputs:frameId') == 'cam_frame'
    assert spec.value('PublishClock', 'inputs:topicName') == '/sim/clock'
    assert spec.value('PublishJointState', 'inputs:topicName') == '/robot/joint_states'
    assert spec.value('PublishJointState', 'inputs:targetPrim') == PrimTargets(
        ('/World/arm',))
    assert spec.value('SubscribeJointState', 'inputs:topicName') == '/robot/joint_command'
    assert spec.value('ArticulationController', 'inputs:robotPath') == '/World/arm'


def test_shipped_config_values(config):
    spec = graph_spec_from_dict(config)
    assert spec.value('CreateRenderProduct', 'inputs:width') == 640
    assert spec.value('CreateRenderProduct', 'inputs:height') == 480
    assert spec.value('CameraRgb', 'inputs:topicName') == '/camera/image_raw'
    assert spec.value('CameraInfo', 'inputs:topicName') == '/camera/camera_info'
    assert spec.value('PublishJointState', 'inputs:topicName') == '/joint_states'
    assert spec.value('SubscribeJointState', 'inputs:topicName') == '/joint_command'
    assert spec.value('PublishClock', 'inputs:topicName') == '/clock'


def test_camera_helpers_share_one_render_product(config):
    config['camera']['depth'] = True
    spec = graph_spec_from_dict(config)
    for helper in ('CameraRgb', 'CameraInfo', 'CameraDepth'):
        assert _incoming(spec, helper, 'inputs:renderProductPath') == [
            'CreateRenderProduct.outputs:renderProductPath']


def test_ros_nodes_share_the_context_and_sim_time(config):
    config['tf']['enabled'] = True
    spec = graph_spec_from_dict(config)
    types = _types(spec)
    for name, node_type in types.items():
        if 'inputs:context' in NODE_TYPES[node_type]:
            assert _incoming(spec, name, 'inputs:context') == ['ROS2Context.outputs:context']
    for name in ('PublishClock', 'PublishJointState', 'PublishTransformTree'):
        assert _incoming(spec, name, 'inputs:timeStamp') == [
            'ReadSimulationTime.outputs:simulationTime']


def test_joint_commands_drive_the_articulation(config):
    spec = graph_spec_from_dict(config)
    for attr in ('jointNames', 'positionCommand', 'velocityCommand', 'effortCommand'):
        assert _incoming(spec, 'ArticulationController', f'inputs:{attr}') == [
            f'SubscribeJointState.outputs:{attr}']


def test_depth_toggle_adds_and_removes_helper(config):
    assert 'CameraDepth' not in _types(graph_spec_from_dict(config))
    config['camera']['depth'] = True
    spec = graph_spec_from_dict(config)
    _assert_well_formed(spec)
    assert _types(spec)['CameraDepth'] == 'isaacsim.ros2.bridge.ROS2CameraHelper'
    assert spec.value('CameraDepth', 'inputs:type') == 'depth'
    assert spec.value('CameraDepth', 'inputs:topicName') == '/camera/depth/image_raw'
    assert spec.value('CameraDepth', 'inputs:frameId') == 'camera_optical_frame'


def test_tf_toggle_adds_and_removes_publisher(config):
    assert 'PublishTransformTree' not in _types(graph_spec_from_dict(config))
    config['tf'].update(enabled=True, target_prims=['/World/robot', '/World/robot/camera'])
    spec = graph_spec_from_dict(config)
    _assert_well_formed(spec)
    assert _types(spec)['PublishTransformTree'] == \
        'isaacsim.ros2.bridge.ROS2PublishTransformTree'
    assert spec.value('PublishTransformTree', 'inputs:topicName') == '/tf'
    assert spec.value('PublishTransformTree', 'inputs:parentPrim') == PrimTargets(('/World',))
    assert spec.value('PublishTransformTree', 'inputs:targetPrims') == PrimTargets(
        ('/World/robot', '/World/robot/camera'))


@pytest.mark.parametrize('path, value, key', [
    (('camera', 'width'), 0, 'camera.width'),
    (('camera', 'height'), '480', 'camera.height'),
    (('camera', 'width'), True, 'camera.width'),
    (('camera', 'prim_path'), 'World/robot/camera', 'camera.prim_path'),
    (('camera', 'depth'), 'yes', 'camera.depth'),
    (('camera', 'image_topic'), '', 'camera.image_topic'),
    (('robot', 'articulation_prim'), None, 'robot.articulation_prim'),
    (('robot', 'joint_command_topic'), '/joint command', 'robot.joint_command_topic'),
    (('physics_dt',), -0.01, 'physics_dt'),
    (('physics_dt',), float('nan'), 'physics_dt'),
    (('rendering_dt',), 0.001, 'rendering_dt'),
    (('tf', 'target_prims'), 'robot', 'tf.target_prims'),
    (('camera',), [640, 480], 'camera'),
])
def test_bad_config_names_the_key(config, path, value, key):
    bad = copy.deepcopy(config)
    target = bad
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(BridgeConfigError) as err:
        graph_spec_from_dict(bad)
    assert key in str(err.value)


def test_missing_key_is_named(config):
    del config['robot']['joint_states_topic']
    with pytest.raises(BridgeConfigError, match='robot.joint_states_topic'):
        graph_spec_from_dict(config)


def test_tf_enabled_without_targets_is_rejected(config):
    config['tf'].update(enabled=True, target_prims=[])
    with pytest.raises(BridgeConfigError, match='tf.target_prims'):
        graph_spec_from_dict(config)


def test_non_mapping_config_is_rejected():
    with pytest.raises(BridgeConfigError, match='mapping'):
        graph_spec_from_dict(['camera'])
