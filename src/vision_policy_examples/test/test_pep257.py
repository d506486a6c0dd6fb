"""Run ament_pep257 on this package."""
import pytest


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    # Skip (not error) where pydocstyle is absent; see test_flake8.py.
    main = pytest.importorskip('ament_pep257.main', reason='ament_pep257 / pydocstyle missing')
    rc = main.main(argv=['.', 'test'])
    assert rc == 0, 'Found code style errors / warnings'
