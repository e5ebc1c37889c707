"""The command line: ``tracekit HOST`` is short for ``tracekit trace HOST``.

The command line is built for each run (:func:`make_cli`) from the plugins that load: their
probe methods' options, their options and their commands. Plugins' modules are light to
import, so ``--help`` stays fast; tracing code (and scapy) is imported by the commands that
need it.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import click

from tracekit.errors import (
    EXIT_BAD_INPUT,
    EXIT_EXPECTATION_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_NOT_REACHED,
    EXIT_REACHED,
    BadInput,
    CannotProbe,
    Interrupted,
    TracekitError,
)

#: What the built-in plugins provide, for --help (which loads no plugin, to stay fast).
BUILTIN_PROBES = ("icmp", "udp", "tcp")
BUILTIN_FORMATS = ("text", "json", "jsonl", "atlas", "map", "junit", "markdown")
BUILTIN_SUFFIXES = (".txt", ".json", ".jsonl", ".atlas.json", ".html", ".xml", ".md")
#: Probes per second with several targets (tracekit.pacing.BULK_RATE, without importing it).
BULK_RATE = 100.0
#: The grammar of --expect, for --help (tracekit.expect.GRAMMAR, without importing it).
EXPECT_GRAMMAR = "reached, hops<=N, rtt<=Nms, loss<=P%, via=X, not-via=X or same-path"


class DefaultGroup(click.Group):
    """A group that runs its default command when the first argument names no command."""

    def __init__(self, *args: Any, default: str, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {})["ignore_unknown_options"] = True
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # 'tracekit' alone is 'tracekit trace' (it asks for a HOST), and 'tracekit -n HOST'
        # is 'tracekit trace -n HOST': named here, before the group's own parser sees the
        # trace's options (each one it does not know costs it a search for a close match).
        own = {opt for param in self.get_params(ctx) for opt in param.opts}
        if not args or (args[0] not in self.commands and args[0] not in own):
            args = [self.default, *args]
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text(
            f"Without a command, the arguments go to '{self.default}': "
            f"tracekit HOST is short for tracekit {self.default} HOST."
        )
        super().format_commands(ctx, formatter)


def _parse_wait(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    """``MAX[,HERE[,NEAR]]`` as in ``traceroute -w``."""
    from tracekit.strategies import Wait

    default = Wait()
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not MAX[,HERE[,NEAR]]") from None
    if not 1 <= len(numbers) <= 3 or numbers[0] <= 0 or any(n < 0 for n in numbers):
        raise click.BadParameter(f"{value!r}: MAX must be > 0, HERE and NEAR >= 0")
    here = numbers[1] if len(numbers) > 1 else default.here
    near = numbers[2] if len(numbers) > 2 else default.near
    return Wait(max=numbers[0], here=here, near=near)


def _parse_interval(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """Seconds between rounds; a name (the old ``-i IFACE``) points to ``-I``."""
    try:
        seconds = float(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a number of seconds: -i is the interval between rounds, "
            "as in mtr; for an interface use -I/--interface"
        ) from None
    if not 0.001 <= seconds <= 3600:
        raise click.BadParameter(f"{value!r}: between 0.001 and 3600 seconds")
    return seconds


def _parse_rules(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    """Every ``--expect RULE``, parsed before anything is sent."""
    if not value:
        return []
    from tracekit.expect import parse

    try:
        return [parse(text) for text in value]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


_plugin_option = click.option(
    "--plugin", "plugins", multiple=True, metavar="NAME",
    help="Load the plugin NAME (see 'tracekit plugins') even when "
    "TRACEKIT_DISABLE_PLUGIN_AUTOLOAD is set, and fail if it cannot be loaded; may be repeated.",
)  # fmt: skip


def _suffixes() -> str:
    """The built-in suffixes, those whose format is not plain from the suffix explained."""
    notes = {".html": " (the map)", ".xml": " (JUnit)", ".md": " (Markdown)"}
    return ", ".join(s + notes.get(s, "") for s in BUILTIN_SUFFIXES)


def trace_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of a trace, shared by ``trace`` and ``demo``."""
    options = [
        click.option("--probe", "probe", default="icmp", show_default=True, metavar="NAME",
                     help=f"Probe method: {', '.join(BUILTIN_PROBES)}, or one a plugin adds "
                     "(see 'tracekit plugins')."),
        click.option("-q", "--queries", type=click.IntRange(1, 10), default=3,
                     show_default=True, help="Probes per hop."),
        click.option("-f", "--first-ttl", type=click.IntRange(1, 255), default=1,
                     show_default=True, help="TTL of the first hop to probe."),
        click.option("-m", "--max-ttl", type=click.IntRange(1, 255), default=30,
                     show_default=True, help="Largest TTL to probe."),
        click.option("-w", "--wait", callback=_parse_wait, default="5,3,10", show_default=True,
                     metavar="MAX[,HERE[,NEAR]]",
                     help="Wait at most MAX seconds for an answer, but no more than HERE "
                     "times the round trip of an answer at the same hop, or NEAR times "
                     "that of a later hop."),
        click.option("-N", "--sim-queries", type=click.IntRange(1, 255), default=16,
                     show_default=True, help="Probes in flight at once."),
        click.option("-z", "--send-interval", type=click.FloatRange(0, 10), default=0.0,
                     metavar="SECONDS", help="Least time between probes."),
        click.option("--rate", type=click.FloatRange(0, min_open=True), metavar="PPS",
                     help=f"At most PPS probes a second, over all the targets, evenly "
                     f"spread (default: no cap for one target, {BULK_RATE:g} for several)."),
        click.option("--parallel", type=click.IntRange(1, 10000), metavar="N",
                     help="Several targets: trace N at once (default: a quarter of the "
                     "rate, 16 to 1000)."),
        click.option("-n", "--numeric", is_flag=True, help="Show addresses only; no names."),
        click.option("-4", "ip_version", flag_value=4, help="Use IPv4."),
        click.option("-6", "ip_version", flag_value=6, help="Use IPv6."),
        click.option("-I", "--interface", metavar="NAME", help="Send from this interface "
                     "(as mtr -I; traceroute's -i)."),
        click.option("--mda", is_flag=True, help="Multipath discovery: every load-balanced "
                     "interface at each hop and the links between them (udp by default; "
                     "tcp, icmp Paris)."),
        click.option("--confidence", type=click.Choice(["95", "99"]), default="95",
                     show_default=True, help="--mda: how sure to be that no interface or "
                     "link of the trace was missed, in percent."),
        click.option("--unprivileged", "sockets", flag_value="unprivileged",
                     help="Trace without raw sockets (ping, UDP and TCP sockets); the "
                     "default when raw sockets are refused."),
        click.option("--raw", "sockets", flag_value="raw",
                     help="Raw sockets only: fail rather than trace without privilege."),
        click.option("-s", "--source", metavar="ADDR",
                     help="Send from this address (one of this host's)."),
        click.option("-c", "--cycles", type=click.IntRange(0), metavar="N",
                     help="Continuous mode: run N rounds of one probe per hop, with "
                     "statistics (0: until Ctrl-C), as mtr -c."),
        click.option("-i", "--interval", default="1", show_default=True, metavar="SECONDS",
                     callback=_parse_interval,
                     help="Continuous mode: seconds between the starts of rounds."),
        click.option("-r", "--report", is_flag=True, help="Continuous mode: no live view; "
                     "print an mtr-style report at the end (as mtr -r). Implies -c 10 "
                     "unless -c is given."),
        click.option("--format", "stdout_format", default="text", show_default=True,
                     metavar="NAME", help=f"Format on standard output: "
                     f"{', '.join(BUILTIN_FORMATS)}, one a plugin adds (see 'tracekit "
                     "plugins'), or none for nothing."),
        click.option("--out", "out_paths", multiple=True, type=click.Path(dir_okay=False),
                     metavar="FILE", help="Also write to FILE, in the format its suffix "
                     f"names: {_suffixes()}, or one a plugin adds; "
                     "may be repeated."),
        click.option("--junit", "junit_paths", multiple=True, type=click.Path(dir_okay=False),
                     metavar="FILE", help="Also write a JUnit XML report to FILE, whatever its "
                     "suffix (one testcase per --expect rule); may be repeated."),
        click.option("--expect", "rules", multiple=True, metavar="RULE", callback=_parse_rules,
                     help=f"Check the trace once it is over: {EXPECT_GRAMMAR} (see docs/ci.md); "
                     "exit status 5 if a rule fails; may be repeated."),
        click.option("--baseline", type=click.Path(dir_okay=False), metavar="FILE.json",
                     help="A previous JSON report, for --expect same-path."),
        _plugin_option,
    ]  # fmt: skip
    for option in reversed(options):
        f = option(f)
    return f


