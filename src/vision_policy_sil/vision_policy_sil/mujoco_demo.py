"""
The SIL demo: the MuJoCo twin and policy_inference in closed loop, a report and a picture.

    python3 -m vision_policy_sil.mujoco_demo [--episodes N] [--episode-seconds S]
        [--out DIR] [--model PATH] [--seed K] [--real-time-factor F]

What ``ros2 launch vision_policy sil_mujoco.launch.py`` starts, started here as two
subprocesses (the twin and the policy node, both on simulation time, the same topics and
parameters as the launch file), on a private ROS_DOMAIN_ID unless one is set. An
in-process recorder (``sil_recorder``) resets the twin before each episode, runs it for
a fixed simulation time and records frames, commanded and measured joint positions, the
task state and the policy node's /diagnostics. Printed and written to the output folder:
report.txt, report.json, strip.png (frames across each episode beside the joint
positions) and episodes.gif, plus the two nodes' logs.

Exit status: 0 done, 1 the run failed (a process died, no commands arrived, ...; the
message says which and where its log is), 2 bad arguments, 130 interrupted.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from vision_policy.transport import PROFILE_ENV, use_profile

from .demo_report import build_report, DemoReport, format_report, plot_strip, write_gif
from .sil_recorder import RecorderError, SilRecorder
from .topics import CAMERA_IMAGE, JOINT_STATES, TRAJECTORY

# Private domain IDs: 50..99 (below 101, the largest ID whose ports are safe on Linux).
DOMAIN_BASE, DOMAIN_SPAN = 50, 50
STOP_TIMEOUT_S = 5.0
STALL_TIMEOUT_S = 20.0
POLL_S = 0.01


class DemoError(RuntimeError):
    """The demo cannot go on; the message says what failed and where to look."""


class Interrupted(Exception):
    """SIGTERM arrived: stop like on Ctrl-C."""


@dataclass(frozen=True)
class DemoOptions:
    """Command-line options of the demo; see ``parse_args``."""

    episodes: int = 3
    episode_seconds: float = 5.0
    out: Path = Path('out/demo')
    model: Optional[Path] = None
    card: Optional[Path] = None       # the policy card (default: the one beside the model)
    camera_fovy: float = 0.0          # the twin camera's vertical field of view; 0: training's
    fov_matching: bool = True         # the node crops to the card's training camera
    seed: int = 0
    real_time_factor: float = 1.0
    image_width: int = 640
    image_height: int = 480
    camera_rate: float = 30.0
    tolerance: float = 0.05
    frames: int = 6
    gif: bool = True
    startup_timeout: float = 120.0

    def validate(self) -> None:
        """Raise ValueError naming the option when a value is unusable."""
        if self.episodes < 1:
            raise ValueError(f'--episodes: {self.episodes}, expected >= 1')
        if not self.episode_seconds > 0:
            raise ValueError(f'--episode-seconds: {self.episode_seconds}, expected > 0')
        if not (1 <= self.image_width <= 4096 and 1 <= self.image_height <= 4096):
            raise ValueError(f'--image-width/--image-height: {self.image_width}x'
                             f'{self.image_height}, expected 1..4096 pixels')
        if not self.camera_rate > 0:
            raise ValueError(f'--camera-rate: {self.camera_rate}, expected > 0 Hz')
        if not self.tolerance > 0:
            raise ValueError(f'--tolerance: {self.tolerance}, expected > 0 m')
        if not (self.camera_fovy == 0.0 or 0.0 < self.camera_fovy < 180.0):
            raise ValueError(f"--camera-fovy: {self.camera_fovy}, expected 0 (the model's) "
                             f'or degrees in (0, 180)')
        if not 1 <= self.frames <= 20:
            raise ValueError(f'--frames: {self.frames}, expected 1..20')


def parse_args(argv: Optional[Sequence[str]] = None) -> DemoOptions:
    """Parse the command line into DemoOptions (exit 2 on a bad value)."""
    d = DemoOptions()
    parser = argparse.ArgumentParser(
        prog='mujoco_demo', description='SIL demo: MuJoCo twin + policy_inference, '
        'a report and a picture of each episode.')
    parser.add_argument('--episodes', type=int, default=d.episodes, help='episodes to run')
    parser.add_argument('--episode-seconds', type=float, default=d.episode_seconds,
                        help='episode length, s of simulation time')
    parser.add_argument('--out', type=Path, default=d.out, help='output folder')
    parser.add_argument('--model', type=Path, default=None,
                        help='ONNX policy (default: the bundled reach policy)')
    parser.add_argument('--card', type=Path, default=None,
                        help='policy card (default: the YAML beside the model, or embedded)')
    parser.add_argument('--camera-fovy', type=float, default=d.camera_fovy,
                        help="twin camera's vertical field of view, degrees (0: the model's,"
                             ' what the bundled policy was trained on)')
    parser.add_argument('--no-fov-matching', dest='fov_matching', action='store_false',
                        help='node parameter fov_matching false: use the whole image even '
                             'when the card gives the training camera')
    parser.add_argument('--seed', type=int, default=d.seed, help='twin target seed')
    parser.add_argument('--real-time-factor', type=float, default=d.real_time_factor,
                        help='twin speed: 1.0 real time, <= 0 as fast as possible')
    parser.add_argument('--image-width', type=int, default=d.image_width)
    parser.add_argument('--image-height', type=int, default=d.image_height)
    parser.add_argument('--camera-rate', type=float, default=d.camera_rate,
                        help='camera rate, Hz of simulation time')
    parser.add_argument('--tolerance', type=float, default=d.tolerance,
                        help='success: final end-effector distance below this (m)')
    parser.add_argument('--frames', type=int, default=d.frames,
                        help='camera frames per episode in the strip')
    parser.add_argument('--no-gif', dest='gif', action='store_false', help='skip the GIF')
    parser.add_argument('--startup-timeout', type=float, default=d.startup_timeout,
                        help='wall seconds to wait for the first command')
    ns = parser.parse_args(argv)
    options = DemoOptions(**vars(ns))
    try:
        options.validate()
    except ValueError as err:
        parser.error(str(err))
    return options


def bundled_model() -> Path:
    """Find the bundled policy: vision_policy's share folder, else the workspace models/."""
    try:
        from ament_index_python.packages import (get_package_share_directory,
                                                 PackageNotFoundError)
        try:
            path = Path(get_package_share_directory('vision_policy')) / 'models'
            if (path / 'reach_policy.onnx').is_file():
                return path / 'reach_policy.onnx'
        except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset
            pass
    except ImportError:
        pass
    for parent in Path(__file__).resolve().parents:
        path = parent / 'models' / 'reach_policy.onnx'
        if path.is_file():
            return path
    raise DemoError('bundled model reach_policy.onnx not found (neither in the vision_policy '
                    'share folder nor in a models/ folder above this file): pass --model')


