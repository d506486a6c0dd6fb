"""
Software-in-the-loop with Isaac Sim: simulator, NITROS image pipeline, adapter, policy.

ros2 launch vision_policy sil_isaac.launch.py usd_path:=/path/robot.usd \
    [isaac_sim_root:=~/isaacsim] [nitros_resize:=false] [h264:=true]

Topics, end to end:
  Isaac Sim  -> /clock, /camera/image_raw, /camera/camera_info, /joint_states
  NITROS     -> /camera/resized/image_raw (resize), /camera/policy/image_raw (rgb8),
                /camera/image_h264 (monitoring)
  policy     -> /joint_trajectory_controller/joint_trajectory
  adapter    -> /joint_command -> Isaac Sim's articulation controller
The policy node's image_topic is the last NITROS stage that is on, else the camera.
NITROS resize is off by default: it interpolates bilinearly, while the example policy
card asks for area interpolation; the policy node's CPU path then resizes as trained.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, \
    PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare
from vision_policy.transport import large_image_transport


def _topics():
    # Imported when the launch runs, not when vision_policy is installed: the SIL
    # packages depend on vision_policy, never the other way round.
    try:
        from vision_policy_sil import topics
    except ImportError as exc:
        raise RuntimeError('sil_isaac.launch.py needs the vision_policy_sil and '
                           'isaac_sim_bridge packages: build the whole workspace') from exc
    return topics


def _policy_node(context, *args, **kwargs):
    topics = _topics()

    def on(name: str) -> bool:
        return LaunchConfiguration(name).perform(context).lower() in ('true', '1', 'yes')

    plan = topics.image_plan(on('nitros_resize'), on('nitros_convert'))
    return [LifecycleNode(
        package='vision_policy', executable='policy_inference', name='policy_inference',
        namespace='', output='screen',
        parameters=[LaunchConfiguration('params_file'), {
            'model_path': LaunchConfiguration('model_path'),
            'card_path': LaunchConfiguration('card_path'),
            'image_topic': plan.policy_image,
            'joint_states_topic': topics.JOINT_STATES,
            'trajectory_topic': topics.TRAJECTORY,
            'autostart': True,
            'use_sim_time': True,
        }])]


def generate_launch_description() -> LaunchDescription:
    """Isaac Sim bridge + NITROS pipeline + trajectory adapter + policy node."""
    topics = _topics()
    vision_policy = FindPackageShare('vision_policy')
    arguments = [
        DeclareLaunchArgument('usd_path', description='USD stage with robot and camera'),
        DeclareLaunchArgument('isaac_sim_root', default_value=EnvironmentVariable(
                                  'ISAAC_SIM_ROOT', default_value='~/isaacsim'),
                              description='Isaac Sim install folder (holds python.sh)'),
        DeclareLaunchArgument('headless', default_value='true',
                              description='run Isaac Sim without its GUI'),
        DeclareLaunchArgument(
            'bridge_config',
            default_value=PathJoinSubstitution(
                [FindPackageShare('isaac_sim_bridge'), 'config', 'isaac_sim_bridge.yaml']),
            description='isaac_sim_bridge config (camera, joints, topics, physics_dt)'),
        DeclareLaunchArgument(
            'model_path',
            default_value=PathJoinSubstitution([vision_policy, 'models', 'reach_policy.onnx']),
            description='ONNX policy'),
        DeclareLaunchArgument(
            'card_path',
            default_value=PathJoinSubstitution([vision_policy, 'models', 'reach_policy.yaml']),
            description='policy card of the ONNX policy'),
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution(
                [FindPackageShare('vision_policy_sil'), 'config', 'sil_isaac.yaml']),
            description='parameters of policy_inference and trajectory_to_joint_command'),
        # Off by default: the GPU resize is bilinear; the policy node's CPU path resizes
        # exactly as the card says.
        DeclareLaunchArgument('nitros_resize', default_value='false',
                              description='GPU resize (bilinear) for the policy image'),
        DeclareLaunchArgument('nitros_convert', default_value='false',
                              description='GPU conversion of the policy image to rgb8'),
        DeclareLaunchArgument('h264', default_value='true',
                              description='H.264 monitoring stream of the camera'),
        DeclareLaunchArgument('camera_width', default_value='640',
                              description='must match bridge_config camera.width'),
        DeclareLaunchArgument('camera_height', default_value='480',
                              description='must match bridge_config camera.height'),
        DeclareLaunchArgument('output_width', default_value='64',
                              description='policy card image.resize width'),
        DeclareLaunchArgument('output_height', default_value='64',
                              description='policy card image.resize height'),
    ]
    isaac_sim = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare('isaac_sim_bridge'), 'launch', 'isaac_sim.launch.py'])),
        launch_arguments={
            'isaac_sim_root': LaunchConfiguration('isaac_sim_root'),
            'usd_path': LaunchConfiguration('usd_path'),
            'config': LaunchConfiguration('bridge_config'),
            'headless': LaunchConfiguration('headless'),
        }.items())
    nitros = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution(
            [FindPackageShare('vision_policy_sil'), 'launch', 'nitros_pipeline.launch.py'])),
        launch_arguments={
            'resize': LaunchConfiguration('nitros_resize'),
            'convert': LaunchConfiguration('nitros_convert'),
            'h264': LaunchConfiguration('h264'),
            'camera_width': LaunchConfiguration('camera_width'),
            'camera_height': LaunchConfiguration('camera_height'),
            'output_width': LaunchConfiguration('output_width'),
            'output_height': LaunchConfiguration('output_height'),
        }.items())
    adapter = Node(
        package='vision_policy_sil', executable='trajectory_to_joint_command',
        name='trajectory_to_joint_command', output='screen',
        parameters=[LaunchConfiguration('params_file'), {
            'input_topic': topics.TRAJECTORY,
            'output_topic': topics.JOINT_COMMAND,
            'use_sim_time': True,
        }])
    # Camera frames exceed Fast DDS's default shared-memory segment: Isaac Sim's bridge, the
    # pipeline and the policy node all use the shipped profile.
    return LaunchDescription(
        [large_image_transport()] + arguments +
        [isaac_sim, nitros, adapter, OpaqueFunction(function=_policy_node)])
