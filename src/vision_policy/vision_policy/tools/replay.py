"""
vision_policy_replay: run a recording's inputs through the pure core and check every command.

    vision_policy_replay recording.mcap                      # bit for bit, or the first
                                                            # differing tick and term
    vision_policy_replay recording.mcap --model new.onnx     # regression: new policy,
    vision_policy_replay recording.mcap --card other.yaml    # yesterday's robot data
    vision_policy_replay raw_bag.mcap --model policy.onnx    # a `ros2 bag record` of the
                                                            # topics: what it would command

Exit status: 0 every recorded command reproduced (a raw bag: replayed); 1 a difference
(named on stdout); 2 the file, model or card cannot be used (the reason on stderr).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import Optional

from ..card import CardError
from ..recording import RecordingError
from ..replay import replay_recording
from ..runtime import ModelError


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog='vision_policy_replay', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('recording', help='.mcap file (vision_policy recording or rosbag2)')
    parser.add_argument('--model', help='ONNX policy to replay through (default: recorded)')
    parser.add_argument('--card', help='policy card YAML (default: recorded, or beside '
                                       '--model)')
    parser.add_argument('--plugin-modules', nargs='*', metavar='MODULE',
                        help='modules of observation terms, action terms and sources '
                             '(default: those the node ran with, as recorded)')
    parser.add_argument('--providers', nargs='+', default=['CPUExecutionProvider'],
                        help='onnxruntime providers; bit for bit needs the recorded one')
    parser.add_argument('--commands-out', help='raw bag: write the commands as JSON here')
    args = parser.parse_args(argv)
    try:
        result = replay_recording(args.recording, args.model, args.card,
                                  None if args.plugin_modules is None
                                  else tuple(args.plugin_modules), tuple(args.providers))
    except (RecordingError, CardError, ModelError, OSError) as exc:
        print(f'vision_policy_replay: error: {exc}', file=sys.stderr)
        return 2
    except ValueError as exc:
        # An input the card cannot use (an image of another size, a joint state without
        # the card's joints): the recording does not fit this policy.
        print(f'vision_policy_replay: error: {args.recording}: the recorded inputs do not '
              f'fit this policy: {exc}', file=sys.stderr)
        return 2
    print(result.summary())
    if args.commands_out:
        Path(args.commands_out).write_text(json.dumps(
            [{'log_time_ns': t, 'command': c.tolist()} for t, c in result.commanded]))
    if result.raw_bag:
        return 0
    return 0 if result.identical else 1


if __name__ == '__main__':
    sys.exit(main())
