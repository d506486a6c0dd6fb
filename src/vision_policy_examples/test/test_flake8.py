"""Run ament_flake8 on this package, as `ament_python` packages do."""
from pathlib import Path

import pytest


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8(tmp_path):
    # Skip (not error) where flake8 is absent, so the other tests still run; the CI
    # image installs ament_flake8 with its plugins, and there it runs.
    main = pytest.importorskip('ament_flake8.main', reason='ament_flake8 / flake8 missing')
    # ament's settings with jobs = 1: flake8's worker pool forks, and a fork after earlier
    # tests in this process started rclpy's DDS threads can crash and hang the pool.
    ament_ini = Path(main.__file__).parent / 'configuration' / 'ament_flake8.ini'
    config = tmp_path / 'flake8.ini'
    config.write_text(ament_ini.read_text() + '\njobs = 1\n')
    rc, errors = main.main_with_errors(argv=['--config', str(config)])
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)
