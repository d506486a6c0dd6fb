"""nitros_pipeline.launch.py imports and returns a description (when launch is installed)."""
import importlib.util
from pathlib import Path

import pytest

LAUNCH_FILE = Path(__file__).resolve().parent.parent / 'launch' / 'nitros_pipeline.launch.py'


def _load():
    # The package's launch/ folder is importable as a namespace package 'launch',
    # so probe for a real ROS 2 launch name rather than the module.
    try:
        from launch import LaunchDescription  # noqa: F401
        from launch_ros.actions import ComposableNodeContainer  # noqa: F401
    except ImportError:
        pytest.skip('launch (ROS 2 launch) is not installed')
    spec = importlib.util.spec_from_file_location('nitros_pipeline_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_launch_description():
    module = _load()
    from launch.actions import DeclareLaunchArgument

    description = module.generate_launch_description()
    args = {e.name: e.default_value for e in description.entities
            if isinstance(e, DeclareLaunchArgument)}
    assert set(args) == {'resize', 'convert', 'h264', 'camera_width', 'camera_height',
                         'output_width', 'output_height'}


def _resolve(module, **overrides):
    from launch import LaunchContext

    context = LaunchContext()
    values = {'resize': 'true', 'convert': 'true', 'h264': 'true', 'camera_width': '640',
              'camera_height': '480', 'output_width': '64', 'output_height': '64'}
    values.update(overrides)
    context.launch_configurations.update(values)
    return module._pipeline(context)


def test_without_isaac_ros_starts_nothing(monkeypatch):
    module = _load()
    from launch.actions import LogInfo

    monkeypatch.setattr(module, 'missing_packages', lambda names: list(names))
    actions = _resolve(module)
    assert len(actions) == 1 and isinstance(actions[0], LogInfo)


def test_container_holds_enabled_stages(monkeypatch):
    module = _load()
    from launch_ros.actions import ComposableNodeContainer

    monkeypatch.setattr(module, 'missing_packages', lambda names: [])
    containers = [a for a in _resolve(module, h264='false')
                  if isinstance(a, ComposableNodeContainer)]
    assert len(containers) == 1
