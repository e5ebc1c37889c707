"""One trace from start to end: resolve, open sockets, probe, enrich, and feed the outputs.

Data flows one way: request -> engine -> probe method -> answers -> hops -> enrichment
(hooks) -> outputs.
"""

from __future__ import annotations

import functools
import gc
import io
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tracekit.datagram import DatagramTransport
from tracekit.driver import Transport, drain, drive
from tracekit.engine import Engine
from tracekit.errors import BadInput, CannotProbe, NoPrivilege, TracekitError
from tracekit.events import Event, HopCompleted, ProbeAnswered, RoundCompleted, TraceFinished
from tracekit.fleet import Fleet
from tracekit.isolation import Isolated
from tracekit.model import Hop, ProbeInfo, Trace
from tracekit.outputs import Output, OutputTarget
from tracekit.pacing import BULK_RATE, Rate
from tracekit.packets import skip_scapy_routes
from tracekit.plugins import PluginManager, Registry, notifier
from tracekit.probes import ProbeContext, ProbeMethod, option_names
from tracekit.resolve import resolve, source_for
from tracekit.sockets import SHARED_RCVBUF, RawTransport, privilege_hint, raw_sockets_allowed
from tracekit.strategies.classic import Classic, Schedule
from tracekit.strategies.multipath import Multipath
from tracekit.strategies.rounds import Rounds

if TYPE_CHECKING:
    from tracekit.expect import Baseline, Rule
    from tracekit.progress import Bar
    from tracekit.strategies import Strategy


@dataclass
class TraceRequest:
    """Everything the user asked for."""

    target: str
    probe: str = "icmp"
    ip_version: int | None = None
    schedule: Schedule = field(default_factory=Schedule)
    #: Continuous mode: rounds to run (0: until interrupted); ``None`` for one pass.
    cycles: int | None = None
    #: Seconds between the starts of rounds, in continuous mode.
    interval: float = 1.0
    #: Continuous mode: print a report at the end instead of a live view.
    report: bool = False
    #: ``--rate``: at most this many probes a second, across every target; ``None``: no cap
    #: for one target, :data:`tracekit.pacing.BULK_RATE` for several.
    rate: float | None = None
    #: Several targets: traces in flight at once (``--parallel``); ``None``: from the rate
    #: (:func:`parallel_traces`).
    parallel: int | None = None
    #: Multipath discovery (``--mda``): the confidence (0.95, 0.99); ``None``: off.
    mda: float | None = None
    #: ``"auto"`` (raw sockets where allowed, else unprivileged ones), ``"raw"`` or
    #: ``"unprivileged"`` (``--raw``, ``--unprivileged``).
    sockets: str = "auto"
    numeric: bool = False
    interface: str | None = None
    #: ``-s``: the source address, one of this host's (``None``: the kernel's choice).
    source: str | None = None
    #: Method-specific options (see :class:`tracekit.probes.ProbeContext`).
    probe_options: dict[str, Any] = field(default_factory=dict)
    #: Options for enrichment and output plugins (see :attr:`tracekit.model.Trace.settings`).
    settings: dict[str, Any] = field(default_factory=dict)
    #: The format written to standard output, or ``None`` for nothing.
    stdout_format: str | None = "text"
    #: Files to write; the format is chosen by each file's suffix.
    out_paths: list[Path] = field(default_factory=list)
    #: Files to write in a named format, whatever their suffix (``--junit FILE``).
    format_paths: list[tuple[str, Path]] = field(default_factory=list)
    #: ``--expect`` rules, judged once the trace is over (:mod:`tracekit.expect`).
    rules: list[Rule] = field(default_factory=list)
    #: ``--baseline``: the previous trace that ``same-path`` compares with.
    baseline: Baseline | None = None