@click.group(cls=DefaultGroup, default="trace")
@click.version_option(package_name="tracekit", prog_name="tracekit")
def cli() -> None:
    """tracekit: a plugin-based, multi-protocol traceroute.

    Exit codes: 0 destination reached (every one, for several targets), 1 not reached
    (some not), 2 bad input, 3 cannot probe (privilege, route, interface), 4 internal error,
    5 an --expect rule failed, 130 interrupted, 128+N ended by signal N.
    """


def _check_ttls(options: dict[str, Any]) -> None:
    if options["first_ttl"] > options["max_ttl"]:
        raise click.BadParameter("must not exceed --max-ttl", param_hint="'-f/--first-ttl'")


class TraceCommand(click.Command):
    """``trace``, with the options that plugins and probe methods add (see :func:`make_cli`)."""

    #: Names of the options that probe methods declared (``ProbeContext.options``)...
    probe_options: tuple[str, ...] = ()
    #: ... and of those that plugins added (``trace.settings``).
    plugin_options: tuple[str, ...] = ()


@cli.command(cls=TraceCommand)
@click.argument("hosts", nargs=-1, metavar="HOST...")
@click.option(
    "--targets",
    "targets_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    metavar="FILE",
    help="Also trace the targets in FILE: one a line, '#' comments, "
    "'-' for standard input (see docs/bulk.md).",
)
@click.option(
    "--shard",
    metavar="K/N",
    help="Trace only part K of N (1 <= K <= N) of the "
    "targets, chosen by a hash of each target: run N of these to share a list.",
)
@trace_options
def trace(
    hosts: tuple[str, ...], targets_file: str | None, shard: str | None, **options: Any
) -> int:
    """Trace the route to HOST (a name or an IPv4/IPv6 address), or to several, at once.

    With several targets (more than one HOST, --targets or --shard) each trace is written
    whole when it is finished: --format json writes one array, jsonl one report a line.
    Exit codes then: 0 every target reached, 1 some not (or failed).
    """
    from tracekit.targets import parse_shard

    probe_options, settings = _plugin_values(options)
    several = len(hosts) != 1 or targets_file is not None or shard is not None
    if not hosts and targets_file is None:
        raise click.UsageError("Missing argument 'HOST'.", click.get_current_context())
    shard_of = parse_shard(shard) if shard is not None else None
    from tracekit.session import TraceRequest, run_trace
    from tracekit.strategies.classic import Schedule

    _check_ttls(options)
    baseline = None
    if options["rules"] or options["baseline"] is not None:
        from tracekit.expect import prepare  # a heavy import: with --expect only

        baseline = prepare(options["rules"], options["baseline"])
    cycles = options["cycles"]
    if options["report"] and cycles is None:
        cycles = 10  # mtr -r's default count
    schedule = Schedule(
        first_ttl=options["first_ttl"],
        max_ttl=options["max_ttl"],
        queries=options["queries"],
        wait=options["wait"],
        window=options["sim_queries"],
        send_interval=options["send_interval"],
    )
    stdout_format = options["stdout_format"]
    mda = None
    if options["mda"]:
        if cycles is not None:
            raise click.UsageError("--mda is one pass: it does not go with -c or -r")
        mda = int(options["confidence"]) / 100
        source = click.get_current_context().get_parameter_source("probe")
        if source is click.core.ParameterSource.DEFAULT:
            options["probe"] = "udp"  # varies its flows through the destination port
        if options["probe"] in ("udp", "icmp"):
            probe_options["paris"] = True  # one flow per flow id: the flows are the point
    request = TraceRequest(
        target=hosts[0] if hosts else "",
        probe=options["probe"],
        ip_version=options["ip_version"],
        schedule=schedule,
        cycles=cycles,
        interval=options["interval"],
        report=options["report"],
        rate=options["rate"],
        parallel=options["parallel"],
        sockets=options["sockets"] or "auto",
        mda=mda,
        numeric=options["numeric"],
        interface=options["interface"],
        source=options["source"],
        stdout_format=None if stdout_format == "none" else stdout_format,
        out_paths=[Path(p) for p in options["out_paths"]],
        format_paths=[("junit", Path(p)) for p in options["junit_paths"]],
        rules=options["rules"],
        baseline=baseline,
        settings=settings,
        probe_options=probe_options,
    )
    pm = _plugin_manager(options["plugins"])
    try:
        if several:
            return _trace_several(pm, request, hosts, targets_file, shard_of)
        trace = run_trace(pm, request)
    except KeyboardInterrupt:
        # The outputs have had their say; click would add an empty line for the "^C".
        raise Interrupted("interrupted") from None
    if trace.expectations and not all(e.passed for e in trace.expectations):
        return EXIT_EXPECTATION_FAILED
    return EXIT_REACHED if trace.reached else EXIT_NOT_REACHED


