"""
Software-in-the-loop with the MuJoCo twin: the twin and the policy node on simulation time.

ros2 launch vision_policy sil_mujoco.launch.py [seed:=0] [model_path:=/path/policy.onnx] \
    [real_time_factor:=1.0] [record_path:=run.mcap] [camera_fovy:=70.0] \
    [depth_camera:=true] [depth_encoding:=32FC1] [wrist_camera:=true]

Topics, end to end (the same names as Isaac Sim's bridge):
  mujoco_twin      -> /clock, /camera/image_raw, /camera/camera_info, /joint_states,
                      /mujoco_twin/task_state; optional depth_camera/{image_raw,camera_info},
                      wrist_camera/{image_raw,camera_info} (for a card naming those cameras)
  policy_inference -> /joint_trajectory_controller/joint_trajectory -> mujoco_twin
real_time_factor <= 0 runs the twin as fast as it can; the policy node follows /clock.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from vision_policy.transport import large_image_transport


def generate_launch_description() -> LaunchDescription:
    """Describe the MuJoCo twin + policy_inference (autostarted), both on use_sim_time."""
    arguments = [
        DeclareLaunchArgument(
            'seed', default_value='0',
            description='seed of the twin target stream (episode k: same target per seed)'),
        DeclareLaunchArgument(
            'model_path',
            default_value=PathJoinSubstitution(
                [FindPackageShare('vision_policy'), 'models', 'reach_policy.onnx']),
            description='ONNX policy (default: the bundled reach policy)'),
        DeclareLaunchArgument(
            'real_time_factor', default_value='1.0',
            description='twin speed: 1.0 real time, <= 0 as fast as possible'),
        DeclareLaunchArgument(
            'record_path', default_value='',
            description='MCAP recording of the policy node (vision_policy_replay); empty = off'),
        DeclareLaunchArgument(
            'camera_fovy', default_value='0.0',
            description="twin scene_camera vertical field of view, degrees; 0 = the model's 55"),
        DeclareLaunchArgument(
            'depth_camera', default_value='false',
            description='twin publishes depth_camera/image_raw + camera_info (z-depth)'),
        DeclareLaunchArgument(
            'depth_encoding', default_value='16UC1',
            description='twin depth image: 16UC1 (millimetres, 0 = no return) or 32FC1 (m, NaN)'),
        DeclareLaunchArgument(
            'wrist_camera', default_value='false',
            description='twin publishes wrist_camera/image_raw + camera_info (RGB, forearm)'),
    ]
    twin = Node(
        package='mujoco_twin', executable='mujoco_twin', name='mujoco_twin', output='screen',
        parameters=[{
            'seed': ParameterValue(LaunchConfiguration('seed'), value_type=int),
            'real_time_factor': ParameterValue(
                LaunchConfiguration('real_time_factor'), value_type=float),
            'camera_fovy': ParameterValue(LaunchConfiguration('camera_fovy'), value_type=float),
            'depth_camera': ParameterValue(LaunchConfiguration('depth_camera'), value_type=bool),
            'depth_encoding': ParameterValue(
                LaunchConfiguration('depth_encoding'), value_type=str),
            'wrist_camera': ParameterValue(LaunchConfiguration('wrist_camera'), value_type=bool),
            'use_sim_time': True,
        }])
    policy = LifecycleNode(
        package='vision_policy', executable='policy_inference', name='policy_inference',
        namespace='', output='screen',
        parameters=[{
            'model_path': LaunchConfiguration('model_path'),
            'autostart': True,
            'use_sim_time': True,
            'image_topic': '/camera/image_raw',
            'joint_states_topic': '/joint_states',
            'trajectory_topic': '/joint_trajectory_controller/joint_trajectory',
            'record_path': ParameterValue(LaunchConfiguration('record_path'), value_type=str),
        }])
    # Camera frames exceed Fast DDS's default shared-memory segment: both use the profile.
    return LaunchDescription([large_image_transport(), *arguments, twin, policy])