class _Sink:
    """One output of the trace. An output that fails is dropped with a warning
    (:class:`tracekit.isolation.Isolated`); the trace and the other outputs go on."""

    def __init__(self, name: str, output: Output, path: Path | None) -> None:
        self.name = name
        self.output = output
        self.where = str(path) if path else "standard output"
        self._isolated = Isolated(
            f"output {name!r} ({self.where}) failed",
            # its reader went away ('| head'): tracekit ends quietly
            ends=lambda exc: isinstance(exc, BrokenPipeError) and path is None,
        )

    @property
    def failed(self) -> bool:
        return self._isolated.failed

    def call(self, method: str, *args: Any) -> None:
        self._isolated.call(getattr(self.output, method), *args)


def _open_outputs(
    request: TraceRequest, registry: Registry, stack: ExitStack, stdout: TextIO
) -> list[_Sink]:
    chosen: list[tuple[Any, TextIO, Path | None]] = []
    if request.stdout_format:
        chosen.append((registry.output(request.stdout_format), stdout, None))
    entries = [(registry.output_for_path(str(path)), path) for path in request.out_paths]
    entries += [(registry.output(name), path) for name, path in request.format_paths]
    for entry, path in entries:
        try:
            stream = stack.enter_context(path.open("w", encoding="utf-8"))
        except OSError as exc:
            raise BadInput(f"cannot write {path}: {exc.strerror}") from exc
        chosen.append((entry, stream, path))
    return [
        _Sink(entry.name, entry.factory(OutputTarget(stream, path, request.numeric)), path)
        for entry, stream, path in chosen
    ]


@dataclass
class _Setup:
    """What every trace of a run shares: the plugins' registry, the probe, the settings."""

    registry: Registry
    probe_entry: Any
    settings: dict[str, Any]
    #: The cap on probes per second that every trace of the run shares.
    rate: Rate | None = None
    #: The hooks called per answer and per hop, made once a run (:meth:`hooks`).
    _hooks: _Hooks | None = None

    def hooks(self, pm: PluginManager) -> _Hooks:
        """The hooks every trace calls per answer and per hop, as direct calls
        (:func:`tracekit.plugins.notifier`): made once for the run's traces, whose plugins
        are the same."""
        if self._hooks is None:
            self._hooks = _Hooks(
                notifier(pm.hook.tracekit_probe_answered),
                notifier(pm.hook.tracekit_enrich_hop),
                notifier(pm.hook.tracekit_hop_completed),
                notifier(pm.hook.tracekit_round_completed),
            )
        return self._hooks


@dataclass(frozen=True)
class _Hooks:
    answered: Callable[..., None]
    enrich_hop: Callable[..., None]
    hop_completed: Callable[..., None]
    round_completed: Callable[..., None]


def _setup(pm: PluginManager, request: TraceRequest, rate: float | None = None) -> _Setup:
    registry = Registry.collect(pm)
    probe_entry = registry.probe(request.probe)
    for path in request.out_paths:  # fail on a bad suffix before sending anything
        registry.output_for_path(str(path))
    for name, _ in request.format_paths:
        registry.output(name)
    if request.stdout_format:
        registry.output(request.stdout_format)
    settings = {"numeric": request.numeric, "report": request.report, **request.settings}
    pm.hook.tracekit_configure(settings=settings)  # checks databases etc. before probing
    return _Setup(registry, probe_entry, settings, Rate(rate) if rate else None)


def run_trace(pm: PluginManager, request: TraceRequest, stdout: TextIO = sys.stdout) -> Trace:
    """Run the trace ``request`` describes and return it; outputs are written as it goes."""
    setup = _setup(pm, request, request.rate)
    _refuse_unused_options(setup, request)
    opener = lambda stack: _open_outputs(request, setup.registry, stack, stdout)  # noqa: E731
    tracing = _Tracing(pm, setup, request, request.target, opener)
    try:
        tracing.run_alone()
    except TracekitError as exc:
        tracing.fail(exc)
        raise
    finally:
        tracing.close()
    assert tracing.trace is not None
    return tracing.trace


