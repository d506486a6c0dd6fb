"""
One registry of observation terms, action terms and sources, found through Python entry points.

Built-in terms and a user's own are registered the same way: an entry point in
one of the groups below whose value is a definition object (``ObservationTerm``,
``ActionTerm`` or ``sources.Source``)::

    [options.entry_points]            # or setup(entry_points={...})
    vision_policy.observation_terms =
        gait_phase = my_pkg.terms:GAIT_PHASE

Code is loaded only from installed entry points and from modules the operator
names (the node's ``plugin_modules`` parameter; each such module lists its
definitions in ``VISION_POLICY_PLUGINS``), never because a card names a term.
A plugin that cannot be loaded does not break cards that do not use it: its
failure is kept and reported, naming the plugin, when a card asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import importlib
from importlib import metadata
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from .card import CardError

OBSERVATION_GROUP = 'vision_policy.observation_terms'
ACTION_GROUP = 'vision_policy.action_terms'
SOURCE_GROUP = 'vision_policy.sources'
GROUPS = (OBSERVATION_GROUP, ACTION_GROUP, SOURCE_GROUP)
# The module attribute a module named in plugin_modules lists its definitions in.
MODULE_ATTRIBUTE = 'VISION_POLICY_PLUGINS'
BUILTIN_DISTRIBUTION = 'vision_policy'


class PluginError(CardError):
    """A plugin cannot be loaded or breaks its contract; the message names the plugin."""


@dataclass(frozen=True)
class WidthContext:
    """What a term's width may depend on: the card's joints, action and image sizes."""

    joint_names: tuple
    action_width: int
    image_size: int = 0   # values of the first (most cards: the only) camera's image
    image_sizes: Mapping = field(default_factory=dict)  # camera name -> values


def joints_width(ctx: WidthContext, params: Mapping) -> int:
    """Width of a per-joint term: params['joint_names'] if given, else every card joint."""
    names = params.get('joint_names')
    return len(ctx.joint_names) if names is None else len(names)


@dataclass(frozen=True)
class ObservationTerm:
    """
    An observation term, as Isaac Lab's managers see one: a function filling its slice.

    ``make(card, params)`` runs once at configure and returns an
    ``observation.Term`` (its shape, or None for a flat one of the declared
    width, and ``compute(sample, out)``). ``width`` is
    the number of values per step, a number or ``width(ctx, params)``;
    configure fails when ``make`` disagrees with it. ``needs`` names the
    sources the term reads (``sample.extras`` keys come from them), so the node
    subscribes only to what a card uses. ``isaaclab_funcs`` lists the Isaac Lab
    ``module:function`` paths the term implements (the importer maps them);
    ``isaaclab_commands`` the command classes (``module:Class``) whose
    ``generated_commands`` it implements. ``import_params(isaaclab_params,
    env) -> card params`` translates the Isaac Lab term's params for the card.
    """

    name: str
    make: Callable[..., Any]
    width: Union[int, Callable[[WidthContext, Mapping], int]]
    needs: tuple = ()
    isaaclab_funcs: tuple = ()
    isaaclab_commands: tuple = ()
    import_params: Optional[Callable[[Mapping, Mapping], dict]] = None
    doc: str = ''

    def width_for(self, ctx: WidthContext, params: Mapping) -> int:
        """Values per step for these card params."""
        return int(self.width) if isinstance(self.width, int) else int(self.width(ctx, params))


@dataclass(frozen=True)
class ActionTerm:
    """
    An action term: its slice of the network output -> targets for its joints.

    ``make(card, spec)`` runs once at configure with the card's
    ``ActionTermSpec`` and returns an ``action.MappedTerm``. ``width(spec)``
    is how many raw values it consumes (0 for a term that holds its joints).
    ``isaaclab_classes`` lists the Isaac Lab action classes (``module:Class``)
    it implements; ``import_spec(cfg, joints, defaults) -> card term`` writes
    its card entry from the Isaac Lab action cfg.
    """

    name: str
    make: Callable[..., Any]
    width: Callable[[Any], int]
    isaaclab_classes: tuple = ()
    import_spec: Optional[Callable[..., dict]] = None
    doc: str = ''


@dataclass(frozen=True)
class Registry:
    """Every known term and source by name, where each came from, and what failed to load."""

    observation_terms: Mapping[str, ObservationTerm]
    action_terms: Mapping[str, ActionTerm]
    sources: Mapping[str, Any]
    origins: Mapping[tuple, str] = field(default_factory=dict)   # (group, name) -> origin
    broken: Mapping[tuple, str] = field(default_factory=dict)    # (group, name) -> reason
    builtin: frozenset = frozenset()    # (group, name) registered by vision_policy itself

    def observation_term(self, name: str, where: str = 'observation term') -> ObservationTerm:
        """Return the observation term called name, or raise PluginError saying why not."""
        return self._get(OBSERVATION_GROUP, self.observation_terms, name, where)

    def action_term(self, name: str, where: str = 'action term') -> ActionTerm:
        """Return the action term called name, or raise PluginError saying why not."""
        return self._get(ACTION_GROUP, self.action_terms, name, where)

    def source(self, name: str, where: str = 'source') -> Any:
        """Return the source called name, or raise PluginError saying why not."""
        return self._get(SOURCE_GROUP, self.sources, name, where)

    def is_builtin(self, group: str, name: str) -> bool:
        """Tell whether vision_policy's own distribution registered this name."""
        return (group, name) in self.builtin

    def origin(self, group: str, name: str) -> str:
        """Where a definition came from ('entry point x = m:a (dist 1.0)', 'module m')."""
        return self.origins.get((group, name), 'unknown origin')

    def _get(self, group: str, table: Mapping, name: str, where: str) -> Any:
        if name in table:
            return table[name]
        if (group, name) in self.broken:
            raise PluginError(f'{where}: {name!r} is registered but its plugin failed to load: '
                              f'{self.broken[(group, name)]}')
        raise PluginError(f'{where}: unknown {group.rsplit(".", 1)[1][:-1].replace("_", " ")} '
                          f'{name!r}; known: {sorted(table)}. To add it, install a package '
                          f'with an entry point in group {group!r} named {name!r}, or list '
                          f'the module that defines it in the node parameter plugin_modules')

    def by_isaaclab_func(self, path: str) -> Optional[ObservationTerm]:
        """Return the observation term implementing Isaac Lab function 'module:func'."""
        return _first_claiming(self.observation_terms.values(), 'isaaclab_funcs', path)

    def by_isaaclab_command(self, path: str) -> Optional[ObservationTerm]:
        """Return the term implementing generated_commands of command class 'module:C'."""
        return _first_claiming(self.observation_terms.values(), 'isaaclab_commands', path)

    def by_isaaclab_action(self, path: str) -> Optional[ActionTerm]:
        """Return the action term implementing Isaac Lab action class 'module:Class'."""
        return _first_claiming(self.action_terms.values(), 'isaaclab_classes', path)