def demo_environment(base: Optional[dict] = None) -> dict:
    """Copy the environment; pick a private ROS_DOMAIN_ID unless one is set."""
    env = dict(os.environ if base is None else base)
    if not env.get('ROS_DOMAIN_ID', '').strip():
        env['ROS_DOMAIN_ID'] = str(DOMAIN_BASE + os.getpid() % DOMAIN_SPAN)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    # Camera frames exceed Fast DDS's default shared-memory segment (issue 14): the twin,
    # the node and the recorder use the shipped profile unless the user set one.
    use_profile(env)
    env['PYTHONUNBUFFERED'] = '1'
    return env


def twin_command(o: DemoOptions) -> list:
    """Build the mujoco_twin command line (parameters as sil_mujoco.launch.py sets them)."""
    return [sys.executable, '-m', 'mujoco_twin.twin_node', '--ros-args',
            '-p', 'use_sim_time:=true', '-p', f'seed:={o.seed}',
            '-p', f'real_time_factor:={float(o.real_time_factor)!r}',
            '-p', f'image_width:={o.image_width}', '-p', f'image_height:={o.image_height}',
            '-p', f'camera_rate:={float(o.camera_rate)!r}',
            '-p', f'camera_fovy:={float(o.camera_fovy)!r}']


def policy_command(model: Path, card: Optional[Path] = None, fov_matching: bool = True) -> list:
    """Build the policy_inference command line (as sil_mujoco.launch.py: autostart, sim time)."""
    argv = [sys.executable, '-m', 'vision_policy.node', '--ros-args',
            '-p', f'model_path:={model}', '-p', 'autostart:=true', '-p', 'use_sim_time:=true',
            '-p', f'image_topic:={CAMERA_IMAGE}', '-p', f'joint_states_topic:={JOINT_STATES}',
            '-p', f'trajectory_topic:={TRAJECTORY}',
            '-p', f'fov_matching:={str(fov_matching).lower()}']
    return argv + (['-p', f'card_path:={Path(card).resolve()}'] if card else [])


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child if the demo dies without cleaning up (best effort)."""
    # A SIGINT ignored by the demo's parent (a background job) must still stop the node.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import ctypes
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ManagedProcess:
    """A node in a subprocess with its output in a log file; stopped with SIGINT, then kill."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: dict) -> None:
        self.name = name
        self.log_path = Path(log_path)
        self._log = open(self.log_path, 'wb')
        try:
            self.proc = subprocess.Popen(
                list(argv), stdout=self._log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops us in order
                preexec_fn=_die_with_parent if sys.platform.startswith('linux') else None)
        except OSError as err:
            self._log.close()
            raise DemoError(f'cannot start {name}: {err}') from err

    def tail(self, lines: int = 15) -> str:
        """Return the last lines of the log."""
        try:
            text = self.log_path.read_text(errors='replace').splitlines()
        except OSError:
            return ''
        return '\n'.join(text[-lines:])

    def check(self) -> None:
        """Raise DemoError when the process has exited."""
        rc = self.proc.poll()
        if rc is not None:
            raise DemoError(f'{self.name} exited with code {rc} (log {self.log_path}); its '
                            f'last lines:\n{self.tail()}')

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> Optional[int]:
        """SIGINT, wait up to timeout, then SIGKILL; returns the exit code."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout)
            return self.proc.returncode
        finally:
            self._log.close()


class Run:
    """The processes and the recorder of one demo run; ``close`` always cleans up."""

    def __init__(self, options: DemoOptions, model: Path, joint_names: Sequence[str],
                 env: dict, echo: Callable[[str], None]) -> None:
        self.options, self.echo = options, echo
        self.processes: list = []
        # The in-process recorder must join the subprocesses' domain.
        os.environ['ROS_DOMAIN_ID'] = env['ROS_DOMAIN_ID']
        os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = env['ROS_AUTOMATIC_DISCOVERY_RANGE']
        # Fast DDS reads the profile when this process's first participant is created.
        os.environ[PROFILE_ENV] = env[PROFILE_ENV]
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.recorder: Optional[SilRecorder] = None
        self._thread: Optional[threading.Thread] = None
        out = options.out
        self.processes.append(ManagedProcess('mujoco_twin', twin_command(options),
                                             out / 'mujoco_twin.log', env))
        self.processes.append(ManagedProcess(
            'policy_inference', policy_command(model, options.card, options.fov_matching),
            out / 'policy_inference.log', env))
        self.recorder = SilRecorder(joint_names, frame_period=0.1, context=self.context)
        self.executor.add_node(self.recorder)
        self._thread = threading.Thread(target=self._spin, name='sil_recorder', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def check(self) -> None:
        """Raise DemoError if a node process died."""
        for process in self.processes:
            process.check()

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll predicate, checking the processes; DemoError naming `what` on timeout."""
        end = time.monotonic() + timeout
        while not predicate():
            self.check()
            if time.monotonic() > end:
                raise DemoError(f'{what}: nothing after {timeout:g} s wall ({self.status()})')
            time.sleep(POLL_S)

    def status(self) -> str:
        """Describe the policy node's last diagnostics and the logs, for error messages."""
        status = self.recorder.policy_status if self.recorder else None
        said = 'no /diagnostics from policy_inference' if status is None else (
            f'policy_inference says {status.message!r}')
        logs = ', '.join(str(p.log_path) for p in self.processes)
        return f'{said}; logs: {logs}'

    def wait_ready(self) -> None:
        """Wait until the twin publishes and the policy commands; fail fast on its errors."""
        r = self.recorder

        def policy_failed() -> bool:
            status = r.policy_status
            if status is not None and status.level >= 2 and status.values.get('last_error'):
                raise DemoError(f'policy_inference failed: {status.message} (log '
                                f'{self.processes[1].log_path})')
            return False
        self.wait_for(lambda: r.clock_count > 0 and r.images_received > 0,
                      self.options.startup_timeout, 'waiting for mujoco_twin (/clock, camera)')
        self.echo('mujoco_twin is up')
        self.wait_for(lambda: policy_failed() or r.command_count() > 0,
                      self.options.startup_timeout,
                      'waiting for the first command from policy_inference')
        self.echo('policy_inference is commanding')

    def run_episode(self, index: int):
        """Reset the twin, run one episode of episode_seconds; returns (trace, wall s)."""
        r, o = self.recorder, self.options
        before = r.latest_task().episode
        try:
            message = r.call_reset()
        except RecorderError as err:
            raise DemoError(f'{err} ({self.status()})') from err
        self.wait_for(lambda: r.latest_task().episode > before, 10.0,
                      f'waiting for episode {index + 1} after reset ({message})')
        first = r.first_task_after(before)
        episode, start = first.episode, first.time
        end = start + o.episode_seconds
        wall0 = time.monotonic()
        last_sim, last_wall = start, wall0
        while True:
            self.check()
            now = r.latest_task().time
            if now >= end:
                break
            wall = time.monotonic()
            if now > last_sim:
                last_sim, last_wall = now, wall
            elif wall - last_wall > STALL_TIMEOUT_S:
                raise DemoError(f'simulation time stopped at {now:.3f} s for '
                                f'{STALL_TIMEOUT_S:g} s wall ({self.status()})')
            time.sleep(POLL_S)
        wall = time.monotonic() - wall0
        return r.window(episode, start, end), wall

    def wait_final_diagnostics(self, sim_time: float, timeout: float = 3.0) -> dict:
        """Wait for the policy's diagnostics stamped at or after sim_time; its values."""
        r = self.recorder
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            status = r.policy_status
            if status is not None and status.stamp >= sim_time:
                break
            time.sleep(POLL_S)
        status = r.policy_status
        return dict(status.values) if status is not None else {}

    def close(self) -> None:
        """Stop the policy (it holds the arm), then the twin, then the recorder."""
        for process in reversed(self.processes):
            process.stop()
        self.executor.shutdown(timeout_sec=1.0)
        rclpy.try_shutdown(context=self.context)
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.recorder is not None:
            self.recorder.destroy_node()


