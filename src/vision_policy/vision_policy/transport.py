"""
The shipped Fast DDS profile for camera images, and how processes of ours get it.

Fast DDS's default shared-memory segment (512 KB) is smaller than one VGA frame, so a
frame crosses as UDP fragments and a best-effort reader drops every frame that misses one
(issue 14: 18 % of VGA frames arrived at 30 Hz). ``config/fastdds_large_images.xml``
gives the shared-memory transport a segment sized for camera frames. Fast DDS reads it
from ``FASTRTPS_DEFAULT_PROFILES_FILE`` when a process starts; a variable the user set is
always kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import MutableMapping, Optional

PROFILE_ENV = 'FASTRTPS_DEFAULT_PROFILES_FILE'
PROFILE_NAME = 'fastdds_large_images.xml'


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
