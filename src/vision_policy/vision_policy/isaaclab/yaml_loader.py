"""
A safe YAML loader for Isaac Lab's dumped configs (params/env.yaml, params/agent.yaml).

Isaac Lab dumps its config classes with two Python tags: ``!!python/tuple``
and ``!!python/object/apply:builtins.slice``. This loader is ``yaml.SafeLoader``
extended for exactly those two; any other Python tag (``!!python/object/apply:
os.system`` ...) is refused by the safe loader's own rule, never executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class IsaacLabFileError(ValueError):
    """An Isaac Lab run file cannot be read; the message names the file and the cause."""


class IsaacLabLoader(yaml.SafeLoader):
    """SafeLoader plus Isaac Lab's tuple and slice tags, and nothing else."""


def _tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple:
    return tuple(loader.construct_sequence(node, deep=True))


def _slice(loader: yaml.SafeLoader, node: yaml.Node) -> slice:
    args = loader.construct_sequence(node, deep=True)
    if len(args) not in (1, 2, 3) or not all(a is None or isinstance(a, int) for a in args):
        raise yaml.constructor.ConstructorError(
            None, None, f'builtins.slice expects 1 to 3 integers or nulls, found {args!r}',
            node.start_mark)
    return slice(*args)


IsaacLabLoader.add_constructor('tag:yaml.org,2002:python/tuple', _tuple)
IsaacLabLoader.add_constructor('tag:yaml.org,2002:python/object/apply:builtins.slice', _slice)


def load_text(text: str, where: str) -> Any:
    """Parse Isaac Lab YAML text; IsaacLabFileError names where on failure."""
    try:
        return yaml.load(text, Loader=IsaacLabLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise IsaacLabFileError(f'{where}: cannot read as Isaac Lab YAML ({exc})') from None


def load_file(path: str | Path) -> Any:
    """Read and parse an Isaac Lab YAML file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise IsaacLabFileError(f'{path}: cannot read ({exc.strerror})') from None
    return load_text(text, str(path))
