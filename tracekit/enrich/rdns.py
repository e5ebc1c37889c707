"""Reverse DNS names for the hosts of each hop (turned off by ``-n``).

Lookups start as soon as an address first answers and run in a few background threads of
the trace's own resolver (kept in ``trace.stash``), which end with the trace. A hop waits
for its names at most :data:`LOOKUP_TIMEOUT` seconds after the lookup started, so a slow
or broken resolver delays the output by a bounded time and never stops the trace.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracekit import hookimpl
from tracekit.stash import StashKey

if TYPE_CHECKING:
    from tracekit.model import Hop, ProbeResult, Trace

#: Seconds a hop waits for a name lookup, counted from the lookup's start.
LOOKUP_TIMEOUT = 2.0
WORKERS = 4


@dataclass
class _Lookup:
    started: float
    done: threading.Event = field(default_factory=threading.Event)
    name: str | None = None


def system_lookup(address: str) -> str | None:
    """The name of ``address`` from the system resolver, or ``None``."""
    try:
        return socket.gethostbyaddr(address)[0]
    except (OSError, UnicodeError):
        return None


class ReverseDns:
    """Resolves addresses to names with the system resolver (``/etc/hosts``, DNS...), in
    threads of its own that end when it is closed."""

    def __init__(
        self, workers: int = WORKERS, lookup: Callable[[str], str | None] | None = None
    ) -> None:
        self._lookups: dict[str, _Lookup] = {}
        import queue  # here: tracekit --help loads this module

        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._workers = workers
        self._lookup = lookup or system_lookup
        self._closed = False
        #: The worker threads started so far.
        self.threads: list[threading.Thread] = []

    def start(self, address: str) -> None:
        """Begin looking up ``address`` unless that has begun already."""
        if address in self._lookups or self._closed:
            return
        self._lookups[address] = _Lookup(time.monotonic())
        self._queue.put(address)
        if len(self.threads) < self._workers:
            # Daemon threads: a resolver that hangs must not keep tracekit from exiting.
            thread = threading.Thread(target=self._work, name="tracekit-rdns", daemon=True)
            self.threads.append(thread)
            thread.start()

    def name(self, address: str) -> str | None:
        """The name of ``address``, waiting for its lookup within the time limit."""
        self.start(address)
        lookup = self._lookups.get(address)
        if lookup is None:  # closed
            return None
        lookup.done.wait(max(0.0, lookup.started + LOOKUP_TIMEOUT - time.monotonic()))
        return lookup.name

    def close(self) -> None:
        """Stop: lookups not begun are dropped, and each thread ends once its lookup under
        way (which cannot be cut short) returns."""
        self._closed = True
        for _ in self.threads:
            self._queue.put(None)

    def _work(self) -> None:
        while True:
            address = self._queue.get()
            if address is None:
                return
            lookup = self._lookups[address]
            if not self._closed:
                lookup.name = self._lookup(address)
            lookup.done.set()


#: Each trace's resolver, in ``trace.stash``.
RESOLVER = StashKey[ReverseDns]()


@hookimpl
def tracekit_trace_started(trace: Trace) -> None:
    if not trace.settings.get("numeric"):
        trace.stash[RESOLVER] = ReverseDns()


@hookimpl
def tracekit_probe_answered(trace: Trace, ttl: int, result: ProbeResult) -> None:
    resolver = trace.stash.get(RESOLVER)
    if resolver is not None and result.address is not None:
        resolver.start(result.address)


@hookimpl
def tracekit_enrich_hop(trace: Trace, hop: Hop) -> None:
    resolver = trace.stash.get(RESOLVER)
    if resolver is None:
        return
    for host in hop.hosts.values():
        if host.name is None:
            host.name = resolver.name(host.address)


@hookimpl
def tracekit_trace_finished(trace: Trace) -> None:
    resolver = trace.stash.pop(RESOLVER)
    if resolver is not None:
        resolver.close()