def _trace_several(
    pm: Any,
    request: Any,
    hosts: tuple[str, ...],
    targets_file: str | None,
    shard: tuple[int, int] | None,
) -> int:
    """Several targets, many at once: 0 if every one was reached, else 1."""
    from contextlib import ExitStack

    from tracekit.progress import Bar, is_terminal
    from tracekit.session import run_targets
    from tracekit.targets import count_targets, in_shard, open_targets, parse_lines

    with ExitStack() as stack:
        sources: list[Any] = [hosts]
        if targets_file is not None:
            sources.append(parse_lines(stack.enter_context(open_targets(targets_file))))
        targets = in_shard((t for source in sources for t in source), shard)
        if not is_terminal(sys.stderr):
            summary = run_targets(pm, request, targets)
        else:  # a terminal: a progress bar, with what goes to the terminal printed above it
            bar = stack.enter_context(Bar(sys.stderr, count_targets(hosts, targets_file, shard)))
            stdout = bar.stream(sys.stdout) if is_terminal(sys.stdout) else sys.stdout
            summary = run_targets(pm, request, targets, stdout, bar.stream(sys.stderr), bar)
    return EXIT_REACHED if summary.reached == summary.targets else EXIT_NOT_REACHED


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")  # fmt: skip
@_plugin_option
def plugins(fmt: str, plugins: tuple[str, ...]) -> int:
    """List the loaded plugins: distribution, version, hooks, what they provide."""
    from tracekit.plugins import describe_plugins

    described = describe_plugins(_plugin_manager(plugins))
    if fmt == "json":
        click.echo(json.dumps(described, indent=2))
        return 0
    for plugin in described:
        dist = f"{plugin['distribution']} {plugin['version']}" if plugin["distribution"] else "-"
        click.echo(f"{plugin['name']}  ({dist})")
        for probe in plugin["probes"]:
            click.echo(f"    probe: {probe['name']}: {probe['description']}")
        for output in plugin["outputs"]:
            suffixes = f" ({', '.join(output['suffixes'])})" if output["suffixes"] else ""
            click.echo(f"    output: {output['name']}{suffixes}: {output['description']}")
        click.echo(f"    hooks: {', '.join(plugin['hooks'])}")
    return 0


