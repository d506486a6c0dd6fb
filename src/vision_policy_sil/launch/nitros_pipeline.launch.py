"""
Isaac ROS NITROS image pipeline for the policy camera, in one component_container_mt.

    camera /camera/image_raw (+ /camera/camera_info), rgb8, camera_width x camera_height
      -> ResizeNode             /camera/resized/image_raw (+ camera_info), output size
      -> ImageFormatConverterNode /camera/policy/image_raw, rgb8       (policy input)
    camera /camera/image_raw
      -> EncoderNode            /camera/image_h264 (sensor_msgs/CompressedImage, H.264)

Plugin, parameter and topic names are those of the Isaac ROS 4.4 sources
(github.com/NVIDIA-ISAAC-ROS, release-4.4):
- isaac_ros_image_pipeline/isaac_ros_image_proc/src/resize_node.cpp: plugin
  nvidia::isaac_ros::image_proc::ResizeNode; subscribes image + camera_info, publishes
  resize/image + resize/camera_info; output_width, output_height, keep_aspect_ratio,
  encoding_desired, input_width, input_height;
- .../src/image_format_converter_node.cpp: plugin
  nvidia::isaac_ros::image_proc::ImageFormatConverterNode; image_raw -> image;
  encoding_desired, image_width, image_height;
- isaac_ros_compression/isaac_ros_h264_encoder/src/encoder_node.cpp: plugin
  nvidia::isaac_ros::h264_encoder::EncoderNode; image_raw -> image_compressed;
  input_width, input_height, qp, hw_preset_type, profile, iframe_interval, config.

Parity: ResizeNode interpolates bilinearly (interp_type "linear" in
config/nitros_resize_node.yaml). Turn it on only when the policy card's interpolation
is linear, or keep it off and let the policy node's CPU path resize as the card says.

Without Isaac ROS installed this launch logs why and starts nothing; the policy node then
subscribes to the camera topic and does the resize on the CPU.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import ComposableNodeContainer
from launch_ros.descriptions import ComposableNode
from vision_policy.transport import large_image_transport
from vision_policy_sil import topics

IMAGE_PROC = 'isaac_ros_image_proc'
H264_ENCODER = 'isaac_ros_h264_encoder'


def missing_packages(names) -> list:
    """Return the ROS packages among ``names`` that are not installed."""
    from ament_index_python.packages import get_package_share_directory, \
        PackageNotFoundError

    missing = []
    for name in names:
        try:
            get_package_share_directory(name)
        except PackageNotFoundError:
            missing.append(name)
    return missing


def _flag(context, name: str) -> bool:
    return LaunchConfiguration(name).perform(context).lower() in ('true', '1', 'yes')


def _int(context, name: str) -> int:
    return int(LaunchConfiguration(name).perform(context))


def _pipeline(context, *args, **kwargs):
    resize, convert, h264 = (_flag(context, n) for n in ('resize', 'convert', 'h264'))
    needed = ([IMAGE_PROC] if resize or convert else []) + ([H264_ENCODER] if h264 else [])
    if not needed:
        return [LogInfo(msg='nitros_pipeline: every stage is off, nothing to start')]
    missing = missing_packages(needed)
    if missing:
        return [LogInfo(msg=(
            f'nitros_pipeline: Isaac ROS package(s) {", ".join(missing)} not installed; '
            'starting no NITROS node. The policy node subscribes to '
            f'{topics.CAMERA_IMAGE} and resizes on the CPU as its policy card says. '
            'Use docker/Dockerfile.isaac_ros for the GPU pipeline.'))]

    camera_w, camera_h = _int(context, 'camera_width'), _int(context, 'camera_height')
    out_w, out_h = _int(context, 'output_width'), _int(context, 'output_height')
    plan = topics.image_plan(resize, convert)
    nodes = []
    if resize:
        nodes.append(ComposableNode(
            package=IMAGE_PROC, plugin='nvidia::isaac_ros::image_proc::ResizeNode',
            name='policy_resize',
            parameters=[{'output_width': out_w, 'output_height': out_h,
                         'input_width': camera_w, 'input_height': camera_h,
                         # Training squashes the full frame to the network size.
                         'keep_aspect_ratio': False}],
            remappings=[('image', plan.resize_input),
                        ('camera_info', topics.CAMERA_INFO),
                        ('resize/image', plan.resize_output),
                        ('resize/camera_info', topics.RESIZED_INFO)]))
    if convert:
        width, height = (out_w, out_h) if resize else (camera_w, camera_h)
        nodes.append(ComposableNode(
            package=IMAGE_PROC,
            plugin='nvidia::isaac_ros::image_proc::ImageFormatConverterNode',
            name='policy_format',
            parameters=[{'encoding_desired': 'rgb8',
                         'image_width': width, 'image_height': height}],
            remappings=[('image_raw', plan.convert_input),
                        ('image', plan.convert_output)]))
    if h264:
        nodes.append(ComposableNode(
            package=H264_ENCODER, plugin='nvidia::isaac_ros::h264_encoder::EncoderNode',
            name='monitor_h264',
            parameters=[{'input_width': camera_w, 'input_height': camera_h}],
            remappings=[('image_raw', plan.encoder_input),
                        ('image_compressed', topics.H264_IMAGE)]))
    container = ComposableNodeContainer(
        name='nitros_container', namespace='', package='rclcpp_components',
        executable='component_container_mt', composable_node_descriptions=nodes,
        output='screen')
    return [LogInfo(msg=f'nitros_pipeline: policy image on {plan.policy_image}'), container]


def generate_launch_description() -> LaunchDescription:
    """Declare the stage switches and sizes; build the container once they resolve."""
    return LaunchDescription([
        # Camera frames exceed Fast DDS's default shared-memory segment.
        large_image_transport(),
        # Off by default: the GPU resize is bilinear, and the policy node's CPU path
        # resizes exactly as the card says (area for the bundled policy).
        DeclareLaunchArgument('resize', default_value='false',
                              description='GPU resize (bilinear) to output_width x '
                                          'output_height'),
        DeclareLaunchArgument('convert', default_value='false',
                              description='GPU conversion of the policy image to rgb8'),
        DeclareLaunchArgument('h264', default_value='true',
                              description=f'H.264 monitoring stream on {topics.H264_IMAGE}'),
        DeclareLaunchArgument('camera_width', default_value='640',
                              description='camera image width (isaac_sim_bridge config)'),
        DeclareLaunchArgument('camera_height', default_value='480',
                              description='camera image height (isaac_sim_bridge config)'),
        DeclareLaunchArgument('output_width', default_value='64',
                              description='policy input width (policy card image.resize)'),
        DeclareLaunchArgument('output_height', default_value='64',
                              description='policy input height (policy card image.resize)'),
        OpaqueFunction(function=_pipeline),
    ])
