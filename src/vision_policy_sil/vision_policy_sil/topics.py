"""
Topic names of the SIL image path, shared by the launch files so they agree.

Isaac Sim publishes the camera; the optional NITROS stages (Isaac ROS image_proc
ResizeNode -> ImageFormatConverterNode) hand the policy node its image; the H.264
encoder compresses the full camera image for monitoring.
"""
from __future__ import annotations

from dataclasses import dataclass

CAMERA_IMAGE = '/camera/image_raw'
CAMERA_INFO = '/camera/camera_info'
RESIZED_IMAGE = '/camera/resized/image_raw'
RESIZED_INFO = '/camera/resized/camera_info'
POLICY_IMAGE = '/camera/policy/image_raw'
H264_IMAGE = '/camera/image_h264'
TRAJECTORY = '/joint_trajectory_controller/joint_trajectory'
JOINT_COMMAND = '/joint_command'
JOINT_STATES = '/joint_states'


@dataclass(frozen=True)
class ImagePlan:
    """Input / output topics of each NITROS stage and what the policy subscribes to."""

    resize_input: str
    resize_output: str
    convert_input: str
    convert_output: str
    encoder_input: str
    policy_image: str


def image_plan(resize: bool, convert: bool) -> ImagePlan:
    """Wire the stages that are on; a stage that is off is bypassed."""
    after_resize = RESIZED_IMAGE if resize else CAMERA_IMAGE
    after_convert = POLICY_IMAGE if convert else after_resize
    return ImagePlan(resize_input=CAMERA_IMAGE, resize_output=RESIZED_IMAGE,
                     convert_input=after_resize, convert_output=POLICY_IMAGE,
                     encoder_input=CAMERA_IMAGE, policy_image=after_convert)
