"""Tests of the app's command line and its config checks (no Isaac Sim needed)."""
from pathlib import Path

from isaac_sim_bridge.app import AppArgs, load_config_file, main, parse_args
from isaac_sim_bridge.graph_spec import BridgeConfigError
import pytest

CONFIG_FILE = Path(__file__).resolve().parent.parent / 'config' / 'isaac_sim_bridge.yaml'


def test_parse_required_and_defaults():
    args = parse_args(['--usd', '/data/robot.usd', '--config', 'bridge.yaml'])
    assert args == AppArgs(usd_path=Path('/data/robot.usd'), config_path=Path('bridge.yaml'),
                           headless=False, max_steps=0)


def test_parse_headless_and_max_steps():
    args = parse_args(['--usd', 'r.usd', '--config', 'c.yaml', '--headless',
                       '--max-steps', '200'])
    assert args.headless is True
    assert args.max_steps == 200


@pytest.mark.parametrize('argv', [
    ['--config', 'c.yaml'],
    ['--usd', 'r.usd'],
    ['--usd', 'r.usd', '--config', 'c.yaml', '--max-steps', '-1'],
    ['--usd', 'r.usd', '--config', 'c.yaml', '--max-steps', 'ten'],
])
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert 'usage:' in capsys.readouterr().err


def test_load_shipped_config():
    config = load_config_file(CONFIG_FILE)
    assert (config.camera.width, config.camera.height) == (640, 480)
    assert config.physics_dt == pytest.approx(0.005)
    assert config.camera.depth is False and config.tf.enabled is False


def test_config_error_names_file_and_key(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(CONFIG_FILE.read_text().replace('width: 640', 'width: -640'))
    with pytest.raises(BridgeConfigError) as err:
        load_config_file(bad)
    assert str(bad) in str(err.value) and 'camera.width' in str(err.value)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(BridgeConfigError, match='cannot read'):
        load_config_file(tmp_path / 'missing.yaml')
    broken = tmp_path / 'broken.yaml'
    broken.write_text('camera: [640, 480\n')
    with pytest.raises(BridgeConfigError, match='not valid YAML'):
        load_config_file(broken)


def test_main_fails_fast_before_starting_isaac_sim(tmp_path, capsys):
    # Neither check needs Isaac Sim: main returns before importing it.
    assert main(['--usd', str(tmp_path / 'none.usd'), '--config', str(CONFIG_FILE)]) == 2
    assert 'USD stage not found' in capsys.readouterr().err
    usd = tmp_path / 'robot.usd'
    usd.write_text('#usda 1.0\n')
    assert main(['--usd', str(usd), '--config', str(tmp_path / 'none.yaml')]) == 2
    assert 'cannot read bridge config' in capsys.readouterr().err
