"""Launch files and parameter files: every key is a real parameter with the right type."""

import importlib.util

from conftest import workspace_root
import pytest
from vision_policy.params import SPECS
from vision_policy.sources import BUILTIN_SOURCES
import yaml

LAUNCH_FILES = sorted((workspace_root() / 'launch').glob('*.launch.py'))


def test_real_robot_params_are_known_and_typed():
    data = yaml.safe_load((workspace_root() / 'config' / 'real_robot.yaml').read_text())
    params = data['/**/policy_inference']['ros__parameters']
    source_topics = {s.topic_parameter for s in BUILTIN_SOURCES.values()}
    assert set(params) == set(SPECS) | source_topics, set(params) ^ set(SPECS)
    for name, value in params.items():
        default = SPECS[name].default if name in SPECS else ''
        if isinstance(default, list):
            assert isinstance(value, list) and all(
                isinstance(v, type(default[0])) for v in value), name
        else:
            assert type(value) is type(default), (name, value)


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=[p.name for p in LAUNCH_FILES])
def test_launch_file_describes_itself(path):
    pytest.importorskip('launch', reason='ROS 2 launch is not installed (no ros2 launch here)')
    pytest.importorskip('launch_ros', reason='ROS 2 launch_ros is not installed')
    spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert description.entities


def test_launch_files_present():
    names = {p.name for p in LAUNCH_FILES}
    assert {'real_robot.launch.py', 'sil_isaac.launch.py', 'sil_mujoco.launch.py'} <= names


def test_params_file_loads_into_the_node(model_path):
    import rclpy
    from vision_policy.node import PolicyInferenceNode
    context = rclpy.Context()
    params = workspace_root() / 'config' / 'real_robot.yaml'
    rclpy.init(context=context, args=['--ros-args', '--params-file', str(params), '-p',
                                      f'model_path:={model_path}'])
    try:
        node = PolicyInferenceNode(context=context)
        assert node.get_parameter('position_upper_limits').value == [2.0, 1.5, 2.5]
        assert node.get_parameter('max_joint_step').value == [0.1]
        # autostart: true in the file: configured and active with the bundled model.
        assert node._state_machine.current_state[1] == 'active'
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def workspace_graph() -> dict:
    """Workspace package -> the workspace packages its package.xml depends on."""
    import xml.etree.ElementTree as ET
    manifests = {ET.parse(p).find('name').text: ET.parse(p)
                 for p in (workspace_root() / 'src').glob('*/package.xml')}
    tags = ('depend', 'exec_depend', 'build_depend', 'build_export_depend', 'test_depend')
    return {name: {d.text for tag in tags for d in tree.iter(tag) if d.text in manifests}
            for name, tree in manifests.items()}


def test_package_dependencies_are_acyclic():
    graph = workspace_graph()
    assert 'vision_policy' in graph and not graph['vision_policy'], graph['vision_policy']
    done, visiting = set(), []

    def visit(name):
        assert name not in visiting, f'dependency cycle: {visiting + [name]}'
        if name in done:
            return
        visiting.append(name)
        for dep in graph[name]:
            visit(dep)
        visiting.pop()
        done.add(name)
    for name in graph:
        visit(name)


def test_deploy_path_needs_only_vision_policy():
    import ast
    launch = workspace_root() / 'launch' / 'real_robot.launch.py'
    imported = {alias.name.split('.')[0] for node in ast.walk(ast.parse(launch.read_text()))
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split('.')[0] for node in ast.walk(ast.parse(launch.read_text()))
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {'launch', 'launch_ros', 'vision_policy'}, imported
    dockerfile = (workspace_root() / 'docker' / 'Dockerfile.deploy').read_text()
    copied = [line.split()[1] for line in dockerfile.splitlines() if line.startswith('COPY')]
    assert [c for c in copied if c.startswith('src/')] == ['src/vision_policy/'], copied
    # docker stop signals ros2 launch (PID 1); SIGINT is what it forwards to the node.
    assert 'STOPSIGNAL SIGINT' in dockerfile.splitlines()