#: Makes a trace's transport: ``(stack, request, method, ip_version, address, source)``; what
#: needs closing is put on the trace's ``stack``.
TransportMaker = Callable[[ExitStack, "TraceRequest", ProbeMethod, int, str, str], Transport]


def _own_transport(
    stack: ExitStack, request: TraceRequest, method: ProbeMethod, ip_version: int, address: str,
    source: str,
) -> Transport:  # fmt: skip
    """A transport of the trace's own (one target)."""
    chosen = _transport(request, method, ip_version, address, source)
    stack.callback(chosen.close)
    return chosen


class _Tracing:
    """One trace's life: :meth:`open` (resolve, probe method, sockets, outputs, the engine),
    :meth:`handle` for each event, :meth:`close` (the verdicts, the hooks, the outputs'
    ``finish``). Several can be alive at once (several targets)."""

    def __init__(
        self,
        pm: PluginManager,
        setup: _Setup,
        request: TraceRequest,
        target: str,
        open_outputs: Callable[[ExitStack], list[_Sink]],
    ) -> None:
        self.pm = pm
        self.setup = setup
        self.request = request
        self.target = target
        self.open_outputs = open_outputs
        self.stack = ExitStack()
        #: Made once probing begins (after resolving, sockets and outputs).
        self.trace: Trace | None = None
        self.outputs: list[_Sink] = []
        self.address = ""
        self.packed_destination = b""

    def open(self, make_transport: TransportMaker) -> Engine:
        """Resolve the target, open what the trace needs, and start it; its engine.
        Whatever fails here is a :class:`TracekitError` (call :meth:`close` all the same)."""
        request, setup = self.request, self.setup
        address, ip_version = resolve(self.target, request.ip_version)
        source = source_for(address, ip_version, request.interface, request.source)
        self.address = address
        family = socket.AF_INET if ip_version == 4 else socket.AF_INET6
        self.packed_destination = socket.inet_pton(family, address)
        context = ProbeContext(ip_version, source, address, dict(request.probe_options))
        if getattr(setup.probe_entry.factory, "uses_scapy", True):
            skip_scapy_routes()
        stack = self.stack
        method = setup.probe_entry.factory(context)
        stack.callback(method.close)
        _check_options(request, option_names(method.options))
        strategy = self.strategy = _strategy(request, method)
        self.transport = make_transport(stack, request, method, ip_version, address, source)
        self.outputs = outputs = self.open_outputs(stack)
        s = request.schedule
        self.trace = trace = Trace(
            target=self.target,
            address=address,
            ip_version=ip_version,
            probe=ProbeInfo(request.probe, method.parameters()),
            source=source,
            first_ttl=s.first_ttl,
            max_ttl=s.max_ttl,
            queries=s.queries,
            settings=setup.settings,
            started=datetime.now(timezone.utc),
        )
        if isinstance(strategy, Multipath):
            trace.confidence = request.mda
        elif isinstance(strategy, Rounds):
            trace.cycles, trace.interval = request.cycles, request.interval
        self.engine = engine = Engine(method, strategy, rate=setup.rate)
        stack.callback(engine.close)
        self.run = _Run(self.pm, trace, outputs, strategy, setup.hooks(self.pm))
        _freeze_start_up()
        self.pm.hook.tracekit_trace_started(trace=trace)
        for sink in outputs:
            sink.call("start", trace)
        return engine

    def run_alone(self) -> None:
        """Open the trace with a transport of its own and drive it to its end (Ctrl-C: it
        reports what it has, then the interrupt goes on)."""
        engine = self.open(_own_transport)
        handle = self.run.handle
        try:
            for event in drive(engine, self.transport):
                handle(event)
        except KeyboardInterrupt:
            for event in drain(engine):
                self.handle(event)
            raise

    def handle(self, event: Event) -> None:
        self.run.handle(event)

    def fail(self, error: TracekitError) -> None:
        """The trace cannot go on: ``error`` says why (in the trace, if it began)."""
        if self.trace is not None:
            self.trace.error = str(error)

    def close(self) -> None:
        """End the trace: the verdicts, ``tracekit_trace_finished``, the outputs' ``finish``,
        and close what it opened."""
        with self.stack:
            trace = self.trace
            if trace is None:
                return
            strategy = self.strategy
            if trace.end is None:  # an exception is on its way out
                trace.end = "error"
            trace.reached = trace.end == "reached" or (
                trace.end == "interrupted"
                and isinstance(strategy, Rounds | Multipath)
                and strategy.reached
            )
            trace.finished = datetime.now(timezone.utc)
            if isinstance(strategy, Multipath):
                trace.links, trace.probes_sent = strategy.links(), strategy.sent
            request = self.request
            if request.rules and trace.end != "error":
                from tracekit.expect import evaluate  # with --expect only: a heavy import

                trace.expectations = evaluate(request.rules, trace, request.baseline)
            self.pm.hook.tracekit_trace_finished(trace=trace)
            for sink in self.outputs:
                sink.call("finish", trace)
            if trace.expectations:
                _report_failures(trace)


