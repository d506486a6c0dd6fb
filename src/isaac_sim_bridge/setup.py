"""Install isaac_sim_bridge; launch/ and config/ go to its share directory."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'isaac_sim_bridge'

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
    description='Isaac Sim OmniGraph ROS 2 bridge app and launch file.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [],
    },
)
