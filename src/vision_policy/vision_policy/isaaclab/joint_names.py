"""
Isaac Lab's joint selection: regex lists and regex -> value dicts over articulation order.

Semantics follow ``isaaclab.utils.string.resolve_matching_names(_values)``:
every pattern is matched with ``re.fullmatch``; each joint may match at most
one pattern; every pattern must match at least one joint; the result is in
articulation order, or grouped by pattern order when ``preserve_order`` is set.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Sequence


class JointNameError(ValueError):
    """A joint pattern does not resolve; the message names the pattern and the joints."""


def _match(patterns: Sequence[str], names: Sequence[str], preserve_order: bool,
           what: str) -> list:
    """(joint name, pattern index) pairs in Isaac Lab order."""
    if isinstance(patterns, str):
        patterns = [patterns]
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise JointNameError(f'{what}: {pattern!r} is not a valid regex ({exc})') from None
    found = []
    for name in names:
        hits = [k for k, rx in enumerate(compiled) if rx.fullmatch(name)]
        if len(hits) > 1:
            raise JointNameError(f'{what}: joint {name!r} matches more than one pattern: '
                                 f'{[patterns[k] for k in hits]}')
        if hits:
            found.append((name, hits[0]))
    unmatched = [p for k, p in enumerate(patterns) if not any(h == k for _, h in found)]
    if unmatched:
        raise JointNameError(f'{what}: pattern(s) {unmatched} match none of the robot joints '
                             f'{list(names)}')
    if preserve_order:
        # Stable sort: joints of the first pattern first, each in articulation order.
        found.sort(key=lambda pair: pair[1])
    return found


def resolve_names(patterns: Optional[Sequence[str]], names: Sequence[str],
                  preserve_order: bool = False, what: str = 'joint_names') -> list:
    """Joint names selected by patterns (None = all joints), in Isaac Lab order."""
    if patterns is None:
        return list(names)
    return [name for name, _ in _match(patterns, names, preserve_order, what)]


def resolve_values(data: Mapping[str, Any], names: Sequence[str],
                   preserve_order: bool = False, what: str = 'values') -> dict:
    """{joint name: value} for a regex -> value dict; joints no pattern matches are absent."""
    if not isinstance(data, Mapping):
        raise JointNameError(f'{what}: expected a mapping of regex -> value, found {data!r}')
    keys = list(data)
    return {name: data[keys[k]] for name, k in _match(keys, names, preserve_order, what)}


def per_joint(value: Any, names: Sequence[str], default: Any, what: str) -> list:
    """Expand a float or a regex -> value dict to one value per joint (default if unmatched)."""
    if value is None:
        return [default] * len(names)
    if isinstance(value, Mapping):
        found = resolve_values(value, names, what=what)
        return [found.get(n, default) for n in names]
    return [value] * len(names)
