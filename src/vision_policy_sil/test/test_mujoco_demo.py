"""
The SIL demo command itself, in a short mode: two 2-second episodes at 160x120.

Runs ``python3 -m vision_policy_sil.mujoco_demo`` as a user would (real subprocesses,
real MuJoCo rendering, real onnxruntime, its own ROS domain) and checks that its report
holds plausible figures and that its files exist.
"""
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest
from vision_policy_sil.demo_report import build_report, EXAMPLE_CARD_NAME, format_report
from vision_policy_sil.demo_report import score_episode
from vision_policy_sil.sil_recorder import Command, EpisodeTrace, TaskSample

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _pythonpath() -> str:
    """Make the demo importable from the sources when the package is not installed."""
    src = PACKAGE_ROOT.parent
    paths = [str(src / name) for name in ('vision_policy_sil', 'vision_policy', 'mujoco_twin')]
    return os.pathsep.join(paths + [os.environ.get('PYTHONPATH', '')])


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """Run the demo once; returns (completed process, output folder)."""
    out = tmp_path_factory.mktemp('demo')
    env = dict(os.environ, PYTHONPATH=_pythonpath(), ROS_DOMAIN_ID=str(90 + os.getpid() % 10))
    env.setdefault('MUJOCO_GL', 'egl')
    argv = [sys.executable, '-m', 'vision_policy_sil.mujoco_demo', '--episodes', '2',
            '--episode-seconds', '2', '--image-width', '160', '--image-height', '120',
            '--out', str(out), '--startup-timeout', '60']
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    log = out / 'mujoco_twin.log'
    if done.returncode != 0 and log.exists() and 'RenderError' in log.read_text(
            errors='replace'):
        pytest.skip('no offscreen rendering for the twin here')
    assert done.returncode == 0, f'demo failed ({done.returncode}):\n{done.stderr[-3000:]}'
    return done, out


def test_demo_report_figures(demo):
    done, out = demo
    report = json.loads((out / 'report.json').read_text())
    assert report['episodes'] == 2 and len(report['results']) == 2
    # The bundled model is the untrained example until a trained one replaces it.
    assert report['untrained'] == (report['card_name'] == EXAMPLE_CARD_NAME)
    assert ('untrained example policy' in report['success_label']) == report['untrained']
    assert report['sim_seconds'] == pytest.approx(4.0, abs=0.1)
    assert report['wall_seconds'] > 0 and report['real_time_factor_achieved'] > 0.2
    # Control rate in simulation time: within 50 % of 1 / control_dt = 20 Hz.
    assert report['expected_control_rate_hz'] == pytest.approx(20.0)
    assert 10.0 <= report['control_rate_hz'] <= 30.0, report['control_rate_hz']
    for key in ('latency', 'latency_recorder'):
        p50, p99 = report[key]['p50_ms'], report[key]['p99_ms']
        assert 0.0 < p50 < 1000.0, (key, p50)
        assert p50 <= p99 < 5000.0, (key, p99)
    for e in report['results']:
        assert e['sim_seconds'] == pytest.approx(2.0, abs=0.05)
        assert 0.0 <= e['min_distance'] <= e['final_distance'] < 2.0
        assert e['success'] == (e['final_distance'] < report['success_tolerance_m'])
        assert 10.0 <= e['control_rate_hz'] <= 30.0
    assert report['results'][0]['target'] != report['results'][1]['target']
    assert report['policy_counters']['commands'] >= report['commands'] > 0
    assert report['success_rate'] == sum(e['success'] for e in report['results']) / 2


