"""
vision_policy_import: an Isaac Lab run folder (or IO_descriptors.yaml) -> a policy card.

    vision_policy_import RUN_DIR|IO_DESCRIPTORS.yaml [--onnx FILE]
        [--joint-names a,b,c | --joint-names-file F | --urdf F | --from-joint-states]
        --output card.yaml

Prints the import report. Exit status: 0 card written; 2 refused (an
untranslatable term or action, or a width that differs from the ONNX input);
3 a template was written (direct-workflow env: fill it in); 1 unreadable input or an
--output that cannot be written.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys
import time
from typing import Optional

from ..isaaclab.direct_env import FILL
from ..isaaclab.importer import import_run
from ..isaaclab.joint_names import JointNameError
from ..isaaclab.onnx_io import OnnxSignatureError
from ..isaaclab.urdf import read_urdf, UrdfError
from ..isaaclab.yaml_loader import IsaacLabFileError
from ..registry import load_registry

EXIT_OK, EXIT_ERROR, EXIT_REFUSED, EXIT_TEMPLATE = 0, 1, 2, 3


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(prog='vision_policy_import', description=__doc__.split('\n')[0])
    p.add_argument('source', help='Isaac Lab run folder, params/env.yaml or IO_descriptors.yaml')
    p.add_argument('--onnx', help='exported policy (default: RUN_DIR/exported/policy.onnx)')
    names = p.add_mutually_exclusive_group()
    names.add_argument('--joint-names', help='robot joints in articulation order, a,b,c')
    names.add_argument('--joint-names-file', help='file with the joints, one per line')
    names.add_argument('--urdf', help='URDF: breadth-first joint order and joint limits')
    names.add_argument('--from-joint-states', action='store_true',
                       help='read the joint order from a live /joint_states (Isaac Sim)')
    p.add_argument('--joint-states-topic', default='/joint_states')
    p.add_argument('--timeout', type=float, default=5.0, help='s to wait for /joint_states')
    p.add_argument('--output', '-o', required=True, help='card YAML to write')
    p.add_argument('--plugin-module', action='append', default=[], metavar='MODULE',
                   help='a module of your own terms (its VISION_POLICY_PLUGINS), for terms not '
                        'installed through entry points; may be repeated')
    return p.parse_args(argv)


def check_output(path: Path) -> Optional[str]:
    """Say why a card cannot be written to path (None if it can), before any work is done."""
    if path.is_dir():
        return f'--output {path} is a directory; give a file name such as {path}/policy.yaml'
    if not path.parent.is_dir():
        return f'--output {path}: folder {path.parent} does not exist'
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f'--output {path}: not writable'
    return None


def joints_from_args(args: argparse.Namespace) -> tuple:
    """(joint names or None, joint limits, warnings) from whichever option was given."""
    if args.joint_names:
        return [n.strip() for n in args.joint_names.split(',') if n.strip()], {}, []
    if args.joint_names_file:
        text = Path(args.joint_names_file).read_text()
        return [n.strip() for n in text.replace(',', '\n').splitlines() if n.strip()], {}, []
    if args.urdf:
        urdf = read_urdf(args.urdf)
        return list(urdf.names), urdf.limits, [
            'joint order taken breadth-first from the URDF, as Isaac Sim usually orders an '
            'articulation: confirm it against Isaac Sim /joint_states before deploying']
    if args.from_joint_states:
        return joint_states_names(args.joint_states_topic, args.timeout), {}, []
    return None, {}, []


def joint_states_names(topic: str, timeout: float) -> list:
    """Joint names of the first JointState on topic (Isaac Sim publishes articulation order)."""
    import rclpy
    from sensor_msgs.msg import JointState
    rclpy.init()
    node = rclpy.create_node('vision_policy_import')
    got = []
    node.create_subscription(JointState, topic, lambda m: got.append(list(m.name)), 10)
    end = time.monotonic() + timeout
    try:
        while not got and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    if not got:
        raise TimeoutError(f'no JointState on {topic} within {timeout} s')
    return got[0]


def write(path: Path, text: str) -> bool:
    """Write the card; False (and a message) when the file system refuses."""
    try:
        path.write_text(text)
    except OSError as exc:
        print(f'vision_policy_import: cannot write {path}: {exc.strerror}', file=sys.stderr)
        return False
    return True


def main(argv: Optional[list] = None) -> int:
    """Run the import; see the module docstring for the exit status."""
    args = parse_args(argv)
    out = Path(args.output)
    problem = check_output(out)
    if problem is not None:
        print(f'vision_policy_import: {problem}', file=sys.stderr)
        return EXIT_ERROR
    try:
        joints, limits, warnings = joints_from_args(args)
        registry = load_registry(args.plugin_module)
        result = import_run(args.source, args.onnx, joints, limits, registry)
    except (OSError, IsaacLabFileError, UrdfError, JointNameError, OnnxSignatureError,
            TimeoutError, ValueError) as exc:
        print(f'vision_policy_import: {exc}', file=sys.stderr)
        return EXIT_ERROR
    result.report.warnings[:0] = warnings
    print(result.report.render())
    if result.template is not None:
        if not write(out, result.template):
            return EXIT_ERROR
        if FILL in result.template:
            print(f'wrote a card TEMPLATE to {out}: fill in every FILL_ME (listed at its top)')
        else:  # e.g. Isaac Lab's cartpole camera tasks: complete, but an effort action
            print(f'wrote the card to {out}: complete, but the node refuses it at configure '
                  f'(see the problem above)')
        return EXIT_TEMPLATE
    if result.card is None:
        print(f'refusing to write {out}: fix the problems above', file=sys.stderr)
        return EXIT_REFUSED
    header = [f'# Policy card imported from {args.source} by vision_policy_import.']
    header += [f'# warning: {w}' for w in result.report.warnings]
    if not write(out, '\n'.join(header) + '\n' + result.card.to_yaml()):
        return EXIT_ERROR
    print(f'wrote {out}')
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
