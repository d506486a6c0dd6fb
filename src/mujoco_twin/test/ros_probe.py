"""A real rclpy node that records what the twin publishes and sends it commands."""
import threading
import time

from mujoco_twin.twin_node import MujocoTwin
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory


class Probe(Node):
    """Subscribes to every twin output; publishes commands; calls reset."""

    def __init__(self, context) -> None:
        super().__init__('twin_probe', context=context)
        self.images, self.infos, self.joints, self.clocks, self.tasks = [], [], [], [], []
        self.create_subscription(
            Image, '/camera/image_raw', self.images.append, qos_profile_sensor_data)
        self.create_subscription(
            CameraInfo, '/camera/camera_info', self.infos.append, qos_profile_sensor_data)
        # The optional cameras (topics relative to the twin's namespace, here the root).
        self.depth_images, self.depth_infos, self.wrist_images, self.wrist_infos = [], [], [], []
        for topic, kind, sink in (
                ('/depth_camera/image_raw', Image, self.depth_images),
                ('/depth_camera/camera_info', CameraInfo, self.depth_infos),
                ('/wrist_camera/image_raw', Image, self.wrist_images),
                ('/wrist_camera/camera_info', CameraInfo, self.wrist_infos)):
            self.create_subscription(kind, topic, sink.append, qos_profile_sensor_data)
        self.create_subscription(JointState, '/joint_states', self.joints.append, 10)
        self.create_subscription(Clock, '/clock', self.clocks.append, 10)
        self.create_subscription(
            Float64MultiArray, '/mujoco_twin/task_state', self.tasks.append, 10)
        self.trajectory_pub = self.create_publisher(
            JointTrajectory, '/joint_trajectory_controller/joint_trajectory', 10)
        self.command_pub = self.create_publisher(JointState, '/joint_command', 10)
        self.reset_client = self.create_client(Trigger, '/mujoco_twin/reset')

    def wait_for(self, predicate, timeout: float) -> bool:
        """Poll predicate() until true or timeout (s); return its last value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return bool(predicate())

    def reset(self) -> Trigger.Response:
        """Call ~/reset and wait for the answer."""
        assert self.reset_client.wait_for_service(timeout_sec=5.0)
        future = self.reset_client.call_async(Trigger.Request())
        assert self.wait_for(future.done, 5.0), 'reset service did not answer'
        return future.result()


class TwinUnderTest:
    """The twin and a probe in one process, over real DDS, spun in a background thread."""

    def __init__(self, **parameters) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        overrides = [Parameter(k, value=v) for k, v in parameters.items()]
        self.twin = MujocoTwin(context=self.context, parameter_overrides=overrides)
        self.probe = Probe(self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.twin)
        self.executor.add_node(self.probe)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.twin.start()

    def close(self) -> None:
        """Stop the simulation, the executor and the context."""
        self.twin.stop()
        self.executor.shutdown(timeout_sec=2.0)
        self.twin.destroy_node()
        self.probe.destroy_node()
        rclpy.shutdown(context=self.context)
        self.thread.join(timeout=5.0)
