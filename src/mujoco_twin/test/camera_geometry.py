"""Geometry and message helpers of the camera tests: hand-computed depth, raw pixels."""
import mujoco
from mujoco_twin.sim import ReachArmSim, SimConfig
import numpy as np


def optical_rotation(sim: ReachArmSim, camera: str) -> np.ndarray:
    """World rotation of the camera's ROS optical frame (columns: x right, y down, z ahead)."""
    _, quat = sim.camera_pose(camera)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, quat)
    return rot.reshape(3, 3)


def table_depth(position, rotation, intrinsics, u, v) -> np.ndarray:
    """
    z-depth of the table plane (z = 0) at pixels (u, v), by ray-plane intersection.

    The ray of pixel (u, v) in the optical frame is r = ((u - cx) / fx, (v - cy) / fy, 1);
    the point position + t * rotation @ r lies on z = 0 for t = -position_z / (rotation @ r)_z,
    and since r's optical z is 1, t is the z-depth itself.
    """
    fx, fy, cx, cy = intrinsics
    rays = np.stack([(np.asarray(u) - cx) / fx, (np.asarray(v) - cy) / fy,
                     np.ones(np.shape(u))], axis=-1)
    return -position[2] / (rays @ rotation.T)[..., 2]


def bottom_row_table_depth(width: int, height: int, fovy: float) -> tuple:
    """Pixels of the bottom row (all table, next to the camera) and their z-depth by hand."""
    sim = ReachArmSim(SimConfig(depth_width=width, depth_height=height, depth_fovy=fovy))
    position, _ = sim.camera_pose('depth_camera')
    u = np.arange(width)
    v = np.full(width, height - 1)
    return u, table_depth(position, optical_rotation(sim, 'depth_camera'),
                          sim.camera_intrinsics('depth_camera'), u, v)


def ns(msg) -> int:
    """Return the message's header stamp in nanoseconds."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def plain(image) -> np.ndarray:
    """Return a depth Image's pixels: float32 metres or uint16 millimetres, (height, width)."""
    dtype = {'32FC1': np.float32, '16UC1': np.uint16}[image.encoding]
    return np.frombuffer(bytes(image.data), dtype).reshape(image.height, image.width)