def test_demo_files_and_printed_report(demo):
    done, out = demo
    for name in ('report.json', 'report.txt', 'strip.png', 'mujoco_twin.log',
                 'policy_inference.log'):
        assert (out / name).is_file(), name
    png = (out / 'strip.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000
    gif = out / 'episodes.gif'
    if gif.exists():
        assert gif.read_bytes()[:6] in (b'GIF87a', b'GIF89a')
    text = (out / 'report.txt').read_text()
    assert done.stdout == text
    for words in ('episodes       2 x 2 s', 'control rate', 'latency', 'success rate'):
        assert words in text, words
    report = json.loads((out / 'report.json').read_text())
    assert ('untrained example policy' in text) == report['untrained']


def test_demo_bad_arguments_exit_2():
    done = subprocess.run(
        [sys.executable, '-m', 'vision_policy_sil.mujoco_demo', '--episodes', '0'],
        env=dict(os.environ, PYTHONPATH=_pythonpath()), capture_output=True, text=True,
        timeout=60)
    assert done.returncode == 2
    assert '--episodes: 0, expected >= 1' in done.stderr


def test_demo_camera_options_reach_the_twin_and_the_node():
    from vision_policy_sil.mujoco_demo import parse_args, policy_command, twin_command
    options = parse_args(['--card', 'camera.yaml', '--camera-fovy', '70', '--no-fov-matching'])
    assert twin_command(options)[-2:] == ['-p', 'camera_fovy:=70.0']
    argv = policy_command(Path('m.onnx'), options.card, options.fov_matching)
    assert 'fov_matching:=false' in argv
    assert argv[-2:] == ['-p', f'card_path:={Path("camera.yaml").resolve()}']
    defaults = parse_args([])
    argv = policy_command(Path('m.onnx'), defaults.card, defaults.fov_matching)
    assert 'fov_matching:=true' in argv and not any('card_path' in a for a in argv)
    assert twin_command(defaults)[-1] == 'camera_fovy:=0.0'
    with pytest.raises(SystemExit):
        parse_args(['--camera-fovy', '180'])


def test_demo_bad_model_fails_with_message(tmp_path):
    bad = tmp_path / 'broken.onnx'
    bad.write_bytes(b'not a model')
    done = subprocess.run(
        [sys.executable, '-m', 'vision_policy_sil.mujoco_demo', '--model', str(bad),
         '--out', str(tmp_path / 'out')],
        env=dict(os.environ, PYTHONPATH=_pythonpath()), capture_output=True, text=True,
        timeout=60)
    assert done.returncode == 1
    assert 'mujoco_demo: error: cannot use model' in done.stderr and str(bad) in done.stderr


def test_demo_dead_node_fails_with_message(tmp_path):
    # 1000 Hz is more than the twin's 1 / sim_dt = 500 Hz: it refuses to start (exit 2).
    done = subprocess.run(
        [sys.executable, '-m', 'vision_policy_sil.mujoco_demo', '--camera-rate', '1000',
         '--out', str(tmp_path)],
        env=dict(os.environ, PYTHONPATH=_pythonpath(), ROS_DOMAIN_ID=str(
            90 + (os.getpid() + 1) % 10)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert 'mujoco_demo: error: mujoco_twin exited with code 2' in done.stderr
    assert 'camera_rate' in done.stderr  # the twin's own message, from its log


def _trace(distances, commands=40, start=10.0, seconds=2.0):
    tasks = tuple(TaskSample(start + k * seconds / (len(distances) - 1), 3, (0.3, 0.0, 0.2),
                             (0.0, 0.0, 0.0), d) for k, d in enumerate(distances))
    cmds = tuple(Command(start + k * seconds / commands, (0.0, 0.3, -0.6), 0.01 * (k + 1))
                 for k in range(commands))
    return EpisodeTrace(3, start, start + seconds, (), (), cmds, tasks)


def test_score_uses_the_final_distance_and_the_tolerance():
    result = score_episode(_trace([0.30, 0.04, 0.06]), tolerance=0.05)
    assert result.final_distance == 0.06 and result.min_distance == 0.04
    assert not result.success  # passing close by is not a success, ending there is
    assert score_episode(_trace([0.30, 0.04, 0.06]), tolerance=0.07).success
    assert result.control_rate_hz == pytest.approx(20.0) and result.commands == 40


def test_report_figures_and_untrained_label():
    values = {'latency_ms_p50': '12.5', 'latency_ms_p99': '40.0', 'holds': '0',
              'commands': '90', 'inference_ms_p50': '0.7'}
    traces = [_trace([0.3, 0.2]), _trace([0.2, 0.01], commands=30, start=20.0)]
    common = {'model': 'm.onnx', 'control_dt': 0.05, 'seed': 0, 'episode_seconds': 2.0,
              'wall_seconds': 8.0, 'real_time_factor': 1.0, 'tolerance': 0.05,
              'policy_values': values, 'image_size': (160, 120), 'files': ['report.txt']}
    report = build_report(traces, card_name=EXAMPLE_CARD_NAME, **common)
    assert report.untrained and report.success_rate == 0.5
    assert report.sim_seconds == pytest.approx(4.0)
    assert report.real_time_factor_achieved == pytest.approx(0.5)
    assert report.control_rate_hz == pytest.approx(70 / 4.0)
    assert (report.latency.p50_ms, report.latency.p99_ms) == (12.5, 40.0)
    # recorder latencies: 10, 20, ... ms per command
    assert report.latency_recorder.p50_ms == pytest.approx(175.0, abs=10.0)
    assert report.policy_counters == {'holds': 0, 'commands': 90}
    assert 'untrained example policy' in format_report(report)
    trained = build_report(traces, card_name='reach_arm_trained', **common)
    assert not trained.untrained and 'untrained' not in format_report(trained)
    assert trained.to_dict()['success_label'] == 'trained policy'