#: Allocations between two collections of the young generation in a run of many traces
#: (Python's default: 700).
YOUNG_COLLECTION = 10_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """A run of many traces makes and drops objects by the million, few of them in cycles:
    collecting the young generation every :data:`YOUNG_COLLECTION` allocations rather than
    700 spares most of the passes over the traces in flight (about 5 % of a run's CPU)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@functools.cache
def _freeze_start_up() -> None:
    """What start-up made (scapy, plugins) lives as long as the process: out of the
    collector's way, a full collection in a long run costs little. Once a process (asking
    ``gc.get_freeze_count`` costs milliseconds once much is frozen)."""
    gc.freeze()


def _strategy(request: TraceRequest, method: ProbeMethod) -> Strategy:
    s = request.schedule
    if request.mda is not None:
        if method.flows < 2:
            raise BadInput(
                f"--mda needs probes that can vary their flow: {request.probe} probes "
                "cannot here (use udp without --port, tcp without --source-port, or icmp)"
            )
        return Multipath(s, request.mda, method.flows)
    if request.cycles is None:
        return Classic(s)
    return Rounds(s, request.cycles, request.interval)


def _report_failures(trace: Trace) -> None:
    """One line per failed rule on standard error; under GitHub Actions also a workflow
    command (``::error``), on standard error too, where it cannot mix with a report on
    standard output."""
    assert trace.expectations is not None
    from tracekit.expect import failure_lines, github_lines

    lines = failure_lines(trace.expectations)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        lines += github_lines(trace.expectations, trace)
    for line in lines:
        print(line, file=sys.stderr)
    sys.stderr.flush()


@dataclass
class Summary:
    """How a run of several targets went."""

    #: Targets taken from the list (after ``--shard``).
    targets: int = 0
    #: Targets whose destination answered.
    reached: int = 0
    #: Targets that failed: no trace (a name that does not resolve...) or one cut short.
    failed: int = 0


class _Buffer(io.StringIO):
    """One trace's output, held until the trace is finished; it claims the encoding of the
    stream it is copied to (the text output asks, to choose its arrows)."""

    def __init__(self, like: TextIO) -> None:
        super().__init__()
        self._like = getattr(like, "encoding", None) or "utf-8"

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._like


class _List:
    """One stream (standard output or an ``--out`` file) that gets several traces in turn,
    each one whole, framed by its output's ``list_start``, ``list_separator``,
    ``list_end``."""

    def __init__(self, entry: Any, stream: TextIO, path: Path | None) -> None:
        self.entry = entry
        self.stream = stream
        self.path = path
        self.where = str(path) if path else "standard output"
        self.records = 0
        self.failed = False
        self._write(getattr(entry.factory, "list_start", ""))

    def sink(self, numeric: bool) -> tuple[_Sink, _Buffer]:
        buffer = _Buffer(self.stream)
        target = OutputTarget(buffer, self.path, numeric, several=True)
        return _Sink(self.entry.name, self.entry.factory(target), self.path), buffer

    def add(self, buffer: _Buffer) -> None:
        text = buffer.getvalue()
        if text:
            separator = getattr(self.entry.factory, "list_separator", "")
            self._write((separator if self.records else "") + text)
            self.records += 1

    def close(self) -> None:
        self._write(getattr(self.entry.factory, "list_end", ""))

    def _write(self, text: str) -> None:
        if self.failed or not text:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError as exc:
            self.failed = True
            if isinstance(exc, BrokenPipeError) and self.path is None:
                raise  # its reader went away ('| head'): tracekit ends quietly
            print(
                f"tracekit: warning: output {self.entry.name!r} ({self.where}) failed: "
                f"{type(exc).__name__}: {exc}",
                file=sys.stderr,
            )


def run_targets(
    pm: PluginManager,
    request: TraceRequest,
    targets: Iterable[str],
    stdout: TextIO = sys.stdout,
    stderr: TextIO | None = None,
    progress: Bar | None = None,
) -> Summary:
    """Trace every target in ``targets``, many at once (:mod:`tracekit.fleet`), each with
    its own identity (a new probe method: its own ICMP identifier or ports), and write each
    trace whole to every output as soon as it is finished. A target that fails gets one line
    on standard error and a record in the outputs (``end: "error"``), and the others go on;
    what stops every trace (no privilege, a bad option, an internal error) stops the run.
    ``progress`` hears of every target done."""
    if request.cycles is not None:
        raise BadInput("continuous mode (-c, -r) traces one target; several targets: drop -c/-r")
    setup = _setup(pm, request, request.rate or BULK_RATE)
    entries: list[tuple[Any, TextIO | None, Path | None]] = []
    if request.stdout_format:
        entries.append((setup.registry.output(request.stdout_format), stdout, None))
    entries += [(setup.registry.output_for_path(str(p)), None, p) for p in request.out_paths]
    for entry, _, _ in entries:
        if not getattr(entry.factory, "several_traces", True):
            raise BadInput(f"output {entry.name!r} shows one trace: give it one target")
    _refuse_unused_options(setup, request)
    if request.interface is not None:
        try:
            socket.if_nametoindex(request.interface)
        except OSError as exc:
            raise CannotProbe(f"no such interface: {request.interface}") from exc
    if request.sockets != "unprivileged" and not raw_sockets_allowed():
        if request.sockets == "raw":
            raise NoPrivilege(privilege_hint())
        print(
            "tracekit: no privilege for raw sockets: tracing without it "
            "(--unprivileged says so and skips this line)",
            file=sys.stderr,
        )
        request = replace(request, sockets="unprivileged")
    # Many traces at once: each sends its TTLs in a random order (yarrp's idea), so that no
    # router gets the probes of every trace in one burst.
    request = replace(request, schedule=replace(request.schedule, shuffle=True))

    with ExitStack() as stack:
        lists: list[_List] = []
        for entry, stream, path in entries:
            if stream is None:
                assert path is not None
                try:
                    stream = stack.enter_context(path.open("w", encoding="utf-8"))
                except OSError as exc:
                    raise BadInput(f"cannot write {path}: {exc.strerror}") from exc
            lists.append(_List(entry, stream, path))
        for out in lists:
            stack.callback(out.close)
        bulk = _Bulk(pm, setup, request, lists, stderr or sys.stderr, progress)
        stack.callback(bulk.close)
        bulk.run(iter(targets))
    return bulk.summary


def parallel_traces(rate: float, asked: int | None = None) -> int:
    """Traces in flight at once for several targets: ``asked`` (``--parallel``), else
    enough to keep ``rate`` probes a second busy (a trace sends about a dozen probes and
    lasts a round trip or so, a few with silent hops) without spreading the rate so thin
    that no trace finishes: a quarter of the rate, at least 16, at most 1000."""
    if asked is not None:
        return asked
    return max(16, min(1000, math.ceil(rate / 4)))


class _Bulk:
    """A run of several targets: traces in flight over shared raw sockets (a
    :class:`~tracekit.fleet.Fleet`), or, without privilege, one after another; each written
    whole to every output when it finishes, in the order they finish."""

    def __init__(
        self,
        pm: PluginManager,
        setup: _Setup,
        request: TraceRequest,
        lists: list[_List],
        stderr: TextIO,
        progress: Bar | None,
    ) -> None:
        self.pm, self.setup, self.request = pm, setup, request
        self.lists = lists
        self.stderr = stderr
        self.progress = progress
        self.summary = Summary()
        self.fleet = Fleet(rate=setup.rate)
        self.parallel = parallel_traces(request.rate or BULK_RATE, request.parallel)
        #: The run's raw transports, by (IP version, source address).
        self._shared: dict[tuple[int, str], RawTransport] = {}
        self._alive: set[_Lane] = set()

    def run(self, targets: Iterator[str]) -> None:
        if self.request.sockets == "unprivileged":
            for target in targets:
                self._one_by_one(target)
            return
        with _fewer_collections():
            self._run_fleet(targets)

    def _run_fleet(self, targets: Iterator[str]) -> None:
        fleet = self.fleet
        more = True
        try:
            while True:
                while more and len(fleet) < self.parallel:
                    chosen = next(targets, None)
                    if chosen is None:
                        more = False
                    else:
                        self._start(chosen)
                        # Starting a trace takes time, and the traces already started get
                        # answers meanwhile: read them now, or the sockets' buffers fill.
                        fleet.pump()
                if not len(fleet):
                    if not more:
                        return
                    continue
                fleet.step()
        except KeyboardInterrupt:
            fleet.stop(time.time())
            raise

    def close(self) -> None:
        """Close what is still open (an exception is on its way out)."""
        for lane in list(self._alive):
            self._end(lane)
        for transport in self._shared.values():
            transport.close()
        self._shared.clear()

    def _lane(self, target: str) -> _Lane:
        self.summary.targets += 1
        made = [out.sink(self.request.numeric) for out in self.lists]
        sinks = [sink for sink, _ in made]
        tracing = _Tracing(self.pm, self.setup, self.request, target, lambda stack: sinks)
        lane = _Lane(self, tracing, sinks, [buffer for _, buffer in made])
        self._alive.add(lane)
        return lane

    def _start(self, target: str) -> None:
        lane = self._lane(target)
        try:
            lane.engine = lane.tracing.open(self._shared_transport)
        except NoPrivilege:
            raise
        except TracekitError as exc:
            self._end(lane, exc)
            return
        transport = lane.tracing.transport
        assert isinstance(transport, RawTransport)
        lane.transport = transport
        self.fleet.add(lane)

    def _one_by_one(self, target: str) -> None:
        lane = self._lane(target)
        tracing = lane.tracing
        try:
            tracing.run_alone()
        except NoPrivilege:
            raise  # and close() ends it
        except TracekitError as exc:
            self._end(lane, exc)
            return
        self._end(lane)

    def _shared_transport(
        self, stack: ExitStack, request: TraceRequest, method: ProbeMethod, ip_version: int,
        address: str, source: str,
    ) -> Transport:  # fmt: skip
        key = (ip_version, source)
        transport = self._shared.get(key)
        if transport is None:
            transport = self._shared[key] = RawTransport(
                ip_version,
                None,
                source,
                method.extra_protocols,
                request.interface,
                buffer=SHARED_RCVBUF,
            )
            self.fleet.add_transport(transport)
        return transport

    def _end(self, lane: _Lane, error: TracekitError | None = None) -> None:
        """``lane`` is over (``error``: it failed): close it, write its records, count it."""
        if lane not in self._alive:
            return
        self._alive.discard(lane)
        tracing = lane.tracing
        summary = self.summary
        if error is not None:
            summary.failed += 1
            print(f"tracekit: {tracing.target}: {error}", file=self.stderr, flush=True)
            tracing.fail(error)
        try:
            tracing.close()
            if tracing.trace is None:  # nothing was traced: a record of the failure
                failed = _failed_trace(self.setup, self.request, tracing.target, str(error))
                for sink in lane.sinks:
                    sink.call("finish", failed)
            else:
                summary.reached += tracing.trace.reached
        finally:
            for out, buffer in zip(self.lists, lane.buffers, strict=True):
                out.add(buffer)
            if self.progress is not None:
                self.progress.done(tracing.trace)
            lane.release()


class _Lane:
    """One trace of a run of several targets, as the fleet drives it."""

    engine: Engine
    transport: RawTransport

    def __init__(
        self, bulk: _Bulk, tracing: _Tracing, sinks: list[_Sink], buffers: list[_Buffer]
    ) -> None:
        self.bulk = bulk
        self.tracing = tracing
        #: The trace's outputs, and the buffers they write into.
        self.sinks = sinks
        self.buffers = buffers

    def release(self) -> None:
        """The trace is written out: let go of all of it. (The fleet may still hold the lane
        a while, in a stale entry of its heap or queue: it must not hold a whole trace,
        tens of kilobytes, for each.)"""
        vars(self).clear()

    @property
    def packed_destination(self) -> bytes:
        return self.tracing.packed_destination

    def send(self, data: bytes) -> float:
        return self.transport.send_to(data, self.tracing.address)

    def handle(self, event: Event) -> None:
        self.tracing.run.handle(event)

    def failed(self, error: TracekitError) -> None:
        self.bulk._end(self, error)

    def finished(self) -> None:
        self.bulk._end(self)


def _failed_trace(setup: _Setup, request: TraceRequest, target: str, error: str) -> Trace:
    now = datetime.now(timezone.utc)
    s = request.schedule
    return Trace(
        target=target,
        address=None,
        ip_version=None,
        probe=ProbeInfo(request.probe),
        first_ttl=s.first_ttl,
        max_ttl=s.max_ttl,
        queries=s.queries,
        settings=setup.settings,
        started=now,
        finished=now,
        end="error",
        error=error,
    )


class _Run:
    """Turns the engine's events into hook calls and output calls, for one trace."""

    def __init__(
        self,
        pm: PluginManager,
        trace: Trace,
        outputs: list[_Sink],
        strategy: Strategy,
        hooks: _Hooks,
    ) -> None:
        self.pm = pm
        self.trace = trace
        self.outputs = outputs
        self.strategy = strategy
        self._enriched: set[tuple[int, str]] = set()
        #: The outputs that want every answer (a live view): calling the others costs time.
        self._answer_sinks = [o for o in outputs if type(o.output).answer is not Output.answer]
        #: Likewise, the outputs that want every round (continuous mode).
        self._round_sinks = [o for o in outputs if type(o.output).round is not Output.round]
        self._hooks = hooks
        self._answered = hooks.answered
        self._responders = 0

    def handle(self, event: Event) -> None:
        trace = self.trace
        if isinstance(event, ProbeAnswered):
            result = event.result
            self._answered(trace=trace, ttl=event.probe.ttl, result=result)
            if self._answer_sinks:
                if isinstance(self.strategy, Rounds):
                    trace.hops = self.strategy.hops()
                for sink in self._answer_sinks:
                    sink.call("answer", trace, event.probe.ttl, result)
        elif isinstance(event, HopCompleted):
            _complete(self._hooks, trace, event.hop, self.outputs)
        elif isinstance(event, RoundCompleted):
            self._refresh()
            trace.rounds = event.round.number
            self._hooks.round_completed(trace=trace, round=event.round)
            for sink in self._round_sinks:
                sink.call("round", trace, event.round)
        elif isinstance(event, TraceFinished):
            if isinstance(self.strategy, Rounds):
                self._refresh()
            trace.end = event.end

    def _refresh(self) -> None:
        """Continuous mode: take the strategy's hops, enriching hosts not seen before."""
        assert isinstance(self.strategy, Rounds)
        self.trace.hops = hops = self.strategy.hops()
        if self.strategy.responders == self._responders:
            return  # no new host: nothing to enrich
        self._responders = self.strategy.responders
        for hop in hops:
            new = [a for a in hop.hosts if (hop.ttl, a) not in self._enriched]
            if new:
                self.pm.hook.tracekit_enrich_hop(trace=self.trace, hop=hop)
                self._enriched.update((hop.ttl, a) for a in new)


