"""launch/sil_mujoco.launch.py builds its description (when `launch` is installed)."""
import importlib.util
from pathlib import Path

import pytest

LAUNCH_FILE = Path(__file__).resolve().parents[3] / 'launch' / 'sil_mujoco.launch.py'


def test_sil_mujoco_launch_description():
    pytest.importorskip(
        'launch', reason='ROS 2 `launch` is not installed here (no PyPI wheel): '
        'sil_mujoco.launch.py not loaded')
    pytest.importorskip('launch_ros', reason='ROS 2 `launch_ros` is not installed here')
    from launch.actions import DeclareLaunchArgument
    from launch_ros.actions import Node

    if not LAUNCH_FILE.is_file():
        pytest.skip(f'{LAUNCH_FILE} not found (package tested outside its workspace)')
    spec = importlib.util.spec_from_file_location('sil_mujoco_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {a.name for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert names == {'seed', 'model_path', 'real_time_factor', 'record_path', 'camera_fovy',
                     'depth_camera', 'depth_encoding', 'wrist_camera'}
    nodes = [e for e in description.entities if isinstance(e, Node)]
    assert sorted(n.node_package for n in nodes) == ['mujoco_twin', 'vision_policy']
