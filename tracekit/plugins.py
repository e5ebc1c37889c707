"""The plugin manager: loads plugins from the ``tracekit`` entry-point group.

Built-in plugins are entry points of the ``tracekit`` distribution itself, found exactly as
third-party ones are. A plugin that fails to load is reported in one line and skipped.
``TRACEKIT_DISABLE_PLUGIN_AUTOLOAD=1`` loads only the built-ins, and the plugins named with
``--plugin NAME``.
"""

from __future__ import annotations

import functools
import inspect
import os
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from tracekit import hookspecs
from tracekit.entrypoints import Distribution, EntryPoint, entry_points
from tracekit.errors import BadInput, TracekitError
from tracekit.isolation import Isolated, one_line, warn

ENTRY_POINT_GROUP = "tracekit"
DISABLE_AUTOLOAD = "TRACEKIT_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_DISTRIBUTION = "tracekit"
#: ``--plugin no:NAME`` does not load the plugin NAME, a built-in one included (as pytest's
#: ``-p no:NAME``).
BLOCK = "no:"


def _marked(pm: pluggy.PluginManager, plugin: object) -> dict[str, Any]:
    """The hook implementations of ``plugin`` (marked ``@hookimpl``), with their options.

    pluggy would look at every attribute the slow way (``inspect.getattr_static``), a
    module's imports included: this is on the way to every ``--help``."""
    marker = f"{ENTRY_POINT_GROUP}_impl"
    found = {}
    for attribute in dir(plugin):
        value = getattr(plugin, attribute, None)
        if callable(value) and hasattr(value, marker):
            opts = pm.parse_hookimpl_opts(plugin, attribute)
            if opts is not None:
                found[attribute] = opts
    return found


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hooks ``plugin`` implements that no spec declares (a misspelling, usually)."""
    return sorted(
        caller.name
        for caller in pm.get_hookcallers(plugin) or []
        if caller.spec is None
        and not any(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin)
    )


def _unknown_arguments(
    pm: pluggy.PluginManager, plugin: object, marked: dict[str, Any]
) -> list[str]:
    """Arguments that ``plugin``'s hook implementations (``marked``: :func:`_marked`) ask
    for and their hook does not have.

    pluggy refuses such a plugin too, in a message of several lines; this says it in one.
    """
    problems = []
    for attribute in marked:
        caller = getattr(pm.hook, attribute, None)
        if caller is None or caller.spec is None:
            continue  # not a hook: _unknown_hooks reports it
        parameters = inspect.signature(getattr(plugin, attribute)).parameters.values()
        asked = [p.name for p in parameters if p.default is p.empty and p.name != "self"]
        unknown = [name for name in asked if name not in caller.spec.argnames]
        if unknown:
            problems.append(
                f"{attribute} has no argument {', '.join(map(repr, unknown))} "
                f"(it has {', '.join(caller.spec.argnames)})"
            )
    return problems


def _is_builtin(ep: EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.key == BUILTIN_DISTRIBUTION


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering which distribution each plugin came from."""

    def __init__(self) -> None:
        super().__init__(ENTRY_POINT_GROUP)
        self.add_hookspecs(hookspecs)
        #: plugin name -> the distribution that installed it (its metadata is read only
        #: when asked for, as by ``tracekit plugins``: a trace does not pay for it)
        self.distributions: dict[str, Distribution] = {}

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        # pluggy asks for every attribute of a plugin, its thirty-odd dunders included, the
        # slow way (inspect.getattr_static): no hook's name begins with an underscore.
        if name.startswith("_"):
            return None
        return super().parse_hookimpl_opts(plugin, name)


