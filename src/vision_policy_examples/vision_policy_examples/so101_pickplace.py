"""
Object terms of the SO-ARM101 pick-and-place policy (the so101_pickplace_bowl fixture).

Training computes, in the robot root frame: the bowl goal (a command), the
end effector's xy (a FrameTransformer), the cube's xy (AprilTag surrogate;
``corrupt: false`` in the run, so the plain position) and the gripper joint.
On the robot a perception node publishes the cube and bowl poses and
robot_state_publisher's TF (relayed as a pose) gives the end effector; all in
the robot base frame. The gripper is Isaac Lab's own BinaryJointPositionAction,
which vision_policy has built in.
"""

from __future__ import annotations

import numpy as np

from vision_policy.observation import extra, joint_indices, Term
from vision_policy.registry import ObservationTerm
from vision_policy.sources import InputError, Source

MDP = 'isaac_so_arm101.tasks.pickplace.mdp'


def _xy_reader(key: str):
    def read(msg) -> dict:
        p = msg.pose.position
        xy = np.array([p.x, p.y], dtype=np.float64)
        if not np.all(np.isfinite(xy)):
            raise InputError(f'{key} position contains NaN/Inf: {xy.tolist()}')
        return {key: xy}
    return read


def _xy_term(key: str):
    def make(card, params) -> Term:
        def compute(sample, out) -> None:
            out[:] = extra(sample, key)
        return Term((2,), compute)
    return make


def make_ee_to_bowl(card, params) -> Term:
    """Bowl xy minus end-effector xy."""
    def compute(sample, out) -> None:
        np.subtract(extra(sample, 'bowl_xy'), extra(sample, 'ee_xy'), out=out)
    return Term((2,), compute)


def make_gripper_state(card, params) -> Term:
    """Observe the gripper joint's position, from /joint_states."""
    idx = joint_indices(card, {'joint_names': [params.get('gripper_joint_name', 'gripper')]})

    def compute(sample, out) -> None:
        np.take(sample.joint_pos, idx, out=out)
    return Term((1,), compute)


CUBE = Source('cube_pose', 'geometry_msgs/msg/PoseStamped', 'perception/cube_pose',
              _xy_reader('cube_xy'), description='cube pose in the robot base frame')
BOWL = Source('bowl_pose', 'geometry_msgs/msg/PoseStamped', 'perception/bowl_pose',
              _xy_reader('bowl_xy'), description='bowl (goal) pose in the robot base frame')
EE = Source('ee_pose', 'geometry_msgs/msg/PoseStamped', 'ee_pose', _xy_reader('ee_xy'),
            description='end-effector (gripper frame) pose in the robot base frame')

BOWL_XY = ObservationTerm('bowl_xy', _xy_term('bowl_xy'), 2, needs=('bowl_pose',),
                          isaaclab_funcs=(f'{MDP}.observations:bowl_xy',))
EE_PROJ_XY = ObservationTerm('ee_proj_xy', _xy_term('ee_xy'), 2, needs=('ee_pose',),
                             isaaclab_funcs=(f'{MDP}.observations:ee_proj_xy',))
EE_TO_BOWL_XY = ObservationTerm('ee_to_bowl_xy', make_ee_to_bowl, 2,
                                needs=('bowl_pose', 'ee_pose'),
                                isaaclab_funcs=(f'{MDP}.observations:ee_to_bowl_xy',))
# Training froze the cube position once grasped (the tag is then hidden): the perception
# node must keep publishing its last detection, or the stale source holds the robot.
CUBE_POS_XY = ObservationTerm('cube_pos_xy', _xy_term('cube_xy'), 2, needs=('cube_pose',),
                              isaaclab_funcs=(f'{MDP}.observations:cube_pos_xy_noisy',))
GRIPPER_STATE = ObservationTerm(
    'gripper_state', make_gripper_state, 1,
    isaaclab_funcs=(f'{MDP}.observations:gripper_state',),
    import_params=lambda params, env: {'gripper_joint_name': params.get('gripper_joint_name',
                                                                        'gripper')})

VISION_POLICY_PLUGINS = (BOWL_XY, EE_PROJ_XY, EE_TO_BOWL_XY, CUBE_POS_XY, GRIPPER_STATE,
                         CUBE, BOWL, EE)