def _first_claiming(defs: Iterable, attribute: str, path: str) -> Any:
    want = normalise_path(path)
    for d in sorted(defs, key=lambda d: d.name):
        if any(normalise_path(p) == want for p in getattr(d, attribute)):
            return d
    return None


def normalise_path(path: str) -> str:
    """'pkg.mod:name' and 'pkg.mod.name' are the same Isaac Lab path."""
    return str(path).replace(':', '.')


def _kind_of(obj: Any) -> Optional[str]:
    if isinstance(obj, ObservationTerm):
        return OBSERVATION_GROUP
    if isinstance(obj, ActionTerm):
        return ACTION_GROUP
    from .sources import Source   # late: sources.py reads observation terms' needs
    if isinstance(obj, Source):
        return SOURCE_GROUP
    return None


def _check_definition(obj: Any, group: str) -> Optional[str]:
    """Reason the object is not a usable definition for group, or None."""
    kind = _kind_of(obj)
    if kind != group:
        expected = {OBSERVATION_GROUP: 'vision_policy.registry.ObservationTerm',
                    ACTION_GROUP: 'vision_policy.registry.ActionTerm',
                    SOURCE_GROUP: 'vision_policy.sources.Source'}[group]
        return f'expected a {expected}, found {type(obj).__name__}'
    if not isinstance(obj.name, str) or not obj.name:
        return f'the definition has no name ({obj.name!r})'
    if group == OBSERVATION_GROUP:
        if not callable(obj.make):
            return 'make is not callable'
        if not (isinstance(obj.width, int) and obj.width >= 0) and not callable(obj.width):
            return f'width must be an int >= 0 or a function, found {obj.width!r}'
        if not all(isinstance(n, str) for n in obj.needs):
            return f'needs must name sources, found {obj.needs!r}'
    if group == ACTION_GROUP and not (callable(obj.make) and callable(obj.width)):
        return 'make and width must be callable'
    return None