def get_plugin_manager(autoload: bool | None = None, plugins: Iterable[str] = ()) -> PluginManager:
    """A new plugin manager with the installed plugins loaded.

    ``autoload=False`` (or ``TRACEKIT_DISABLE_PLUGIN_AUTOLOAD=1``) loads only the built-ins and
    the entry points named in ``plugins`` (``--plugin NAME``); ``no:NAME`` in ``plugins``
    loads no plugin NAME, not even a built-in one. A plugin that fails to load is
    skipped with a warning, unless it is named in ``plugins``: then, as for a name that is no
    entry point, :class:`~tracekit.errors.BadInput` is raised.
    """
    if autoload is None:
        autoload = not os.environ.get(DISABLE_AUTOLOAD)
    blocked = {name[3:] for name in plugins if name.startswith(BLOCK)}
    requested = {name for name in plugins if not name.startswith(BLOCK)}
    available = entry_points(ENTRY_POINT_GROUP)
    names = {ep.name for ep in available}
    for name in sorted(requested | blocked):
        if name not in names:
            raise BadInput(_unknown("plugin", name, names))
    pm = PluginManager()
    for ep in available:
        if ep.name in blocked or pm.has_plugin(ep.name):
            continue
        if not (autoload or _is_builtin(ep) or ep.name in requested):
            continue
        problem = _load(pm, ep)
        if problem is None:
            continue
        if ep.name in requested:
            raise BadInput(problem)
        warn(problem)
    return pm


def _load(pm: PluginManager, ep: EntryPoint) -> str | None:
    """Load and register one entry point; what went wrong, in one line, or ``None``."""
    try:
        plugin = ep.load()
    except Exception as exc:  # a broken plugin must not break tracekit
        return f"plugin {ep.name!r} ({ep.value}) failed to load: {one_line(exc)}"
    marked = _marked(pm, plugin)
    problems = _unknown_arguments(pm, plugin, marked)
    if problems:
        return f"plugin {ep.name!r} not loaded: {'; '.join(problems)}"
    plugin = _isolated(ep.name, plugin, marked)
    try:
        pm.register(plugin, name=ep.name)
    except Exception as exc:
        return f"plugin {ep.name!r} not loaded: {one_line(exc)}"
    unknown = _unknown_hooks(pm, plugin)
    if unknown:
        pm.unregister(plugin)
        return f"plugin {ep.name!r} not loaded: unknown hook {', '.join(unknown)}"
    if ep.dist is not None:
        pm.distributions[ep.name] = ep.dist
    return None


def _isolated(name: str, plugin: object, marked: dict[str, Any]) -> object:
    """``plugin`` with each hook implementation (``marked``: :func:`_marked`) made to fail
    alone.

    An implementation that raises is reported in one warning line naming the plugin, and is
    not called again in this run; the other plugins, the trace and the outputs go on.
    :class:`~tracekit.errors.TracekitError` (a setting refused in ``tracekit_configure``...)
    is meant for the user and passes through.
    """
    hooks = {}
    for attribute, opts in marked.items():
        function = getattr(plugin, attribute)
        wrapper = opts.get("wrapper") or opts.get("hookwrapper")  # generators: left as they are
        hooks[attribute] = function if wrapper else _guarded(name, attribute, function)
    return types.SimpleNamespace(**hooks)


def notifier(caller: pluggy.HookCaller) -> Callable[..., None]:
    """Call a hook that returns nothing, for the per-packet path: its implementations as
    they are registered now, called in pluggy's order with the arguments each takes, but
    without pluggy's machinery on every call (a few microseconds). Where a wrapper is among
    them, pluggy's own call."""
    impls = caller.get_hookimpls()
    if any(impl.hookwrapper or impl.wrapper for impl in impls):
        return caller
    calls = [(impl.function, impl.argnames) for impl in reversed(impls)]

    def notify(**kwargs: Any) -> None:
        for function, names in calls:
            function(*[kwargs[name] for name in names])

    return notify


def _guarded(plugin: str, hook: str, function: Callable[..., Any]) -> Callable[..., Any]:
    isolated = Isolated(
        f"plugin {plugin!r} failed in {hook} and is skipped there from now on",
        passes=lambda exc: isinstance(exc, TracekitError),
    )

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        return isolated.call(function, *args, **kwargs)

    return call


@dataclass(frozen=True)
class ProbeEntry:
    """A registered probe method."""

    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str


@dataclass(frozen=True)
class OutputEntry:
    """A registered output format."""

    name: str
    factory: Callable[..., Any]
    description: str
    suffixes: tuple[str, ...]
    plugin: str


