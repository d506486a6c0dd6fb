"""Install vision_policy_sil; launch/ and config/ go to its share directory."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'vision_policy_sil'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', sorted(glob('launch/*.launch.py'))),
        ('share/' + PACKAGE + '/config', sorted(glob('config/*.yaml'))),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='vision_policy maintainers',
    maintainer_email='maintainers@vision-policy.dev',
    description='SIL bringup for the vision policy: NITROS pipeline and Isaac Sim adapter.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'trajectory_to_joint_command = '
            'vision_policy_sil.trajectory_to_joint_command:main',
            'vision_policy_sil_demo = vision_policy_sil.mujoco_demo:main',
        ],
    },
)
