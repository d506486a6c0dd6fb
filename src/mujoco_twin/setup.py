"""Install mujoco_twin; the MJCF scene goes inside the Python package and to share/."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'mujoco_twin'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={PACKAGE: ['models/*.xml']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml', 'README.md']),
        ('share/' + PACKAGE + '/models', sorted(glob(PACKAGE + '/models/*.xml'))),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='vision_policy maintainers',
    maintainer_email='maintainers@vision-policy.dev',
    description='MuJoCo twin of the reach arm speaking Isaac Sim ROS 2 topics, for SIL.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'mujoco_twin = mujoco_twin.twin_node:main',
        ],
    },
)