def load_card(model: Path, card_path: Optional[Path] = None):
    """Load the model's policy card the way policy_inference does (CPU is enough here)."""
    from vision_policy.card import CardError
    from vision_policy.runtime import load_policy, ModelError, RuntimeOptions
    try:
        _, card = load_policy(model, card_path, RuntimeOptions(('CPUExecutionProvider',)))
    except (CardError, ModelError) as err:
        raise DemoError(f'cannot use model {model}: {err}') from err
    return card


def run_demo(options: DemoOptions, echo: Callable[[str], None] = print) -> DemoReport:
    """Run the demo end to end and write its files; raises DemoError on failure."""
    model = Path(options.model).resolve() if options.model else bundled_model()
    card = load_card(model, options.card)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    env = demo_environment()
    echo(f'model {model} (card {options.card or "beside it"}: {card.name!r}, control_dt '
         f'{card.control_dt:g} s); twin camera fovy {options.camera_fovy or "of the model"}, '
         f'fov_matching {str(options.fov_matching).lower()}; '
         f'ROS_DOMAIN_ID {env["ROS_DOMAIN_ID"]}; logs in {out}')
    run = None
    try:
        run = Run(options, model, card.joint_names, env, echo)
        run.wait_ready()
        traces, wall = [], 0.0
        for k in range(options.episodes):
            trace, seconds = run.run_episode(k)
            traces.append(trace)
            wall += seconds
            final = trace.tasks[-1].distance if trace.tasks else float('nan')
            echo(f'episode {trace.episode} ({k + 1}/{options.episodes}): {len(trace.commands)} '
                 f'commands, final distance {final:.3f} m, {seconds:.1f} s wall')
        values = run.wait_final_diagnostics(traces[-1].end)
        if sum(len(t.commands) for t in traces) == 0:
            raise DemoError(f'no commands from policy_inference during the episodes '
                            f'({run.status()})')
    finally:
        if run is not None:
            run.close()
    names = ['report.txt', 'report.json', 'strip.png']
    if options.gif and write_gif(traces, out / 'episodes.gif') is not None:
        names.append('episodes.gif')
    names += ['mujoco_twin.log', 'policy_inference.log']
    report = build_report(
        traces, model=str(model), card_name=card.name, control_dt=card.control_dt,
        seed=options.seed, episode_seconds=options.episode_seconds, wall_seconds=wall,
        real_time_factor=options.real_time_factor, tolerance=options.tolerance,
        policy_values=values, image_size=(options.image_width, options.image_height),
        files=[str(out / n) for n in names])
    plot_strip(traces, report.results, card.joint_names, out / 'strip.png',
               frames_per_episode=options.frames, tolerance=options.tolerance,
               title=f'SIL demo: {card.name}'
               + (' (untrained example policy)' if report.untrained else ''))
    (out / 'report.txt').write_text(format_report(report))
    (out / 'report.json').write_text(json.dumps(report.to_dict(), indent=2) + '\n')
    return report


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(f'signal {signum}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo from the command line; returns the exit status."""
    options = parse_args(argv)
    # Ctrl-C and SIGTERM stop the nodes in order, even where SIGINT came in ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupted)

    def echo(text: str) -> None:
        print(f'[demo] {text}', file=sys.stderr, flush=True)
    try:
        report = run_demo(options, echo)
    except DemoError as err:
        print(f'mujoco_demo: error: {err}', file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted):
        print('mujoco_demo: interrupted; nodes stopped', file=sys.stderr)
        return 130
    print(format_report(report), end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
