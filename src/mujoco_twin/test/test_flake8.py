"""Run ament_flake8 on this package, as `ament_python` packages do."""
import pytest


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    # Skip (not error) where flake8 or its plugins are absent, so the other tests still run;
    # the CI image installs ament_flake8 with its plugins, and there it runs.
    main = pytest.importorskip('ament_flake8.main', reason='ament_flake8 / flake8 missing')
    rc, errors = main.main_with_errors(argv=[])
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)