class _Builder:
    """Collects definitions from entry points and modules, keeping the first of each name."""

    def __init__(self):
        self.tables = {g: {} for g in GROUPS}
        self.origins = {}
        self.broken = {}
        self.builtin = set()

    def add(self, group: str, name: str, obj: Any, origin: str) -> None:
        key = (group, name)
        reason = _check_definition(obj, group)
        if reason is None and obj.name != name:
            reason = f'the entry point is named {name!r} but the definition is {obj.name!r}'
        if reason is None and key in self.origins and self.tables[group].get(name) is not obj:
            reason = f'a second definition of {name!r} (the first: {self.origins[key]})'
        if reason is not None:
            # A name defined twice, or badly, is unusable until the operator resolves it.
            self.tables[group].pop(name, None)
            self.broken[key] = f'{origin}: {reason}'
        elif key not in self.broken:
            self.tables[group][name] = obj
            self.origins[key] = origin

    def add_entry_point(self, group: str, ep: metadata.EntryPoint) -> None:
        dist = getattr(ep, 'dist', None)
        origin = f'entry point {ep.name} = {ep.value} in group {group}' + (
            f' (distribution {dist.name} {dist.version})' if dist is not None else '')
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: B902 (a plugin's import may raise anything)
            self.broken.setdefault((group, ep.name), f'{origin}: loading it raised '
                                                     f'{type(exc).__name__}: {exc}')
            return
        self.add(group, ep.name, obj, origin)
        if dist is not None and dist.name == BUILTIN_DISTRIBUTION:
            self.builtin.add((group, ep.name))

    def add_module(self, module_name: str) -> None:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: B902 (the operator's module may raise anything)
            raise PluginError(f'plugin_modules: importing {module_name!r} raised '
                              f'{type(exc).__name__}: {exc}') from None
        defs = getattr(module, MODULE_ATTRIBUTE, None)
        if not isinstance(defs, (list, tuple)):
            raise PluginError(f'plugin_modules: module {module_name!r} has no list '
                              f'{MODULE_ATTRIBUTE} of definitions')
        for obj in defs:
            group = _kind_of(obj)
            if group is None:
                raise PluginError(f'plugin_modules: {module_name}.{MODULE_ATTRIBUTE} holds a '
                                  f'{type(obj).__name__}, expected ObservationTerm, '
                                  f'ActionTerm or Source')
            self.add(group, getattr(obj, 'name', ''), obj, f'module {module_name}')

    def registry(self) -> Registry:
        return Registry(*(MappingProxyType(dict(self.tables[g])) for g in GROUPS),
                        origins=MappingProxyType(dict(self.origins)),
                        broken=MappingProxyType(dict(self.broken)),
                        builtin=frozenset(self.builtin))


def _entry_points(group: str) -> list:
    """Entry points of a group, once per (name, value) (a dev install may list a dist twice)."""
    seen, out = set(), []
    for ep in metadata.entry_points(group=group):
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            out.append(ep)
    return out


def load_registry(plugin_modules: Sequence[str] = ()) -> Registry:
    """
    Build the registry from installed entry points, then the operator's plugin modules.

    Raises PluginError when a listed module cannot be imported or lists no
    definitions (the operator asked for it by name); a broken entry point is
    kept in ``Registry.broken`` and reported only when a card uses its name.
    """
    builder = _Builder()
    for group in GROUPS:
        for ep in _entry_points(group):
            builder.add_entry_point(group, ep)
    for module_name in plugin_modules:
        builder.add_module(module_name)
    return builder.registry()
