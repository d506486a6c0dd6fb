"""
Two cameras in SIL: the twin's RGB scene camera and its depth camera feed one policy.

    mujoco_twin (subprocess: real MuJoCo physics and rendering, real time, 10 Hz cameras)
        /camera/image_raw (64x48 rgb8), depth_camera/image_raw (80x60 16UC1 z-depth) and
        depth_camera/camera_info, /joint_states, /clock
        ->  policy_inference (in-process; a card with images: scene (rgb) and depth_camera
            (depth, trained on distance_to_camera, so the node converts the z-depth with the
            camera_info), max_camera_skew 20 ms; a linear ONNX policy written here)
        ->  /joint_trajectory_controller/joint_trajectory  ->  mujoco_twin (closed loop)

The node must command from both cameras, with the depth camera's slice of the observation
equal to the range along each ray computed by hand from the table plane; then hold with
reason camera skew while the twin stamps its depth frames 50 ms late (its
depth_stamp_delay, set at run time), and command again once the delay is back to 0.
"""
from __future__ import annotations

import os
import sys
import threading

import mujoco
from mujoco_twin.sim import DEPTH_CAMERA_NAME, ReachArmSim, SimConfig
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from trajectory_msgs.msg import JointTrajectory
from conftest import wait_for  # noqa: I100 (test helper)
from vision_policy.monitor import HoldReason
from vision_policy.node import PolicyInferenceNode
from vision_policy_sil.mujoco_demo import DemoError, ManagedProcess
import yaml

JOINTS = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint']
HOME = [0.0, 0.3, -0.6]
SCENE_SIZE, DEPTH_SIZE = (64, 48), (80, 60)        # what the twin renders (width, height)
SCENE_RESIZE, DEPTH_RESIZE = (16, 12), (8, 6)      # what the card feeds the policy
SCENE_VALUES = 3 * SCENE_RESIZE[0] * SCENE_RESIZE[1]
DEPTH_VALUES = DEPTH_RESIZE[0] * DEPTH_RESIZE[1]
WIDTH = SCENE_VALUES + DEPTH_VALUES + len(JOINTS)
MAX_CAMERA_SKEW = 0.02
DEPTH_DELAY = 0.05      # > MAX_CAMERA_SKEW, and not a multiple of the 0.1 s camera period
TRAJECTORY_TOPIC = '/joint_trajectory_controller/joint_trajectory'
# The caller's ROS_DOMAIN_ID when set, else one of its own (60..89), as the SIL demo does.
DOMAIN_ID = os.environ.get('ROS_DOMAIN_ID', '').strip() or str(60 + (os.getpid() + 15) % 30)


