"""Reverse DNS names for the hosts of each hop (turned off by ``-n``).

Lookups start as soon as an address first answers and run in a few background threads; a
hop waits for its names at most :data:`LOOKUP_TIMEOUT` seconds after the lookup started, so
a slow or broken resolver delays the output by a bounded time and never stops the trace.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from dataclasses import dataclass, field

from tracekit import hookimpl
from tracekit.model import Hop, ProbeResult, Trace

#: Seconds a hop waits for a name lookup, counted from the lookup's start.
LOOKUP_TIMEOUT = 2.0
WORKERS = 4


@dataclass
class _Lookup:
    started: float
    done: threading.Event = field(default_factory=threading.Event)
    name: str | None = None


class ReverseDns:
    """Resolves addresses to names with the system resolver (``/etc/hosts``, DNS...)."""

    def __init__(self, workers: int = WORKERS) -> None:
        self._lookups: dict[str, _Lookup] = {}
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._workers = workers
        self._started = 0

    def start(self, address: str) -> None:
        """Begin looking up ``address`` unless that has begun already."""
        if address in self._lookups:
            return
        self._lookups[address] = _Lookup(time.monotonic())
        self._queue.put(address)
        if self._started < self._workers:
            self._started += 1
            # Daemon threads: a resolver that hangs must not keep tracekit from exiting.
            threading.Thread(target=self._work, name="tracekit-rdns", daemon=True).start()

    def name(self, address: str) -> str | None:
        """The name of ``address``, waiting for its lookup within the time limit."""
        self.start(address)
        lookup = self._lookups[address]
        lookup.done.wait(max(0.0, lookup.started + LOOKUP_TIMEOUT - time.monotonic()))
        return lookup.name

    def _work(self) -> None:
        while True:
            address = self._queue.get()
            lookup = self._lookups[address]
            try:
                lookup.name = socket.gethostbyaddr(address)[0]
            except (OSError, UnicodeError):
                lookup.name = None
            lookup.done.set()


#: One resolver per running trace (keyed by ``id(trace)``).
_resolvers: dict[int, ReverseDns] = {}


@hookimpl
def tracekit_trace_started(trace: Trace) -> None:
    if not trace.settings.get("numeric"):
        _resolvers[id(trace)] = ReverseDns()


@hookimpl
def tracekit_probe_answered(trace: Trace, ttl: int, result: ProbeResult) -> None:
    resolver = _resolvers.get(id(trace))
    if resolver is not None and result.address is not None:
        resolver.start(result.address)


@hookimpl
def tracekit_enrich_hop(trace: Trace, hop: Hop) -> None:
    resolver = _resolvers.get(id(trace))
    if resolver is None:
        return
    for host in hop.hosts.values():
        if host.name is None:
            host.name = resolver.name(host.address)


@hookimpl
def tracekit_trace_finished(trace: Trace) -> None:
    _resolvers.pop(id(trace), None)