class DemoCommand(click.Command):
    """``demo``, whose help also lists the options of ``trace`` that it passes on."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        records = [
            record
            for param in _trace_command(ctx).get_params(ctx)
            if param.name != "help" and (record := param.get_help_record(ctx)) is not None
        ]
        with formatter.section("Trace options (passed on to 'tracekit trace')"):
            formatter.write_dl(records)


@cli.command(
    cls=DemoCommand,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.option(
    "--routers",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Routers between client and server.",
)
@click.option("--silent", type=click.IntRange(0, 20), metavar="K",
              help="Which router drops its ICMP errors (0: none).  [default: 2; 0 with one "
              "router]")  # fmt: skip
@click.pass_context
def demo(ctx: click.Context, routers: int, silent: int | None) -> int:
    """Trace a throwaway network of namespaces on this machine (needs root, no internet).

    Builds a client, a chain of routers (one of them silent) and a server, runs an ordinary
    'tracekit trace' from the client to the server with the other options given (any option
    of 'tracekit trace'), and removes the network again.
    """
    if silent is None:
        silent = 2 if routers >= 2 else 0
    if silent > routers:
        raise click.BadParameter(f"there are only {routers} routers", param_hint="'--silent'")
    # Every check the trace would make before sending, made before anything is built.
    command = _trace_command(ctx)
    options = command.make_context("trace", ["server", *ctx.args], parent=ctx.parent).params
    _check_ttls(options)
    from tracekit.demo import demo_databases, run_demo

    pm = _plugin_manager(options["plugins"])
    _check_demo_trace(pm, command, options, routers)
    geo = ("geoip_db", "asn_db", "no_geo")
    chosen = not pm.has_plugin("geoip") or any(options.get(name) for name in geo)
    extra = [] if chosen else demo_databases(routers)
    code: int = run_demo(
        routers=routers,
        silent=silent,
        ip_version=options["ip_version"] or 4,
        trace_args=[*ctx.args, *extra],
    )
    return code


def _check_demo_trace(
    pm: Any, command: TraceCommand, options: dict[str, Any], routers: int
) -> None:
    """What ``tracekit trace`` checks before it sends, for the trace the demo will run."""
    from tracekit.expect import prepare
    from tracekit.plugins import Registry
    from tracekit.testing.netlab import Lab

    prepare(options["rules"], options["baseline"])
    registry = Registry.collect(pm)
    probe = registry.probe(options["probe"])
    for path in options["out_paths"]:
        registry.output_for_path(path)
    if options["junit_paths"]:
        registry.output("junit")
    if options["stdout_format"] != "none":
        registry.output(options["stdout_format"])
    used = getattr(probe.factory, "options", None)  # a ProbeMethod class says which it uses
    if isinstance(used, tuple | frozenset):
        from tracekit.probes import option_names

        taken = option_names(used)
        for name in command.probe_options:
            if options[name] not in (None, False) and name not in taken:
                option = "--" + name.replace("_", "-")
                raise BadInput(f"{option} does not apply to {options['probe']} probes")
    wanted = routers != 3 or options.get("geoip_db") or options.get("asn_db")
    if pm.has_plugin("geoip") and not options.get("no_geo") and wanted:
        from tracekit.enrich.geoip import SETTING, find_database, open_database

        for kind, setting in SETTING.items():
            path = find_database(kind, options.get(setting))
            if path is not None:
                open_database(path, kind).close()
    interface = options["interface"]
    if interface is not None:
        names = ["lo", *(link.peer("client") for link in Lab(routers=routers).links_of("client"))]
        if interface not in names:
            raise CannotProbe(
                f"no such interface in the demo's client: {interface} (it has {', '.join(names)})"
            )


@cli.command()
def schema() -> int:
    """Print the JSON Schema of the JSON report ('--format json', '--out FILE.json')."""
    from importlib.resources import files

    click.echo((files("tracekit") / "trace.schema.json").read_text(encoding="utf-8"), nl=False)
    return 0


def make_cli(pm: Any) -> click.Group:
    """The command line with what the loaded plugins add: the options of their probe methods
    (``ProbeMethod.options``), their options (``tracekit_add_options``) and their commands
    (``tracekit_register_commands``). A new group each time: nothing global is changed."""
    from tracekit.isolation import warn
    from tracekit.plugins import Registry

    group = copy.copy(cli)
    group.commands = dict(cli.commands)
    command = copy.copy(trace)
    assert isinstance(command, TraceCommand)
    command.params = list(trace.params)
    group.commands["trace"] = command
    taken = {flag for param in command.params for flag in param.opts + param.secondary_opts}
    names = {param.name for param in command.params}

    def add(option: click.Option, owner: str, after: str) -> bool:
        """Add ``option`` after the last option added after ``after`` (a parameter name),
        so that the help keeps probe options by ``--probe`` and plugins' by ``--format``."""
        clash = [flag for flag in option.opts + option.secondary_opts if flag in taken]
        if clash or option.name in names:
            what = ", ".join(clash) or repr(option.name)
            warn(f"option {what} of {owner} ignored: another option has it")
            return False
        taken.update(option.opts + option.secondary_opts)
        names.add(option.name)
        where = [param.name for param in command.params].index(after) + 1
        where += placed.get(after, 0)
        placed[after] = placed.get(after, 0) + 1
        command.params.insert(where, option)
        return True

    placed: dict[str, int] = {}

    declared: dict[str, tuple[Any, list[str]]] = {}
    for entry in Registry.collect(pm).probes.values():
        for spec in getattr(entry.factory, "options", ()):
            if not isinstance(spec, str):
                declared.setdefault(spec.name, (spec, []))[1].append(entry.name)
    probe_names = []
    usual = ("port", "paris", "source_port", "packet_size", "tos")  # traceroute's order
    order = sorted(declared, key=lambda n: (usual.index(n) if n in usual else len(usual), n))
    for name in order:
        spec, methods = declared[name]
        if add(_probe_option(spec, methods), f"probe {', '.join(methods)}", "probe"):
            probe_names.append(name)
    command.probe_options = tuple(probe_names)

    plugin_names: list[str] = []
    for impl in pm.hook.tracekit_add_options.get_hookimpls():

        def adder(*flags: str, _plugin: str = impl.plugin_name, **attributes: Any) -> None:
            option = click.Option(list(flags), **attributes)
            if add(option, f"plugin {_plugin!r}", "report") and option.name:
                plugin_names.append(option.name)

        impl.function(**{name: adder for name in impl.argnames})
    command.plugin_options = tuple(plugin_names)

    before = dict(group.commands)
    pm.hook.tracekit_register_commands(cli=group)
    for name, original in before.items():
        if group.commands.get(name) is not original:
            warn(f"command {name!r} of a plugin ignored: tracekit has one")
            group.commands[name] = original
    return group


