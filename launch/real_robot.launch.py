"""
Run the policy on a real robot: the policy_inference lifecycle node, optionally an H.264 stream.

ros2 launch vision_policy real_robot.launch.py model_path:=/path/policy.onnx \
    [card_path:=/path/policy.yaml] [params_file:=/path/params.yaml] [namespace:=arm] \
    [use_sim_time:=false] [image_topic:=camera/image_raw] [joint_states_topic:=joint_states] \
    [trajectory_topic:=joint_trajectory_controller/joint_trajectory] \
    [estop_topic:=emergency_stop] [autostart:=true] [h264:=false] [record_path:=run.mcap]

model_path has no default: a real robot is never commanded by a policy nobody chose.
The node is a managed node: with autostart:=true (default) it configures and activates
itself; with autostart:=false a lifecycle manager drives it. Topic names are relative, so
namespace:=arm moves them all; the topic arguments remap them. Needs only vision_policy
(h264:=true also needs vision_policy_sil and Isaac ROS).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.substitutions import FindPackageShare
from vision_policy.transport import large_image_transport

ARGUMENTS = [
    ('model_path', '', 'ONNX policy (required)'),
    ('card_path', '', 'policy card YAML; empty = beside the model or embedded in it'),
    ('params_file', PathJoinSubstitution([FindPackageShare('vision_policy'), 'config',
                                          'real_robot.yaml']), 'node parameter file'),
    ('namespace', '', 'namespace of the node and of its (relative) topics'),
    ('use_sim_time', 'false', 'use /clock'),
    ('autostart', 'true', 'configure and activate without a lifecycle manager'),
    ('image_topic', 'camera/image_raw', 'camera topic (sensor_msgs/Image)'),
    ('joint_states_topic', 'joint_states', 'joint states topic'),
    ('trajectory_topic', 'joint_trajectory_controller/joint_trajectory',
     'JointTrajectory command topic'),
    ('estop_topic', 'emergency_stop', 'std_msgs/Bool emergency stop'),
    ('log_level', 'info', 'ROS log level of the node'),
    ('record_path', '', 'MCAP recording of the inputs used and of every tick (replay it with '
     'vision_policy_replay); empty = no recording'),
    ('h264', 'false', 'also start the Isaac ROS H.264 stream of the camera (needs '
     'vision_policy_sil and Isaac ROS)'),
]


def _actions(context):
    cfg = {name: LaunchConfiguration(name) for name, _, _ in ARGUMENTS}
    if not cfg['model_path'].perform(context):
        raise RuntimeError('real_robot.launch.py: model_path:=/path/policy.onnx is required '
                           '(there is no default policy for a real robot)')
    node = LifecycleNode(
        package='vision_policy', executable='policy_inference', name='policy_inference',
        namespace=cfg['namespace'], output='screen',
        parameters=[cfg['params_file'], {
            'model_path': cfg['model_path'],
            'card_path': cfg['card_path'],
            'use_sim_time': cfg['use_sim_time'],
            'autostart': cfg['autostart'],
            'record_path': cfg['record_path'],
        }],
        remappings=[
            ('camera/image_raw', cfg['image_topic']),
            ('joint_states', cfg['joint_states_topic']),
            ('joint_trajectory_controller/joint_trajectory', cfg['trajectory_topic']),
            ('emergency_stop', cfg['estop_topic']),
        ],
        arguments=['--ros-args', '--log-level', cfg['log_level']],
    )
    actions = [node]
    if cfg['h264'].perform(context).lower() == 'true':
        # Only here is the SIL package needed: the deploy path does not depend on it.
        actions.append(IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution(
                [FindPackageShare('vision_policy_sil'), 'launch',
                 'nitros_pipeline.launch.py'])),
            # Encoder only: the policy node resizes on the CPU exactly as its card says.
            launch_arguments={'resize': 'false', 'convert': 'false', 'h264': 'true'}.items()))
    return actions


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments; the node starts only with an explicit model_path."""
    # Camera frames exceed Fast DDS's default shared-memory segment: the processes started
    # here use the shipped profile (give the camera driver's process the same; README).
    return LaunchDescription(
        [large_image_transport()] +
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_actions)])