@dataclass
class Registry:
    """The probe methods and output formats that the loaded plugins offer."""

    probes: dict[str, ProbeEntry] = field(default_factory=dict)
    outputs: dict[str, OutputEntry] = field(default_factory=dict)

    @classmethod
    def collect(cls, pm: pluggy.PluginManager) -> Registry:
        """Ask every plugin what it offers, remembering which plugin offered what."""
        registry = cls()
        for impl in pm.hook.tracekit_register_probes.get_hookimpls():
            _call(impl, functools.partial(registry._add_probe, impl.plugin_name))
        for impl in pm.hook.tracekit_register_outputs.get_hookimpls():
            _call(impl, functools.partial(registry._add_output, impl.plugin_name))
        return registry

    def _add_probe(
        self, plugin: str, name: str, factory: Callable[..., Any], description: str = ""
    ) -> None:
        if _unique("probe", name, plugin, self.probes):
            self.probes[name] = ProbeEntry(name, factory, description, plugin)

    def _add_output(
        self,
        plugin: str,
        name: str,
        factory: Callable[..., Any],
        description: str = "",
        suffixes: Iterable[str] = (),
    ) -> None:
        if _unique("format", name, plugin, self.outputs):
            self.outputs[name] = OutputEntry(name, factory, description, tuple(suffixes), plugin)

    def probe(self, name: str) -> ProbeEntry:
        """The probe method called ``name``, or a one-line error listing the choices."""
        try:
            return self.probes[name]
        except KeyError:
            raise BadInput(_unknown("probe", name, self.probes)) from None

    def output(self, name: str) -> OutputEntry:
        """The output format called ``name``, or a one-line error listing the choices."""
        try:
            return self.outputs[name]
        except KeyError:
            raise BadInput(_unknown("format", name, self.outputs)) from None

    def output_for_path(self, path: str) -> OutputEntry:
        """The output format whose suffix ``path`` ends with."""
        lowered = path.lower()
        matches = [
            (len(suffix), entry)
            for entry in self.outputs.values()
            for suffix in entry.suffixes
            if lowered.endswith(suffix.lower())
        ]
        if matches:  # the longest suffix wins: x.atlas.json is atlas, not json
            return max(matches, key=lambda match: match[0])[1]
        known = sorted(s for e in self.outputs.values() for s in e.suffixes)
        raise BadInput(f"no output format for {path!r}: use one of the suffixes {', '.join(known)}")


def _unique(kind: str, name: str, plugin: str, known: dict[str, Any]) -> bool:
    """False (with a warning) if ``name`` is taken already: the first registration wins."""
    if name not in known:
        return True
    warn(f"{kind} {name!r} of plugin {plugin!r} ignored: plugin {known[name].plugin!r} has it")
    return False


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    return f"unknown {kind} {name!r}; available: {', '.join(sorted(known))}"


def _call(impl: pluggy.HookImpl, register: Callable[..., None]) -> None:
    """Call one register hook (its failure is the plugin's alone: see :func:`_isolated`)."""
    impl.function(**{arg: register for arg in impl.argnames})


def describe_plugins(pm: PluginManager) -> list[dict[str, Any]]:
    """Each loaded plugin: name, distribution, version, hooks, and what it provides: probe
    methods (name, description) and output formats (name, description, file suffixes)."""
    registry = Registry.collect(pm)
    described = []
    for name, plugin in sorted(pm.list_name_plugin()):
        dist = pm.distributions.get(name)
        callers = pm.get_hookcallers(plugin) or []
        described.append(
            {
                "name": name,
                "distribution": dist.name if dist else None,
                "version": dist.version if dist else None,
                "hooks": sorted(caller.name for caller in callers),
                "probes": [
                    {"name": p.name, "description": p.description}
                    for p in sorted(registry.probes.values(), key=lambda p: p.name)
                    if p.plugin == name
                ],
                "outputs": [
                    {"name": o.name, "description": o.description, "suffixes": list(o.suffixes)}
                    for o in sorted(registry.outputs.values(), key=lambda o: o.name)
                    if o.plugin == name
                ],
            }
        )
    return described
