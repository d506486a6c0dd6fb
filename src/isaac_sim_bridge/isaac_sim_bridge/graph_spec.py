"""
Describe the Isaac Sim ROS 2 bridge action graph as plain data (no Isaac Sim import).

Node type names and attribute names follow Isaac Sim 5.1.0 (identical in 5.0.0 and in
4.5, where the ``isaacsim.*`` extension names were introduced). They were read from the
OmniGraph node definitions in github.com/isaac-sim/IsaacSim at tag v5.1.0:

- source/extensions/isaacsim.core.nodes/nodes/OgnOnPhysicsStep.ogn
- source/extensions/isaacsim.core.nodes/nodes/OgnIsaacReadSimulationTime.ogn
- source/extensions/isaacsim.core.nodes/python/nodes/OgnIsaacCreateRenderProduct.ogn
- source/extensions/isaacsim.core.nodes/python/nodes/OgnIsaacArticulationController.ogn
- source/extensions/isaacsim.ros2.bridge/nodes/OgnROS2{Context,PublishClock,
  PublishJointState,SubscribeJointState,PublishTransformTree}.ogn
- source/extensions/isaacsim.ros2.bridge/python/nodes/OgnROS2Camera{,Info}Helper.ogn

and cross-checked against the standalone example
source/standalone_examples/api/isaacsim.ros2.bridge/moveit.py (joint state publisher /
subscriber -> articulation controller wiring) and the Isaac Sim docs tutorials
"ROS2 Joint Control: Extension Python Scripting" and "ROS2 Cameras".

The graph ticks on physics steps (``isaacsim.core.nodes.OnPhysicsStep``), so the joint
states, the clock and the joint commands are exchanged once per physics step, as a
controller on the robot would see them. OgnOnPhysicsStep.cpp only fires in a graph whose
pipeline stage is on-demand, hence ``pipeline_stage='on_demand'`` below.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import math
from typing import Any

# Node types used by the graph: OmniGraph type name -> declared attributes
# ('inputs:x' / 'outputs:x' -> OGN type). Only the attributes this package reads or
# writes are listed; all of them appear with these exact names and types in the .ogn
# files cited in the module docstring (tag v5.1.0).
TICK = 'isaacsim.core.nodes.OnPhysicsStep'
SIM_TIME = 'isaacsim.core.nodes.IsaacReadSimulationTime'
RENDER_PRODUCT = 'isaacsim.core.nodes.IsaacCreateRenderProduct'
ARTICULATION_CONTROLLER = 'isaacsim.core.nodes.IsaacArticulationController'
ROS2_CONTEXT = 'isaacsim.ros2.bridge.ROS2Context'
PUBLISH_CLOCK = 'isaacsim.ros2.bridge.ROS2PublishClock'
CAMERA_HELPER = 'isaacsim.ros2.bridge.ROS2CameraHelper'
CAMERA_INFO_HELPER = 'isaacsim.ros2.bridge.ROS2CameraInfoHelper'
PUBLISH_JOINT_STATE = 'isaacsim.ros2.bridge.ROS2PublishJointState'
SUBSCRIBE_JOINT_STATE = 'isaacsim.ros2.bridge.ROS2SubscribeJointState'
PUBLISH_TF = 'isaacsim.ros2.bridge.ROS2PublishTransformTree'

_ROS_PUBLISHER_INPUTS = {
    'inputs:execIn': 'execution',
    'inputs:context': 'uint64',
    'inputs:nodeNamespace': 'string',
    'inputs:topicName': 'string',
    'inputs:qosProfile': 'string',
    'inputs:queueSize': 'uint64',
}

NODE_TYPES: dict[str, dict[str, str]] = {
    TICK: {
        'outputs:step': 'execution',
        'outputs:deltaSimulationTime': 'double',
        'outputs:deltaSystemTime': 'double',
    },
    SIM_TIME: {
        'inputs:resetOnStop': 'bool',
        'outputs:simulationTime': 'double',
    },
    RENDER_PRODUCT: {
        'inputs:execIn': 'execution',
        'inputs:cameraPrim': 'target',
        'inputs:width': 'uint',
        'inputs:height': 'uint',
        'inputs:enabled': 'bool',
        'outputs:execOut': 'execution',
        'outputs:renderProductPath': 'token',
    },
    ARTICULATION_CONTROLLER: {
        'inputs:execIn': 'execution',
        'inputs:targetPrim': 'target',
        'inputs:robotPath': 'string',
        'inputs:jointNames': 'token[]',
        'inputs:jointIndices': 'int[]',
        'inputs:positionCommand': 'double[]',
        'inputs:velocityCommand': 'double[]',
        'inputs:effortCommand': 'double[]',
    },
    ROS2_CONTEXT: {
        'inputs:domain_id': 'uchar',
        'inputs:useDomainIDEnvVar': 'bool',
        'outputs:context': 'uint64',
    },
    PUBLISH_CLOCK: {**_ROS_PUBLISHER_INPUTS, 'inputs:timeStamp': 'double'},
    CAMERA_HELPER: {
        **_ROS_PUBLISHER_INPUTS,
        'inputs:enabled': 'bool',
        'inputs:frameId': 'string',
        'inputs:renderProductPath': 'token',
        'inputs:type': 'token',
        'inputs:resetSimulationTimeOnStop': 'bool',
        'inputs:useSystemTime': 'bool',
        'inputs:frameSkipCount': 'uint',
    },
    CAMERA_INFO_HELPER: {
        **_ROS_PUBLISHER_INPUTS,
        'inputs:enabled': 'bool',
        'inputs:frameId': 'string',
        'inputs:renderProductPath': 'token',
        'inputs:resetSimulationTimeOnStop': 'bool',
        'inputs:useSystemTime': 'bool',
        'inputs:frameSkipCount': 'uint',
    },
    PUBLISH_JOINT_STATE: {
        **_ROS_PUBLISHER_INPUTS,
        'inputs:targetPrim': 'target',
        'inputs:timeStamp': 'double',
    },
    SUBSCRIBE_JOINT_STATE: {
        **_ROS_PUBLISHER_INPUTS,
        'outputs:execOut': 'execution',
        'outputs:timeStamp': 'double',
        'outputs:jointNames': 'token[]',
        'outputs:positionCommand': 'double[]',
        'outputs:velocityCommand': 'double[]',
        'outputs:effortCommand': 'double[]',
    },
    PUBLISH_TF: {
        **_ROS_PUBLISHER_INPUTS,
        'inputs:parentPrim': 'target',
        'inputs:targetPrims': 'target',
        'inputs:timeStamp': 'double',
        'inputs:staticPublisher': 'bool',
    },
}

# Allowed values of ROS2CameraHelper.inputs:type that this graph uses (allowedTokens in
# OgnROS2CameraHelper.ogn also list segmentation and bounding-box types).
CAMERA_TYPE_RGB = 'rgb'
CAMERA_TYPE_DEPTH = 'depth'


class BridgeConfigError(ValueError):
    """A bridge config value is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class CameraConfig:
    """The robot camera published by the bridge."""

    prim_path: str
    width: int
    height: int
    frame_id: str
    image_topic: str
    camera_info_topic: str
    depth: bool
    depth_topic: str


