"""The Isaac Lab YAML loader: exactly the tuple and slice tags, nothing unsafe."""

import pytest

from vision_policy.isaaclab.yaml_loader import IsaacLabFileError, load_file, load_text


def test_tuple_and_slice_tags():
    data = load_text('a: !!python/tuple [1, 2.5]\n'
                     'ids: !!python/object/apply:builtins.slice [null, null, null]\n'
                     'part: !!python/object/apply:builtins.slice [1, 5, 2]\n', 'x')
    assert data['a'] == (1, 2.5)
    assert data['ids'] == slice(None, None, None)
    assert data['part'] == slice(1, 5, 2)


@pytest.mark.parametrize('text', [
    "x: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
    "x: !!python/object/new:subprocess.Popen [['true']]\n",
    'x: !!python/name:os.system\n',
    "x: !!python/object/apply:builtins.eval ['1+1']\n",
])
def test_other_python_tags_refused(text, tmp_path):
    with pytest.raises(IsaacLabFileError, match='env.yaml: cannot read'):
        load_text(text, 'env.yaml')


def test_bad_slice_and_missing_file(tmp_path):
    with pytest.raises(IsaacLabFileError, match='slice'):
        load_text("s: !!python/object/apply:builtins.slice ['a']\n", 'f')
    with pytest.raises(IsaacLabFileError, match='cannot read'):
        load_file(tmp_path / 'nope.yaml')
