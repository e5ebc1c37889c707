"""The hooks of tracekit: the public API for plugins.

Each hook is called by name with keyword arguments; an implementation asks only for the
arguments it needs. Implement one with :data:`tracekit.hookimpl`::

    from tracekit import hookimpl

    @hookimpl
    def tracekit_hop_completed(trace, hop):
        ...

An implementation that raises is reported in one warning line naming its plugin and is not
called again in that run; the trace, the other plugins and the outputs go on. Raise
:class:`tracekit.errors.BadInput` from ``tracekit_configure`` to refuse a setting instead.

A plugin keeps what it needs for one trace in ``trace.stash``
(:class:`tracekit.stash.Stash`), under a key of its own
(``KEY = tracekit.stash.StashKey[MyState]()``), never in module globals: one process may
run many traces, one after another or at the same time. What a plugin starts in
``tracekit_trace_started`` (threads, open files) it ends in ``tracekit_trace_finished``,
which is called even when the trace is interrupted or fails.

The hooks called for every answer, hop or round (``tracekit_probe_answered``,
``tracekit_enrich_hop``, ``tracekit_hop_completed``, ``tracekit_round_completed``) are
looked up once, when a run starts, and then called directly, without pluggy's dispatch
on every packet: a plugin is registered through its entry point before the run, not
during it.

Argument names are part of the API: they are never renamed or removed, only added.
``HOOKSPEC_VERSION`` rises when a hook or an argument is added.

A trace calls the hooks in this order::

    tracekit_add_options / tracekit_register_commands      (when the command line is built)
    tracekit_register_probes / tracekit_register_outputs   (once, to choose the plugins)
    tracekit_configure                (before anything is sent)
    tracekit_trace_started
        tracekit_probe_answered       (for every answer, as it arrives)
      one-shot trace:
        tracekit_enrich_hop           (once per hop, when it is complete)
        tracekit_hop_completed        (then, once per hop, in TTL order)
      continuous mode (-c):
        tracekit_enrich_hop           (when a hop has a host not enriched before)
        tracekit_round_completed      (once per round, in order)
    tracekit_trace_finished

Version 3 added ``tracekit_add_options`` and ``tracekit_register_commands``, which the
command line calls when it is built (``tracekit --help`` included). Version 2 added
``tracekit_round_completed`` and continuous mode; ``ProbeMethod.build``'s
second argument became ``flow`` (it was ``attempt``, which nothing used).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # for the annotations alone: the command line imports this module
    import click

    from tracekit.events import Round
    from tracekit.model import Hop, ProbeResult, Trace
    from tracekit.outputs import Output, OutputTarget
    from tracekit.probes import ProbeContext, ProbeMethod

#: The ``register`` callback of :func:`tracekit_register_probes`:
#: ``register(name, factory, description)``.
RegisterProbe = Callable[[str, Callable[["ProbeContext"], "ProbeMethod"], str], None]
#: The ``register`` callback of :func:`tracekit_register_outputs`:
#: ``register(name, factory, description, suffixes)``.
RegisterOutput = Callable[[str, Callable[["OutputTarget"], "Output"], str, Iterable[str]], None]

#: The ``add`` callback of :func:`tracekit_add_options`: ``add(*flags, **attributes)``, as
#: ``click.option`` takes them.
AddOption = Callable[..., None]

#: Version of this hook API.
HOOKSPEC_VERSION = 3

hookspec = pluggy.HookspecMarker("tracekit")


@hookspec
def tracekit_register_probes(register: RegisterProbe) -> None:
    """Register probe methods.

    Call ``register(name, factory, description)`` once per method. ``name`` is what users
    pass to ``--probe``. ``factory(context)`` gets a :class:`tracekit.probes.ProbeContext`
    and returns a :class:`tracekit.probes.ProbeMethod`; it is called once per trace, so it may
    import heavy modules lazily. ``description`` is one line for ``tracekit plugins``.
    """


@hookspec
def tracekit_register_outputs(register: RegisterOutput) -> None:
    """Register output formats.

    Call ``register(name, factory, description, suffixes)`` once per format. ``name`` is what
    users pass to ``--format``; ``suffixes`` (like ``[".json"]``) choose the format for
    ``--out FILE``. ``factory(target)`` gets a :class:`tracekit.outputs.OutputTarget` and
    returns a :class:`tracekit.outputs.Output`.
    """


@hookspec
def tracekit_add_options(add: AddOption) -> None:
    """Add options to ``tracekit trace`` (and so to ``tracekit demo``). Since version 3.

    Call ``add(*flags, **attributes)`` as you would ``click.option``, e.g.
    ``add("--origin", metavar="LAT,LON", callback=parse, help="...")``. The value is in
    ``settings`` (:func:`tracekit_configure`) and in ``trace.settings``, under the option's
    name (``origin``; ``--no-geo`` gives ``no_geo``). Name options after your plugin where
    they could clash; an option whose name is taken already is ignored with a warning.

    Called whenever the command line is built, ``--help`` included: do not import anything
    heavy here (a callback may, when it runs). A plugin that is not loaded (autoloading off
    and not named with ``--plugin``, or blocked with ``--plugin no:NAME``) adds nothing.
    """


@hookspec
def tracekit_register_commands(cli: click.Group) -> None:
    """Add subcommands to ``tracekit``: ``cli`` is the ``click.Group`` of the command line
    (``@cli.command()``, or ``cli.add_command(command)``). Since version 3.

    As for :func:`tracekit_add_options`, this runs for ``--help`` too: keep the imports of
    the commands' work inside them. A command name that is taken already is refused with a
    warning.
    """


@hookspec
def tracekit_configure(settings: dict[str, Any]) -> None:
    """Check the user's settings before anything is sent (see
    :attr:`tracekit.model.Trace.settings`).

    Raise :class:`tracekit.errors.BadInput` with a one-line message for a setting that
    cannot work (a database file that is not one, say): tracekit then stops with exit
    status 2. Open files here that the trace will need.
    """


@hookspec
def tracekit_trace_started(trace: Trace) -> None:
    """A trace is about to send its first probe.

    ``trace`` has its target, address, source, probe and ``started`` set; ``hops`` is empty.
    """


@hookspec
def tracekit_probe_answered(trace: Trace, ttl: int, result: ProbeResult) -> None:
    """A probe sent with ``ttl`` was answered (``result.address`` is set).

    Called as answers arrive, in any order, from the probing loop: return quickly. Use it to
    start slow work early (a name lookup) that :func:`tracekit_enrich_hop` later collects.
    """


@hookspec
def tracekit_enrich_hop(trace: Trace, hop: Hop) -> None:
    """Annotate a complete hop before any output sees it.

    Set ``hop.hosts[address].name``, ``.location`` (:class:`tracekit.model.Location`) or
    ``.asn`` (:class:`tracekit.model.AutonomousSystem`), or add JSON-serialisable values to
    ``hop.hosts[address].annotations``; add what the data's licence asks for to
    ``trace.credits``. Called once per hop, in TTL order; do not block for
    long. In continuous mode it is called again whenever a hop gains a host: leave hosts
    alone that are annotated already.
    """


@hookspec
def tracekit_hop_completed(trace: Trace, hop: Hop) -> None:
    """``hop`` and all hops before it are complete and enriched; it is the last in
    ``trace.hops``."""


@hookspec
def tracekit_round_completed(trace: Trace, round: Round) -> None:
    """Continuous mode: every probe of ``round`` is answered or given up.

    ``round.results`` holds ``(ttl, result)`` for each probe of the round; ``trace.hops``
    holds every hop so far with its statistics (``hop.stats``, ``host.stats``) and
    ``trace.rounds`` the number of rounds complete. Rounds come in order. Since version 2.
    """


@hookspec
def tracekit_trace_finished(trace: Trace) -> None:
    """The trace is over; ``reached``, ``end`` and ``finished`` are set."""