def two_camera_policy(tmp_path, weights: np.ndarray) -> str:
    """Write actions = obs @ weights as ONNX with a card of the twin's two cameras."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    graph = helper.make_graph(
        [helper.make_node('MatMul', ['obs', 'W'], ['actions'])], 'twin_cameras',
        [helper.make_tensor_value_info('obs', TensorProto.FLOAT, [1, WIDTH])],
        [helper.make_tensor_value_info('actions', TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(weights, 'W')])
    path = tmp_path / 'twin_cameras.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), path)
    card = {'name': 'twin_cameras', 'control_dt': 0.05, 'joint_names': JOINTS,
            'default_joint_pos': HOME,
            'inputs': [{'name': 'obs', 'shape': [1, WIDTH], 'group': 'policy'}],
            'images': {
                'scene': {'resize': list(SCENE_RESIZE)},
                DEPTH_CAMERA_NAME: {'resize': list(DEPTH_RESIZE), 'data_type': 'depth',
                                    'depth_type': 'distance_to_camera', 'max_depth': 4.0}},
            'max_camera_skew': MAX_CAMERA_SKEW,
            'observations': {'policy': {'terms': [
                {'name': 'image', 'params': {'camera': 'scene'}},
                {'name': 'image', 'params': {'camera': DEPTH_CAMERA_NAME}},
                {'name': 'joint_pos_rel'}]}},
            'action': {'scale': 0.5, 'clip': [[-2, 2], [-1.5, 1.5], [-2.5, 2.5]]}}
    path.with_suffix('.yaml').write_text(yaml.safe_dump(card, sort_keys=False))
    return str(path)


def bottom_row_by_hand() -> tuple:
    """
    Return the depth slice's bottom row by hand: (range along the rays, z-depth), (8,) m each.

    The twin's 60 rows go to 6 by 10x10 area means; the bottom 10 rows see the table near
    the camera (never the arm). Per twin pixel (u, v), ROS convention (pixel centres at
    integer coordinates, as the twin's camera_info), the ray r = ((u - cx) / fx,
    (v - cy) / fy, 1) in the optical frame meets the table z = 0 at z-depth
    t = -p_z / (R r)_z; the twin sends round(1000 t) mm; the range is t |r|. The z-depth
    is what a node that forgot the conversion would feed.
    """
    sim = ReachArmSim(SimConfig(depth_width=DEPTH_SIZE[0], depth_height=DEPTH_SIZE[1]))
    position, quat = sim.camera_pose(DEPTH_CAMERA_NAME)
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, quat)
    fx, fy, cx, cy = sim.camera_intrinsics(DEPTH_CAMERA_NAME)
    v, u = np.mgrid[DEPTH_SIZE[1] - 10:DEPTH_SIZE[1], 0:DEPTH_SIZE[0]]
    rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones(u.shape)], axis=-1)
    z = -position[2] / (rays @ rotation.reshape(3, 3).T)[..., 2]
    z = np.rint(z * 1000.0) / 1000.0
    ranges = z * np.linalg.norm(rays, axis=-1)
    return tuple(a.reshape(10, DEPTH_RESIZE[0], 10).mean(axis=(0, 2)) for a in (ranges, z))


def start_twin(log_dir) -> ManagedProcess:
    """Start the twin with its depth camera, 16UC1, on simulation time."""
    argv = [sys.executable, '-m', 'mujoco_twin.twin_node', '--ros-args',
            '-p', 'use_sim_time:=true', '-p', 'seed:=3', '-p', 'camera_rate:=10.0',
            '-p', f'image_width:={SCENE_SIZE[0]}', '-p', f'image_height:={SCENE_SIZE[1]}',
            '-p', 'depth_camera:=true', '-p', 'depth_encoding:=16UC1',
            '-p', f'depth_width:={DEPTH_SIZE[0]}', '-p', f'depth_height:={DEPTH_SIZE[1]}']
    return ManagedProcess('mujoco_twin', argv, log_dir / 'mujoco_twin.log',
                          dict(os.environ, PYTHONUNBUFFERED='1'))


def test_node_commands_from_the_twins_two_cameras_and_holds_on_skew(tmp_path, monkeypatch):
    monkeypatch.setenv('ROS_DOMAIN_ID', DOMAIN_ID)
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    monkeypatch.setenv('MUJOCO_GL', os.environ.get('MUJOCO_GL', 'egl'))
    weights = np.random.default_rng(11).standard_normal((WIDTH, 3)).astype(np.float32) * 0.01
    model = two_camera_policy(tmp_path, weights)
    twin = start_twin(tmp_path)
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    executor = SingleThreadedExecutor(context=context)
    stop = threading.Event()
    node = peer = None

    def spin():
        while not stop.is_set() and context.ok():
            executor.spin_once(timeout_sec=0.02)
    thread = threading.Thread(target=spin, daemon=True)

    def check():
        try:
            twin.check()
        except DemoError as err:
            if 'RenderError' in str(err) or 'rendering' in twin.tail(40).lower():
                pytest.skip(f'no offscreen rendering for the twin: {err}')
            raise
    try:
        params = {'model_path': model, 'autostart': True, 'use_sim_time': True,
                  'scene_image_topic': '/camera/image_raw',
                  'joint_states_topic': '/joint_states', 'trajectory_topic': TRAJECTORY_TOPIC,
                  'providers': ['CPUExecutionProvider'],
                  # A shared 2-core machine: ages are not under test, skew is.
                  'max_image_age': 5.0, 'max_joint_state_age': 5.0}
        node = PolicyInferenceNode(context=context, parameter_overrides=[
            Parameter(k, value=v) for k, v in params.items()])
        assert node._state_machine.current_state[1] == 'active', node.error
        assert node.monitor.inputs == ('joint_states', 'image/scene', 'image/depth_camera')
        peer = rclpy.create_node('twin_cameras_peer', context=context)
        commands = []
        peer.create_subscription(JointTrajectory, TRAJECTORY_TOPIC, commands.append, 100)
        twin_parameters = AsyncParameterClient(peer, 'mujoco_twin')
        executor.add_node(node)
        executor.add_node(peer)
        thread.start()
        counters = node.stats.counters

        def commanding(after: int):
            return len(commands) > after + 5 and node.hold is None

        wait_for(lambda: commanding(0), 90.0,
                 f'commands from both cameras (node: {node.diagnostics().message})', check)
        obs = np.array(node.core.tick.inputs['obs'][0])
        scene = obs[:SCENE_VALUES]
        depth = obs[SCENE_VALUES:SCENE_VALUES + DEPTH_VALUES].reshape(DEPTH_RESIZE[::-1])
        assert 0.0 <= scene.min() and scene.max() <= 1.0 and np.ptp(scene) > 0.1
        want, z = bottom_row_by_hand()
        np.testing.assert_allclose(depth[-1], want, atol=0.01)
        assert np.min(np.abs(z - want)) > 0.1  # without the conversion it would fail
        assert (depth[0] == 0.0).any()  # the top corners look past the table: no return
        print(f'depth slice bottom row: node {np.round(depth[-1], 4).tolist()}, by hand '
              f'{np.round(want, 4).tolist()}, worst |diff| '
              f'{np.max(np.abs(depth[-1] - want)) * 1000:.2f} mm')

        def set_delay(value: float) -> None:
            assert twin_parameters.wait_for_services(timeout_sec=10.0)
            future = twin_parameters.set_parameters(
                [Parameter('depth_stamp_delay', value=value)])
            wait_for(future.done, 10.0, 'the twin setting depth_stamp_delay', check)
            assert future.result().results[0].successful, future.result().results[0].reason

        set_delay(DEPTH_DELAY)
        hold = wait_for(lambda: node.hold is not None and
                        node.hold.reason is HoldReason.CAMERA_SKEW and node.hold, 30.0,
                        f'a camera skew hold (node: {node.diagnostics().message})', check)
        assert 'image/scene' in hold.detail and 'image/depth_camera' in hold.detail, hold
        # The delay, or the delay plus one camera period for a tick between the two frames
        # of a step.
        spread = float(hold.detail.split(' stamped ')[1].split(' ms apart')[0])
        assert spread >= DEPTH_DELAY * 1000 - 0.1, hold
        assert counters.camera_skew_holds >= 1
        held_at = len(commands)
        set_delay(0.0)
        wait_for(lambda: commanding(held_at), 30.0,
                 f'commands again after the skew (node: {node.diagnostics().message})', check)
        print(f'hold: {hold}; {counters.camera_skew_holds} skew holds, '
              f'{counters.commands} commands')
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=5.0)
        for n in (node, peer):
            if n is not None:
                executor.remove_node(n)
                n.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown(context=context)
        twin.stop()
