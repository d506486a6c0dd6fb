"""Install vision_policy; the workspace launch/, config/ and models/ go to its share dir."""
import os
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = 'vision_policy'
HERE = Path(__file__).resolve().parent
# The workspace root holds the one copy of launch/, config/ and models/.
WORKSPACE = HERE.parent.parent


def share_files(folder: str, patterns: tuple) -> list:
    """List (install dir, [files]) for each file under WORKSPACE/folder that matches."""
    root = WORKSPACE / folder
    found = sorted(p for pattern in patterns for p in root.rglob(pattern) if p.is_file())
    groups = {}
    for path in found:
        target = Path('share') / PACKAGE / path.parent.relative_to(WORKSPACE)
        groups.setdefault(str(target), []).append(os.path.relpath(path, HERE))
    return sorted(groups.items())


CONSOLE_SCRIPTS = [
    'policy_inference = vision_policy.node:main',
    'vision_policy_export = vision_policy.tools.export:main',
    'vision_policy_inspect = vision_policy.tools.inspect_model:main',
    'vision_policy_import = vision_policy.tools.import_isaaclab:main',
    'vision_policy_bench = vision_policy.tools.bench:main',
    'vision_policy_replay = vision_policy.tools.replay:main',
    'vision_policy_report = vision_policy.report:main',
]
# The user's tools (not the node) also go to bin/, on PATH after sourcing the workspace:
# each is a link to bin/ros2_run_shim, which runs lib/vision_policy/<tool>.
TOOLS = [s.split(' = ')[0] for s in CONSOLE_SCRIPTS if s.startswith('vision_policy_')]

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('bin', [f'bin/{tool}' for tool in TOOLS]),
        *share_files('launch', ('*.launch.py',)),
        *share_files('config', ('*.yaml', '*.xml')),
        *share_files('models', ('*.onnx', '*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='vision_policy maintainers',
    maintainer_email='maintainers@vision-policy.dev',
    description='Vision RL policy (Isaac Lab, ONNX) inference node for ROS 2.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': CONSOLE_SCRIPTS,
        # The one registry (registry.py): built-in terms are registered exactly as a
        # user's package registers its own.
        'vision_policy.observation_terms': [
            f'{name} = vision_policy.observation:{name.upper()}' for name in (
                'joint_pos', 'joint_pos_rel', 'joint_vel', 'joint_vel_rel',
                'joint_pos_limit_normalized', 'last_action', 'actions', 'image',
                'base_ang_vel', 'projected_gravity', 'base_lin_vel', 'velocity_commands',
                'generated_commands', 'height_scan', 'pose_command', 'imu_orientation',
                'imu_lin_acc', 'base_pos_z', 'current_time_s', 'remaining_time_s')],
        'vision_policy.action_terms': [
            f'{name} = vision_policy.action:{name.upper()}' for name in (
                'joint_position', 'relative_joint_position', 'joint_velocity',
                'binary_joint_position', 'abs_binary_joint_position', 'joint_position_to_limits',
                'ema_joint_position_to_limits', 'hold_default')],
        'vision_policy.sources': [
            f'{name} = vision_policy.sources:{name.upper()}' for name in (
                'imu', 'odom', 'cmd_vel', 'height_map', 'pose_command')],
    },
)
