"""The launch file imports and returns a description (when ROS 2 launch is installed)."""
import importlib.util
from pathlib import Path

import pytest

LAUNCH_FILE = Path(__file__).resolve().parent.parent / 'launch' / 'isaac_sim.launch.py'


def _load_launch_module():
    # The package's own launch/ folder is importable as a namespace package 'launch',
    # so probe for a real ROS 2 launch name rather than the module.
    try:
        from launch import LaunchDescription  # noqa: F401
    except ImportError:
        pytest.skip('launch (ROS 2 launch) is not installed')
    spec = importlib.util.spec_from_file_location('isaac_sim_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_launch_description():
    module = _load_launch_module()
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    description = module.generate_launch_description()
    names = [e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    assert names == ['isaac_sim_root', 'usd_path', 'config', 'headless']
    assert any(isinstance(e, OpaqueFunction) for e in description.entities)


def test_environment_points_at_internal_jazzy_libs(tmp_path):
    module = _load_launch_module()
    env = module.isaac_sim_environment(tmp_path, {'LD_LIBRARY_PATH': '/opt/ros/jazzy/lib'})
    internal = str(tmp_path / 'exts' / 'isaacsim.ros2.bridge' / 'jazzy' / 'lib')
    assert env['ROS_DISTRO'] == 'jazzy'
    assert env['RMW_IMPLEMENTATION'] == 'rmw_fastrtps_cpp'
    assert env['LD_LIBRARY_PATH'] == '/opt/ros/jazzy/lib:' + internal
    assert module.isaac_sim_environment(tmp_path, {})['LD_LIBRARY_PATH'] == internal


def test_missing_isaac_sim_fails_with_clear_message(tmp_path):
    module = _load_launch_module()
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument

    context = LaunchContext()
    for name, value in (('isaac_sim_root', str(tmp_path)), ('usd_path', 'robot.usd'),
                        ('config', 'c.yaml'), ('headless', 'true')):
        DeclareLaunchArgument(name, default_value=value).execute(context)
    with pytest.raises(module.IsaacSimNotFoundError, match='python.sh'):
        module._launch_isaac_sim(context)
