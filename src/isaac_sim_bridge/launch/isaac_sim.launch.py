"""
Start the Isaac Sim bridge app through Isaac Sim's own python.sh.

ros2 launch isaac_sim_bridge isaac_sim.launch.py usd_path:=/path/robot.usd \
    [isaac_sim_root:=~/isaacsim] [config:=...] [headless:=true]

Isaac Sim runs its own Python 3.11 and ships the ROS 2 Jazzy libraries its bridge needs
in <isaac_sim_root>/exts/isaacsim.ros2.bridge/jazzy/lib. The environment set here
(ROS_DISTRO, RMW_IMPLEMENTATION, LD_LIBRARY_PATH appended with that folder) is the one
Isaac Sim's App Selector sets for "use internal Jazzy libraries"
(isaac-sim/IsaacSim v5.1.0, source/extensions/isaacsim.app.selector/isaacsim/app/
selector/selector_window.py) and the docs' "ROS 2 Installation" page describes.
"""
import importlib.util
import os
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration

PACKAGE = 'isaac_sim_bridge'
ROS_DISTRO = 'jazzy'
INTERNAL_ROS_LIBS = Path('exts') / 'isaacsim.ros2.bridge' / ROS_DISTRO / 'lib'


class IsaacSimNotFoundError(RuntimeError):
    """python.sh is not where isaac_sim_root says Isaac Sim is installed."""


def _default_config() -> str:
    try:
        from ament_index_python.packages import get_package_share_directory
        share = Path(get_package_share_directory(PACKAGE))
    except Exception:  # not installed (e.g. read from the source tree)
        share = Path(__file__).resolve().parent.parent
    return str(share / 'config' / 'isaac_sim_bridge.yaml')


def _app_script() -> str:
    spec = importlib.util.find_spec(f'{PACKAGE}.app')
    if spec is None or spec.origin is None:
        raise IsaacSimNotFoundError(
            f'cannot locate {PACKAGE}/app.py: is the workspace built and sourced?')
    return spec.origin


def isaac_sim_environment(root: Path, base_env: dict) -> dict:
    """Return the variables to set for Isaac Sim's internal ROS 2 Jazzy libraries."""
    internal = str(root / INTERNAL_ROS_LIBS)
    existing = base_env.get('LD_LIBRARY_PATH', '')
    return {
        'ROS_DISTRO': ROS_DISTRO,
        # Isaac Sim's default middleware; both sides of DDS must agree on it.
        'RMW_IMPLEMENTATION': base_env.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp'),
        # Appended, as the App Selector does: a sourced system Jazzy keeps precedence.
        'LD_LIBRARY_PATH': f'{existing}:{internal}' if existing else internal,
        # A sourced ROS puts Python 3.12 site-packages here; Isaac Sim's 3.11 must not
        # import them (its bridge brings its own rclpy).
        'PYTHONPATH': '',
    }


def _launch_isaac_sim(context, *args, **kwargs):
    root = Path(LaunchConfiguration('isaac_sim_root').perform(context)).expanduser()
    python_sh = root / 'python.sh'
    if not python_sh.is_file():
        raise IsaacSimNotFoundError(
            f'Isaac Sim not found: {python_sh} does not exist. Install Isaac Sim 4.5 or 5.x '
            'and pass isaac_sim_root:=<folder with python.sh> or set ISAAC_SIM_ROOT.')
    cmd = [str(python_sh), _app_script(),
           '--usd', LaunchConfiguration('usd_path').perform(context),
           '--config', LaunchConfiguration('config').perform(context)]
    if LaunchConfiguration('headless').perform(context).lower() in ('true', '1', 'yes'):
        cmd.append('--headless')
    return [ExecuteProcess(
        cmd=cmd, name='isaac_sim', output='screen',
        additional_env=isaac_sim_environment(root, dict(os.environ)),
        # Ctrl-C reaches the app, which stops the simulation and closes Isaac Sim.
        sigterm_timeout='30', sigkill_timeout='30')]


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and start Isaac Sim once they are resolved."""
    return LaunchDescription([
        DeclareLaunchArgument(
            'isaac_sim_root',
            default_value=os.environ.get('ISAAC_SIM_ROOT', str(Path('~/isaacsim'))),
            description='Isaac Sim install folder (the one holding python.sh)'),
        DeclareLaunchArgument(
            'usd_path', description='USD stage with the robot, its camera and physics'),
        DeclareLaunchArgument(
            'config', default_value=_default_config(),
            description='bridge config YAML (camera, joints, topics, physics_dt)'),
        DeclareLaunchArgument(
            'headless', default_value='true',
            description='true: no GUI (the camera is still rendered)'),
        OpaqueFunction(function=_launch_isaac_sim),
    ])
