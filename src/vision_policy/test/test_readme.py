"""
The README's commands work as written: tool commands run, launch arguments exist.

After ``source install/setup.bash`` the tools are on PATH in both setups (stock ROS 2 with
``ros2 run``, and the pip-wheel setup without the ros2 CLI). Every ``name:=value`` of a
``ros2 launch`` command in the README is an argument its launch file declares. The pages
under ``docs/`` that the README links to are held to the same.
"""

import ast
from pathlib import Path
import re
import shutil
import subprocess

from conftest import workspace_root
import pytest

ROOT = workspace_root()
README = (ROOT / 'README.md').read_text()
DOCS = sorted((ROOT / 'docs').glob('*.md'))


def commands() -> list:
    """List the shell commands of the README and docs/, continuation lines joined."""
    blocks, fence = [], None
    for line in '\n'.join([README] + [d.read_text() for d in DOCS]).splitlines():
        if line.startswith('```'):
            if fence is None:
                fence = line[3:].strip()
                blocks.append((fence, []))
            else:
                fence = None
        elif fence is not None:
            blocks[-1][1].append(line)
    out = []
    for kind, lines in blocks:
        if kind not in ('bash', 'sh'):
            continue
        for line in re.sub(r'\\\n\s*', ' ', '\n'.join(lines)).splitlines():
            line = line.split(' #')[0].strip()
            if line and not line.startswith('#'):
                out.append(line)
    return out


def tool_commands() -> list:
    tools = set()
    for line in commands():
        words = line.split()
        if words[:3] == ['ros2', 'run', 'vision_policy']:
            tools.add(words[3])
        elif words[0].startswith('vision_policy_'):
            tools.add(words[0])
    return sorted(tools)


def launch_commands() -> list:
    return [line.split() for line in commands() if line.startswith('ros2 launch ')]


def declared_arguments(path: Path) -> set:
    """Names a launch file declares: DeclareLaunchArgument('x', ...) or an ARGUMENTS table."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == \
                'DeclareLaunchArgument' and node.args and isinstance(node.args[0], ast.Constant):
            names.add(node.args[0].value)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'ARGUMENTS':
            names |= {ast.literal_eval(t.elts[0]) for t in node.value.elts}
    return names


def launch_file(package: str, name: str) -> Path:
    folder = ROOT / 'launch' if package == 'vision_policy' else ROOT / 'src' / package / 'launch'
    return folder / name


def test_readme_links_resolve():
    """Every relative link of the README names a file of the workspace."""
    links = re.findall(r'\]\(([^)#:]+)\)', README)
    assert 'docs/performance.md' in links
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, f'README links to missing files: {missing}'


def test_readme_names_tools_and_launch_commands():
    assert {'vision_policy_import', 'vision_policy_inspect', 'vision_policy_export',
            'vision_policy_bench'} <= set(tool_commands())
    assert len(launch_commands()) >= 3


@pytest.mark.parametrize('tool', tool_commands())
def test_readme_tool_command_runs(tool):
    path = shutil.which(tool)
    assert path, f'{tool} is not on PATH after sourcing install/setup.bash'
    done = subprocess.run([path, '--help'], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'usage' in done.stdout.lower()


@pytest.mark.parametrize('words', launch_commands(), ids=lambda w: ' '.join(w[2:4]))
def test_readme_launch_arguments_exist(words):
    path = launch_file(words[2], words[3])
    assert path.is_file(), f'{path} does not exist'
    declared = declared_arguments(path)
    used = {w.split(':=')[0] for w in words[4:] if ':=' in w}
    assert used <= declared, f'{words[3]} has no argument(s) {sorted(used - declared)}'


def test_nitros_stages_default_to_the_card_exact_path():
    """The GPU resize is bilinear: off unless asked for, in every launch file."""
    path = launch_file('vision_policy_sil', 'nitros_pipeline.launch.py')
    tree = ast.parse(path.read_text())
    defaults = {node.args[0].value: kw.value.value for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, 'id', '') ==
                'DeclareLaunchArgument' for kw in node.keywords if kw.arg == 'default_value'}
    assert defaults['resize'] == 'false' and defaults['convert'] == 'false'
    sil = ast.parse(launch_file('vision_policy', 'sil_isaac.launch.py').read_text())
    sil_defaults = {node.args[0].value: kw.value for node in ast.walk(sil)
                    if isinstance(node, ast.Call) and getattr(node.func, 'id', '') ==
                    'DeclareLaunchArgument' for kw in node.keywords
                    if kw.arg == 'default_value'}
    assert sil_defaults['nitros_resize'].value == 'false'
