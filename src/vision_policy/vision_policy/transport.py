"""
The shipped Fast DDS profile for camera images, and how processes of ours get it.

Fast DDS's default shared-memory segment (512 KB) is smaller than one VGA frame, so a
frame crosses as UDP fragments and a best-effort reader drops every frame that misses one
(issue 14: 18 % of VGA frames arrived at 30 Hz). ``config/fastdds_large_images.xml``
gives the shared-memory transport a segment sized for camera frames. Fast DDS reads it
from ``FASTRTPS_DEFAULT_PROFILES_FILE`` when a process starts; a variable the user set is
always kept. A process outside the workspace's launch files (the camera driver) may not
have it: ``loss_hint`` names that cause when the node sees its frames lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, MutableMapping, Optional

PROFILE_ENV = 'FASTRTPS_DEFAULT_PROFILES_FILE'
PROFILE_NAME = 'fastdds_large_images.xml'
# Fast DDS's default shared-memory segment: a larger frame crosses as UDP fragments.
DEFAULT_SEGMENT_BYTES = 512 * 1024
# Frames lost since activation (images_lost) above which the cause is named: sustained
# loss, not the odd frame a stall of the camera's process leaves out.
LOSS_HINT_FRACTION = 0.01
README_SECTION = 'README, "Camera frames need the large-image transport profile"'


class ProfileNotFoundError(FileNotFoundError):
    """The shipped profile is neither installed nor in the source tree."""


def profile_path() -> str:
    """Return the installed profile (share/vision_policy/config), else the source tree's."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory('vision_policy')) / 'config')
    except (ImportError, LookupError, OSError, ValueError):
        pass  # not installed with colcon: the workspace checkout below
    candidates.append(Path(__file__).resolve().parents[3] / 'config')
    for folder in candidates:
        if (folder / PROFILE_NAME).is_file():
            return str(folder / PROFILE_NAME)
    raise ProfileNotFoundError(f'{PROFILE_NAME} not found in {[str(c) for c in candidates]}')


def use_profile(environ: MutableMapping[str, str]) -> Optional[str]:
    """
    Point ``environ`` at the shipped profile unless it names one already.

    Returns the profile in effect afterwards (the user's, if set). Child processes started
    with this environment use it; the current process read its own at start.
    """
    if not environ.get(PROFILE_ENV):
        environ[PROFILE_ENV] = profile_path()
    return environ[PROFILE_ENV]


def large_image_transport():
    """
    Return a launch action giving every process started after it the shipped profile.

    The first action of each of the workspace's launch files; FASTRTPS_DEFAULT_PROFILES_FILE
    as the user set it is kept. Imports ``launch`` only here: the rest of this module runs
    without it.
    """
    from launch.actions import SetEnvironmentVariable
    from launch.substitutions import EnvironmentVariable
    return SetEnvironmentVariable(PROFILE_ENV, EnvironmentVariable(
        PROFILE_ENV, default_value=profile_path()))


def loss_hint(frame_bytes: int, loss_fraction: float, environ: Mapping[str, str],
              shipped: str = PROFILE_NAME) -> Optional[str]:
    """
    Name the likely cause when a camera's frames are being lost, or None.

    ``frame_bytes`` is one serialized frame, ``loss_fraction`` the camera's
    ``image_loss_fraction``, ``environ`` this process's environment, ``shipped`` the
    profile to point at. Frames over Fast DDS's default segment are lost in bulk unless
    the camera driver's process and this one both load a larger one; the node cannot see
    the driver's environment, so the hint says what to check there.
    """
    if loss_fraction < LOSS_HINT_FRACTION or frame_bytes <= DEFAULT_SEGMENT_BYTES:
        return None
    lost = f"{loss_fraction:.1%} of the camera's frames lost ({frame_bytes / 1e6:.1f} MB each)"
    rmw = environ.get('RMW_IMPLEMENTATION') or 'rmw_fastrtps_cpp'  # Jazzy's default
    if 'fastrtps' in rmw:
        mine = environ.get(PROFILE_ENV)
        return (f'{lost}: Fast DDS carries frames over {DEFAULT_SEGMENT_BYTES // 1024} KB in '
                f"shared memory only when the camera driver's process and this one both load "
                f'a profile with a larger segment (this process: '
                f'{mine or f"none, {PROFILE_ENV} is not set"}); start the driver with '
                f'{PROFILE_ENV}={shipped} ({README_SECTION}); a camera on another host '
                f'sends them over the network')
    if 'cyclonedds' in rmw:
        return (f'{lost}: CycloneDDS sends them over UDP; raise the socket receive buffers '
                f'of every process on the image path ({README_SECTION})')
    return f'{lost} over {rmw}: check its settings for large messages'
