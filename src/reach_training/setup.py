"""Install reach_training: the training side of the bundled reach policy (not for robots)."""
from setuptools import find_packages, setup

PACKAGE = 'reach_training'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml', 'README.md']),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='vision_policy maintainers',
    maintainer_email='maintainers@vision-policy.dev',
    description='Batched MuJoCo training (IK expert + DAgger image student) of the reach policy.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'reach_training_train = reach_training.train:main',
            'reach_training_eval = reach_training.evaluate:main',
        ],
    },
)