def _probe_option(spec: Any, methods: list[str]) -> click.Option:
    """A probe method's :class:`~tracekit.probes.ProbeOption` as a click option."""
    help = f"{spec.help} [probes: {', '.join(sorted(methods))}]"
    if spec.is_flag:
        return click.Option([*spec.flags, spec.name], is_flag=True, help=help)
    kind: Any = click.STRING
    if spec.type is int:
        bounded = spec.minimum is not None or spec.maximum is not None
        kind = click.IntRange(spec.minimum, spec.maximum) if bounded else click.INT
    return click.Option([*spec.flags, spec.name], type=kind, metavar=spec.metavar, help=help)


def _trace_command(ctx: click.Context) -> TraceCommand:
    """The ``trace`` command of the command line ``ctx`` belongs to."""
    command = ctx.find_root().command
    found = command.commands["trace"] if isinstance(command, click.Group) else trace
    assert isinstance(found, TraceCommand)
    return found


def _plugin_values(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Take out of ``options`` the values of the probe methods' options and the plugins'."""
    command = _trace_command(click.get_current_context())
    probe_options = {name: options.pop(name) for name in command.probe_options}
    settings = {name: options.pop(name) for name in command.plugin_options}
    return probe_options, settings


def _plugin_manager(plugins: Sequence[str]) -> Any:
    """The plugin manager the command line was built with (``main``), or a new one."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().obj is not None:
        return ctx.find_root().obj
    from tracekit.plugins import get_plugin_manager

    return get_plugin_manager(plugins=plugins)


def _requested_plugins(args: Sequence[str]) -> list[str]:
    """Every ``--plugin NAME`` (``--plugin=NAME``) in ``args``: they decide which plugins
    load, and so which options and commands exist, before the command line is parsed."""
    found = []
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--plugin" and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith("--plugin="):
            found.append(arg.partition("=")[2])
    return found


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C stops what runs; more, while outputs are finished, are ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI and turn every failure into one line and an exit code."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        pm = _plugin_manager(_requested_plugins(args))
        code = make_cli(pm).main(args=args, prog_name="tracekit", standalone_mode=False, obj=pm)
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        _fail(f"{exc.format_message()}{hint}", EXIT_BAD_INPUT)
    except TracekitError as exc:
        _fail(str(exc), exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (e.g. '| head'): nothing left to say, and nothing to flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_NOT_REACHED)
    except Exception as exc:
        if os.environ.get("TRACEKIT_DEBUG"):
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (TRACEKIT_DEBUG=1 shows the traceback)",
            EXIT_INTERNAL,
        )
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"tracekit: {message}", err=True)
    sys.exit(code)
