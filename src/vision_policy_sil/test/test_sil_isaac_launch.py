"""The workspace's launch/sil_isaac.launch.py imports and returns a description."""
import importlib.util
from pathlib import Path

import pytest

LAUNCH_FILE = Path(__file__).resolve().parents[3] / 'launch' / 'sil_isaac.launch.py'


def _load():
    # The package's launch/ folder is importable as a namespace package 'launch',
    # so probe for a real ROS 2 launch name rather than the module.
    try:
        from launch import LaunchDescription  # noqa: F401
        from launch_ros.actions import LifecycleNode  # noqa: F401
    except ImportError:
        pytest.skip('launch (ROS 2 launch) is not installed')
    if not LAUNCH_FILE.is_file():
        pytest.skip(f'{LAUNCH_FILE} is not in this checkout')
    spec = importlib.util.spec_from_file_location('sil_isaac_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_launch_description():
    module = _load()
    from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, \
        OpaqueFunction
    from launch_ros.actions import Node

    description = module.generate_launch_description()
    names = {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    assert {'usd_path', 'isaac_sim_root', 'nitros_resize', 'nitros_convert', 'h264',
            'model_path', 'card_path', 'params_file', 'bridge_config'} <= names
    includes = [e for e in description.entities if isinstance(e, IncludeLaunchDescription)]
    assert len(includes) == 2
    assert any(isinstance(e, Node) for e in description.entities)
    assert any(isinstance(e, OpaqueFunction) for e in description.entities)


@pytest.mark.parametrize('resize, convert', [('false', 'false'), ('true', 'true')])
def test_policy_node_is_a_lifecycle_node(resize, convert):
    module = _load()
    from launch import LaunchContext
    from launch_ros.actions import LifecycleNode

    context = LaunchContext()
    context.launch_configurations.update({
        'nitros_resize': resize, 'nitros_convert': convert, 'params_file': 'p.yaml',
        'model_path': 'm.onnx', 'card_path': 'm.yaml'})
    (node,) = module._policy_node(context)
    assert isinstance(node, LifecycleNode)