@dataclass(frozen=True)
class RobotConfig:
    """The articulation whose joints are published and commanded."""

    articulation_prim: str
    joint_states_topic: str
    joint_command_topic: str


@dataclass(frozen=True)
class TfConfig:
    """Optional TF publication of prim poses."""

    enabled: bool
    topic: str
    parent_prim: str
    target_prims: tuple[str, ...]


@dataclass(frozen=True)
class BridgeConfig:
    """Everything the action graph and the app need, validated once."""

    graph_path: str
    physics_dt: float
    rendering_dt: float
    clock_topic: str
    camera: CameraConfig
    robot: RobotConfig
    tf: TfConfig


@dataclass(frozen=True)
class PrimTargets:
    """Value of an OmniGraph ``target`` attribute: USD prim paths."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class NodeSpec:
    """One graph node: its name inside the graph and its OmniGraph type."""

    name: str
    node_type: str


@dataclass(frozen=True)
class Connection:
    """An edge ``src_node.src_attr -> dst_node.dst_attr``."""

    src_node: str
    src_attr: str
    dst_node: str
    dst_attr: str

    @property
    def src(self) -> str:
        """Return the source as ``node.attr``, the form og.Controller.edit expects."""
        return f'{self.src_node}.{self.src_attr}'

    @property
    def dst(self) -> str:
        """Return the destination as ``node.attr``."""
        return f'{self.dst_node}.{self.dst_attr}'


@dataclass(frozen=True)
class AttributeValue:
    """A value set on ``node.attr`` (str, int, float, bool or PrimTargets)."""

    node: str
    attr: str
    value: Any

    @property
    def path(self) -> str:
        """Return the attribute as ``node.attr``."""
        return f'{self.node}.{self.attr}'


@dataclass(frozen=True)
class GraphSpec:
    """One OmniGraph action graph, ready for og.Controller.edit."""

    graph_path: str
    evaluator_name: str
    pipeline_stage: str
    nodes: tuple[NodeSpec, ...]
    connections: tuple[Connection, ...]
    values: tuple[AttributeValue, ...]

    def node(self, name: str) -> NodeSpec:
        """Return the node called ``name``; KeyError when absent."""
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise KeyError(f'graph {self.graph_path} has no node {name!r}')

    def value(self, node: str, attr: str) -> Any:
        """Return the value set on ``node.attr``; KeyError when none is set."""
        for item in self.values:
            if item.node == node and item.attr == attr:
                return item.value
        raise KeyError(f'graph {self.graph_path} sets no value on {node}.{attr}')


# --------------------------------------------------------------------------- config


def _section(data: Mapping, key: str) -> Mapping:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise BridgeConfigError(
            f'config key {key!r}: expected a mapping, found {type(value).__name__}')
    return value


def _str(data: Mapping, key: str, where: str, *, prim: bool = False,
         topic: bool = False) -> str:
    value = data.get(key)
    name = f'{where}.{key}' if where else key
    if not isinstance(value, str) or not value.strip():
        raise BridgeConfigError(f'config key {name!r}: expected a non-empty string, '
                                f'found {value!r}')
    if prim and not value.startswith('/'):
        raise BridgeConfigError(
            f'config key {name!r}: expected an absolute USD prim path, found {value!r}')
    if topic and (' ' in value or value.endswith('/')):
        raise BridgeConfigError(f'config key {name!r}: {value!r} is not a ROS topic name')
    return value


def _bool(data: Mapping, key: str, where: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise BridgeConfigError(
            f"config key '{where}.{key}': expected true or false, found {value!r}")
    return value


def _positive_int(data: Mapping, key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BridgeConfigError(
            f"config key '{where}.{key}': expected a positive integer, found {value!r}")
    return value


def _positive_float(data: Mapping, key: str) -> float:
    value = data.get(key)
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value <= 0.0):
        raise BridgeConfigError(
            f'config key {key!r}: expected a positive number of seconds, found {value!r}')
    return float(value)


def load_config(data: Any) -> BridgeConfig:
    """
    Validate a dict loaded with yaml.safe_load and return a BridgeConfig.

    Raises BridgeConfigError naming the offending key.
    """
    if not isinstance(data, Mapping):
        raise BridgeConfigError(
            f'bridge config: expected a mapping at top level, found {type(data).__name__}')
    camera = _section(data, 'camera')
    robot = _section(data, 'robot')
    tf = _section(data, 'tf')
    targets = tf.get('target_prims')
    if not isinstance(targets, list) or not all(
            isinstance(t, str) and t.startswith('/') for t in targets):
        raise BridgeConfigError(
            "config key 'tf.target_prims': expected a list of absolute USD prim paths, "
            f'found {targets!r}')
    tf_enabled = _bool(tf, 'enabled', 'tf')
    if tf_enabled and not targets:
        raise BridgeConfigError(
            "config key 'tf.target_prims': must name at least one prim when tf.enabled")
    config = BridgeConfig(
        graph_path=_str(data, 'graph_path', '', prim=True),
        physics_dt=_positive_float(data, 'physics_dt'),
        rendering_dt=_positive_float(data, 'rendering_dt'),
        clock_topic=_str(data, 'clock_topic', '', topic=True),
        camera=CameraConfig(
            prim_path=_str(camera, 'prim_path', 'camera', prim=True),
            width=_positive_int(camera, 'width', 'camera'),
            height=_positive_int(camera, 'height', 'camera'),
            frame_id=_str(camera, 'frame_id', 'camera'),
            image_topic=_str(camera, 'image_topic', 'camera', topic=True),
            camera_info_topic=_str(camera, 'camera_info_topic', 'camera', topic=True),
            depth=_bool(camera, 'depth', 'camera'),
            depth_topic=_str(camera, 'depth_topic', 'camera', topic=True),
        ),
        robot=RobotConfig(
            articulation_prim=_str(robot, 'articulation_prim', 'robot', prim=True),
            joint_states_topic=_str(robot, 'joint_states_topic', 'robot', topic=True),
            joint_command_topic=_str(robot, 'joint_command_topic', 'robot', topic=True),
        ),
        tf=TfConfig(
            enabled=tf_enabled,
            topic=_str(tf, 'topic', 'tf', topic=True),
            parent_prim=_str(tf, 'parent_prim', 'tf', prim=True),
            target_prims=tuple(targets),
        ),
    )
    if config.rendering_dt < config.physics_dt:
        raise BridgeConfigError(
            f"config key 'rendering_dt': {config.rendering_dt} s is shorter than "
            f'physics_dt {config.physics_dt} s; a frame cannot be rendered between steps')
    return config


# --------------------------------------------------------------------------- graph


class _Builder:
    """Collects nodes, connections and values; keeps build_graph_spec readable."""

    def __init__(self) -> None:
        self.nodes: list[NodeSpec] = []
        self.connections: list[Connection] = []
        self.values: list[AttributeValue] = []

    def add(self, name: str, node_type: str, **values: Any) -> str:
        self.nodes.append(NodeSpec(name, node_type))
        for attr, value in values.items():
            self.values.append(AttributeValue(name, f'inputs:{attr}', value))
        return name

    def connect(self, src: str, src_attr: str, dst: str, dst_attr: str) -> None:
        self.connections.append(Connection(src, src_attr, dst, dst_attr))


def build_graph_spec(config: BridgeConfig) -> GraphSpec:
    """Turn a validated BridgeConfig into the bridge's one action graph."""
    b = _Builder()
    tick = b.add('OnPhysicsStep', TICK)
    sim_time = b.add('ReadSimulationTime', SIM_TIME)
    # useDomainIDEnvVar (default true) makes the bridge follow ROS_DOMAIN_ID like every
    # other node of the system.
    context = b.add('ROS2Context', ROS2_CONTEXT, useDomainIDEnvVar=True)

    def ros_node(name: str, node_type: str, **values: Any) -> str:
        b.add(name, node_type, **values)
        b.connect(context, 'outputs:context', name, 'inputs:context')
        return name

    # Simulation clock, so that use_sim_time nodes follow the simulator.
    clock = ros_node('PublishClock', PUBLISH_CLOCK, topicName=config.clock_topic)
    b.connect(tick, 'outputs:step', clock, 'inputs:execIn')
    b.connect(sim_time, 'outputs:simulationTime', clock, 'inputs:timeStamp')

    # Camera: one render product at the configured resolution feeds every helper, so
    # image, depth and camera_info describe the same pixels. The helpers only create
    # their publishers once; the render pipeline then publishes every rendered frame.
    camera = config.camera
    render = b.add('CreateRenderProduct', RENDER_PRODUCT,
                   cameraPrim=PrimTargets((camera.prim_path,)),
                   width=camera.width, height=camera.height)
    b.connect(tick, 'outputs:step', render, 'inputs:execIn')
    helpers = [('CameraRgb', CAMERA_HELPER,
                {'type': CAMERA_TYPE_RGB, 'topicName': camera.image_topic}),
               ('CameraInfo', CAMERA_INFO_HELPER, {'topicName': camera.camera_info_topic})]
    if camera.depth:
        helpers.append(('CameraDepth', CAMERA_HELPER,
                        {'type': CAMERA_TYPE_DEPTH, 'topicName': camera.depth_topic}))
    for name, node_type, values in helpers:
        ros_node(name, node_type, frameId=camera.frame_id, **values)
        b.connect(render, 'outputs:execOut', name, 'inputs:execIn')
        b.connect(render, 'outputs:renderProductPath', name, 'inputs:renderProductPath')

    # Joint states out, joint commands in (sensor_msgs/JointState by joint name).
    robot = config.robot
    joints_out = ros_node('PublishJointState', PUBLISH_JOINT_STATE,
                          topicName=robot.joint_states_topic,
                          targetPrim=PrimTargets((robot.articulation_prim,)))
    b.connect(tick, 'outputs:step', joints_out, 'inputs:execIn')
    b.connect(sim_time, 'outputs:simulationTime', joints_out, 'inputs:timeStamp')

    joints_in = ros_node('SubscribeJointState', SUBSCRIBE_JOINT_STATE,
                         topicName=robot.joint_command_topic)
    b.connect(tick, 'outputs:step', joints_in, 'inputs:execIn')
    controller = b.add('ArticulationController', ARTICULATION_CONTROLLER,
                       robotPath=robot.articulation_prim)
    # The controller runs every step so that the last command is held between messages.
    b.connect(tick, 'outputs:step', controller, 'inputs:execIn')
    for attr in ('jointNames', 'positionCommand', 'velocityCommand', 'effortCommand'):
        b.connect(joints_in, f'outputs:{attr}', controller, f'inputs:{attr}')

    if config.tf.enabled:
        tf = ros_node('PublishTransformTree', PUBLISH_TF, topicName=config.tf.topic,
                      parentPrim=PrimTargets((config.tf.parent_prim,)),
                      targetPrims=PrimTargets(config.tf.target_prims))
        b.connect(tick, 'outputs:step', tf, 'inputs:execIn')
        b.connect(sim_time, 'outputs:simulationTime', tf, 'inputs:timeStamp')

    return GraphSpec(graph_path=config.graph_path, evaluator_name='execution',
                     pipeline_stage='on_demand', nodes=tuple(b.nodes),
                     connections=tuple(b.connections), values=tuple(b.values))


def graph_spec_from_dict(data: Any) -> GraphSpec:
    """Validate a config dict (from yaml.safe_load) and build its graph."""
    return build_graph_spec(load_config(data))
