"""
Does recording change the control timing? The SIL demo's loop, with record_path off and on.

    python3 -m vision_policy_sil.recording_jitter --seconds 60 --repeats 2 \
        --out out/recording_jitter

Runs what the SIL demo runs (mujoco_twin + policy_inference on simulation time, 640x480 at
30 Hz, the bundled model, twin reset every --episode-seconds), alternately without and with
``record_path``, each for the same wall time after the first command. At the end of each
run it reads the node's own /diagnostics: timer jitter p50/p99 (|tick interval - period|
over the last 1000 ticks, wall clock), missed ticks, commands, and with recording the
items the recorder dropped. The last recording is kept for vision_policy_replay and
vision_policy_report. The machine is shared, so runs alternate (off, on, off, on, ...)
and ``uptime`` is printed before each.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import threading
import time
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from std_srvs.srv import Trigger

from .mujoco_demo import (bundled_model, demo_environment, DemoOptions, ManagedProcess,
                          policy_command, twin_command)

KEYS = ('tick_jitter_ms_p50', 'tick_jitter_ms_p99', 'missed_ticks', 'commands', 'ticks',
        'holds', 'record_dropped', 'record_error')


class Watcher:
    """Keeps policy_inference's latest /diagnostics and resets the twin on request."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)
        self.node = rclpy.create_node('recording_jitter', context=self.context)
        self.values: dict = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 20)
        self.reset = self.node.create_client(Trigger, '/mujoco_twin/reset')
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if 'policy_inference' in status.name:
                self.values = {kv.key: kv.value for kv in status.values}

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        self.executor.shutdown(timeout_sec=5)
        self._thread.join(timeout=5)  # a spinning thread at exit aborts the process
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def run_once(seconds: float, episode_s: float, record: Optional[Path], out: Path,
             tag: str) -> dict:
    """One run of the demo loop; returns the node's figures at its end."""
    env = demo_environment()
    os.environ['ROS_DOMAIN_ID'] = env['ROS_DOMAIN_ID']
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = env['ROS_AUTOMATIC_DISCOVERY_RANGE']
    policy = policy_command(bundled_model())
    if record is not None:
        policy += ['-p', f'record_path:={record}']
    watcher = Watcher()
    processes = [ManagedProcess('mujoco_twin', twin_command(DemoOptions()),
                                out / f'{tag}_twin.log', env),
                 ManagedProcess('policy_inference', policy, out / f'{tag}_policy.log', env)]
    try:
        end = time.monotonic() + 180.0
        while int(watcher.values.get('commands', '0')) == 0:
            for p in processes:
                p.check()
            if time.monotonic() > end:
                raise RuntimeError(f'{tag}: no command in 180 s (logs in {out})')
            time.sleep(0.1)
        start = time.monotonic()
        next_reset = start + episode_s
        while time.monotonic() - start < seconds:
            for p in processes:
                p.check()
            if time.monotonic() >= next_reset:
                watcher.reset.call_async(Trigger.Request())
                next_reset += episode_s
            time.sleep(0.05)
        # The diagnostics of the last second cover the run's last 1000 ticks.
        time.sleep(1.5)
        figures = {k: watcher.values.get(k) for k in KEYS if k in watcher.values}
    finally:
        for p in reversed(processes):  # the policy first: it closes the recording on SIGINT
            p.stop(timeout=20.0)
        watcher.close()
    return figures


def main(argv: Optional[list] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog='recording_jitter', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=60.0, help='wall s per run')
    parser.add_argument('--repeats', type=int, default=2, help='pairs of runs (off, on)')
    parser.add_argument('--episode-seconds', type=float, default=5.0)
    parser.add_argument('--out', type=Path, default=Path('out/recording_jitter'))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for i in range(args.repeats):
        for record in (False, True):
            tag = f'{"on" if record else "off"}{i}'
            uptime = subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()
            path = (args.out / 'demo.mcap').resolve() if record else None
            figures = run_once(args.seconds, args.episode_seconds, path, args.out, tag)
            results.append({'run': tag, 'recording': record, 'uptime_before': uptime,
                            **figures})
            print(f'{tag}: uptime before: {uptime}')
            print(f'{tag}: ' + ', '.join(f'{k} {v}' for k, v in figures.items()), flush=True)
    (args.out / 'recording_jitter.json').write_text(json.dumps(results, indent=1))
    for record in (False, True):
        p99 = [float(r['tick_jitter_ms_p99']) for r in results
               if r['recording'] == record and 'tick_jitter_ms_p99' in r]
        print(f'recording {"on " if record else "off"}: timer jitter p99 per run (ms): {p99}')
    print(f'recording kept: {args.out / "demo.mcap"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
