"""
Motion-tracking terms of a BeyondMimic-style G1 policy (the g1_mimic fixture).

Training (Isaac Lab ``wbc`` task) feeds the policy the reference motion: the
``MotionCommand`` (reference joint positions and velocities at the current
frame) and the reference anchor body's pose relative to the robot's anchor
body (``motion_anchor_pos_b``, ``motion_anchor_ori_b``). On the robot a motion
player publishes the reference frame by frame and a state estimator the
robot's anchor pose; these three sources carry them into the card.
"""

from __future__ import annotations

import numpy as np

from vision_policy.observation import extra, ExtraSourceError, Term
from vision_policy.registry import ObservationTerm
from vision_policy.sources import InputError, Source

WBC = 'isaaclab_tasks.manager_based.wbc.mdp'


def _finite(*values: float) -> np.ndarray:
    out = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise InputError(f'message contains NaN/Inf: {out.tolist()}')
    return out


def read_reference(msg) -> dict:
    """sensor_msgs/JointState of the reference motion frame -> names, positions, velocities."""
    if len(msg.position) != len(msg.name) or len(msg.velocity) != len(msg.name):
        raise InputError(f'reference has {len(msg.name)} names, {len(msg.position)} positions '
                         f'and {len(msg.velocity)} velocities; expected one of each per joint')
    return {'motion_joint_names': np.array(msg.name),
            'motion_joint_pos': _finite(*msg.position),
            'motion_joint_vel': _finite(*msg.velocity)}


def _pose_reader(prefix: str):
    def read(msg) -> dict:
        p, q = msg.pose.position, msg.pose.orientation
        quat = _finite(q.x, q.y, q.z, q.w)
        if not 0.5 < float(np.linalg.norm(quat)) < 1.5:
            raise InputError(f'orientation {quat.tolist()} is not a unit quaternion')
        return {f'{prefix}_pos': _finite(p.x, p.y, p.z), f'{prefix}_quat': quat}
    return read


def rotation(quat_xyzw: np.ndarray) -> np.ndarray:
    """Return the rotation matrix of a quaternion (x, y, z, w), normalised first."""
    x, y, z, w = np.asarray(quat_xyzw, dtype=np.float64) / np.linalg.norm(quat_xyzw)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _relative(sample) -> tuple:
    """Motion anchor in the robot anchor frame: Isaac Lab's subtract_frame_transforms."""
    r_robot = rotation(extra(sample, 'robot_anchor_quat'))
    pos_b = r_robot.T @ (extra(sample, 'motion_anchor_pos') - extra(sample, 'robot_anchor_pos'))
    return pos_b, r_robot.T @ rotation(extra(sample, 'motion_anchor_quat'))


def make_motion_command(card, params) -> Term:
    """Observe reference joint positions then velocities, in card joint order (by name)."""
    names = list(card.joint_names)

    def compute(sample, out) -> None:
        given = list(extra(sample, 'motion_joint_names'))
        missing = [n for n in names if n not in given]
        if missing:
            raise ExtraSourceError(f'motion reference lacks joint(s) {missing}')
        idx = [given.index(n) for n in names]
        out[:len(names)] = extra(sample, 'motion_joint_pos')[idx]
        out[len(names):] = extra(sample, 'motion_joint_vel')[idx]
    return Term((2 * len(names),), compute)


def make_anchor_pos(card, params) -> Term:
    """Observe the reference anchor position in the robot anchor frame (3)."""
    def compute(sample, out) -> None:
        out[:] = _relative(sample)[0]
    return Term((3,), compute)


def make_anchor_ori(card, params) -> Term:
    """First two columns of the relative anchor rotation, row by row (6), as in training."""
    def compute(sample, out) -> None:
        out[:] = _relative(sample)[1][:, :2].reshape(-1)
    return Term((6,), compute)


MOTION_REFERENCE = Source('motion_reference', 'sensor_msgs/msg/JointState', 'motion/reference',
                          read_reference, qos='reliable',
                          description='reference joint positions and velocities (by name)')
ROBOT_ANCHOR = Source('robot_anchor', 'geometry_msgs/msg/PoseStamped', 'motion/robot_anchor',
                      _pose_reader('robot_anchor'),
                      description="the robot's anchor body (torso_link) pose, world frame")
MOTION_ANCHOR = Source('motion_anchor', 'geometry_msgs/msg/PoseStamped',
                       'motion/reference_anchor', _pose_reader('motion_anchor'),
                       description="the reference motion's anchor body pose, world frame")

MOTION_COMMAND = ObservationTerm(
    'motion_command', make_motion_command,
    lambda ctx, params: 2 * len(ctx.joint_names), needs=('motion_reference',),
    isaaclab_commands=(f'{WBC}.commands:MotionCommand',
                       'whole_body_tracking.tasks.tracking.mdp.commands:MotionCommand'))
MOTION_ANCHOR_POS_B = ObservationTerm(
    'motion_anchor_pos_b', make_anchor_pos, 3, needs=('robot_anchor', 'motion_anchor'),
    isaaclab_funcs=(f'{WBC}.observations:motion_anchor_pos_b',))
MOTION_ANCHOR_ORI_B = ObservationTerm(
    'motion_anchor_ori_b', make_anchor_ori, 6, needs=('robot_anchor', 'motion_anchor'),
    isaaclab_funcs=(f'{WBC}.observations:motion_anchor_ori_b',))

# For an operator who lists this module in the node's plugin_modules instead of installing.
VISION_POLICY_PLUGINS = (MOTION_COMMAND, MOTION_ANCHOR_POS_B, MOTION_ANCHOR_ORI_B,
                         MOTION_REFERENCE, ROBOT_ANCHOR, MOTION_ANCHOR)
