"""The shipped Fast DDS profile for camera frames, and the processes that get it."""

import ast
from pathlib import Path
import xml.etree.ElementTree as ET

import pytest

from vision_policy.transport import DEFAULT_SEGMENT_BYTES, loss_hint, LOSS_HINT_FRACTION, \
    PROFILE_ENV, profile_path, README_SECTION, use_profile

ROOT = Path(__file__).resolve().parents[3]
NS = {'f': 'http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles'}
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py')) + [
    ROOT / 'src' / 'vision_policy_sil' / 'launch' / 'nitros_pipeline.launch.py']


def test_profile_sizes_shared_memory_for_camera_frames():
    root = ET.parse(profile_path()).getroot()
    transports = {t.findtext('f:transport_id', namespaces=NS): t
                  for t in root.iterfind('f:transport_descriptors/f:transport_descriptor', NS)}
    kinds = {t.findtext('f:type', namespaces=NS): t for t in transports.values()}
    assert set(kinds) == {'SHM', 'UDPv4'}  # UDP stays for discovery and other hosts
    segment = int(kinds['SHM'].findtext('f:segment_size', namespaces=NS))
    assert segment >= 4 * 1920 * 1080 * 3  # four 1080p rgb8 frames
    participant = root.find('f:participant', NS)
    assert participant.get('is_default_profile') == 'true'
    used = [t.text for t in participant.iterfind('f:rtps/f:userTransports/f:transport_id', NS)]
    assert sorted(used) == sorted(transports)
    assert participant.findtext('f:rtps/f:useBuiltinTransports', namespaces=NS) == 'false'


def test_a_profile_the_user_set_is_kept():
    env = {}
    assert use_profile(env) == profile_path() == env[PROFILE_ENV]
    env = {PROFILE_ENV: '/etc/my_profile.xml'}
    assert use_profile(env) == '/etc/my_profile.xml'


def test_ws_exports_the_profile_unless_set():
    text = (ROOT / 'ws').read_text()
    assert 'export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-' \
           '$ROOT/config/fastdds_large_images.xml}"' in text


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launch_file_starts_with_the_profile(path):
    """The first action of each launch description sets the profile for what follows."""
    tree = ast.parse(path.read_text())
    generate = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and
                    n.name == 'generate_launch_description')
    returned = next(n for n in ast.walk(generate) if isinstance(n, ast.Return)).value
    calls = [n for n in ast.walk(returned) if isinstance(n, ast.Call) and
             isinstance(n.func, ast.Name) and n.func.id != 'LaunchDescription']
    first = min(calls, key=lambda n: (n.lineno, n.col_offset))  # in source order
    assert first.func.id == 'large_image_transport', ast.dump(first)[:200]


VGA = 640 * 480 * 3 + 60   # a serialized VGA rgb8 frame


def test_loss_hint_needs_sustained_loss_of_frames_over_the_default_segment():
    assert loss_hint(VGA, 0.0, {}) is None
    assert loss_hint(VGA, LOSS_HINT_FRACTION / 2, {}) is None  # a stall's odd frame
    # Small frames fit Fast DDS's default segment: their loss has another cause.
    assert loss_hint(DEFAULT_SEGMENT_BYTES, 0.5, {}) is None
    assert loss_hint(VGA, LOSS_HINT_FRACTION, {}) is not None


def test_loss_hint_names_the_profile_for_fast_dds():
    hint = loss_hint(VGA, 0.82, {}, '/ws/share/vision_policy/config/x.xml')
    assert hint.startswith("82.0% of the camera's frames lost (0.9 MB each): Fast DDS")
    assert 'this process: none, FASTRTPS_DEFAULT_PROFILES_FILE is not set' in hint
    assert 'start the driver with FASTRTPS_DEFAULT_PROFILES_FILE=' \
           '/ws/share/vision_policy/config/x.xml' in hint
    env = {'RMW_IMPLEMENTATION': 'rmw_fastrtps_dynamic_cpp', PROFILE_ENV: '/etc/mine.xml'}
    assert 'this process: /etc/mine.xml' in loss_hint(VGA, 0.5, env)


def test_loss_hint_for_other_middlewares():
    cyclone = loss_hint(VGA, 0.5, {'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'})
    assert 'CycloneDDS sends them over UDP' in cyclone and PROFILE_ENV not in cyclone
    assert loss_hint(VGA, 0.5, {'RMW_IMPLEMENTATION': 'rmw_zenoh_cpp'}).endswith(
        'over rmw_zenoh_cpp: check its settings for large messages')


def test_the_section_the_hint_points_to_is_in_the_readme():
    heading = README_SECTION.split('"')[1]
    assert f'### {heading}\n' in (ROOT / 'README.md').read_text()
