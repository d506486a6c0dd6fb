"""Install vision_policy_examples: terms and sources of two real Isaac Lab policies."""
from setuptools import find_packages, setup

PACKAGE = 'vision_policy_examples'
G1 = 'vision_policy_examples.g1_mimic'
SO101 = 'vision_policy_examples.so101_pickplace'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml', 'README.md']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='vision_policy maintainers',
    maintainer_email='maintainers@vision-policy.dev',
    description='Example vision_policy plugins: terms and sources of two Isaac Lab policies.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    # This is all a user's package needs to add terms: entry points naming definitions.
    entry_points={
        'vision_policy.observation_terms': [
            'gait_phase = vision_policy_examples.gait_phase:GAIT_PHASE',
            f'motion_command = {G1}:MOTION_COMMAND',
            f'motion_anchor_pos_b = {G1}:MOTION_ANCHOR_POS_B',
            f'motion_anchor_ori_b = {G1}:MOTION_ANCHOR_ORI_B',
            f'bowl_xy = {SO101}:BOWL_XY',
            f'ee_proj_xy = {SO101}:EE_PROJ_XY',
            f'ee_to_bowl_xy = {SO101}:EE_TO_BOWL_XY',
            f'cube_pos_xy = {SO101}:CUBE_POS_XY',
            f'gripper_state = {SO101}:GRIPPER_STATE',
        ],
        'vision_policy.sources': [
            f'motion_reference = {G1}:MOTION_REFERENCE',
            f'robot_anchor = {G1}:ROBOT_ANCHOR',
            f'motion_anchor = {G1}:MOTION_ANCHOR',
            f'cube_pose = {SO101}:CUBE',
            f'bowl_pose = {SO101}:BOWL',
            f'ee_pose = {SO101}:EE',
        ],
    },
)