def _complete(hooks: _Hooks, trace: Trace, hop: Hop, outputs: list[_Sink]) -> None:
    hooks.enrich_hop(trace=trace, hop=hop)
    trace.hops.append(hop)
    hooks.hop_completed(trace=trace, hop=hop)
    for sink in outputs:
        sink.call("hop", trace, hop)


def _transport(
    request: TraceRequest, method: ProbeMethod, ip_version: int, address: str, source: str
) -> RawTransport | DatagramTransport:
    """Raw sockets where allowed; else, or with ``--unprivileged``, ping and UDP sockets."""
    if request.sockets != "unprivileged":
        try:
            return RawTransport(
                ip_version, address, source, method.extra_protocols, request.interface
            )
        except NoPrivilege as exc:
            if request.sockets == "raw":
                raise
            try:
                transport = _unprivileged(request, method, ip_version, address, source)
            except (BadInput, CannotProbe) as fallback:
                raise NoPrivilege(f"{exc}; {fallback}") from fallback
            print(
                "tracekit: no privilege for raw sockets: tracing without it "
                "(--unprivileged says so and skips this line)",
                file=sys.stderr,
            )
            return transport
    return _unprivileged(request, method, ip_version, address, source)


def _unprivileged(
    request: TraceRequest, method: ProbeMethod, ip_version: int, address: str, source: str
) -> DatagramTransport:
    transport = DatagramTransport(ip_version, address, source, method, request.interface)
    if transport.port_per_probe and request.mda is not None:
        # Binding each connection to its flow's port is not enough: the kernel gives every
        # connection a random hash (and IPv6 flow label), which load balancers may follow
        # (Linux routers sharing the kernel do), so a flow would not be one path.
        transport.close()
        raise BadInput(
            f"--mda does not work for {request.probe} probes without privilege: each probe "
            "is a connection of its own, with a random hash load balancers may follow "
            "(--probe udp varies its flows)"
        )
    if transport.port_per_probe:
        for name in ("paris", "source_port"):
            if request.probe_options.get(name) not in (None, False):
                transport.close()
                option = "--" + name.replace("_", "-")
                raise BadInput(
                    f"{option} does not work for {request.probe} probes without privilege: "
                    "each probe has a source port of its own (--probe udp keeps one)"
                )
    return transport


def _refuse_unused_options(setup: _Setup, request: TraceRequest) -> None:
    """Refuse, before anything is resolved or sent, an option the chosen probe method would
    ignore, where its class says which it takes (each method checks again when made)."""
    used = getattr(setup.probe_entry.factory, "options", None)
    if isinstance(used, tuple | frozenset):
        _check_options(request, option_names(used))


def _check_options(request: TraceRequest, used: frozenset[str]) -> None:
    """Refuse a probe option the chosen method would ignore (``--port`` with icmp...)."""
    for name, value in request.probe_options.items():
        if value not in (None, False) and name not in used:
            option = "--" + name.replace("_", "-")
            raise BadInput(f"{option} does not apply to {request.probe} probes")
