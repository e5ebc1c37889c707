"""Many traces at once over shared sockets: the driver of a run of several targets.

Every trace (a :class:`Lane`) has an engine of its own, with its own identity (ICMP
identifier, source port) and sequence numbers; the sockets are the run's, one set per IP
version. An arrived packet goes to the traces of the destination it concerns, read from a
few bytes: the destination its ICMP error quotes, or the address it came from (an echo reply,
a TCP or UDP answer). Only those traces' probe methods look at it, so a packet costs the
same however many traces are in flight; a second trace of the same address tells its
answers from the first's by its identity.

A trace is polled when its engine's wake-up comes, or when an answer of its came. When the
run's ``--rate`` has no token, a trace that wanted to send waits in a queue, and the queue is
served in turn as tokens come: waiting traces cost nothing, however many there are.
"""

from __future__ import annotations

import heapq
import itertools
import select
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from tracekit.errors import NoPrivilege, TracekitError

if TYPE_CHECKING:
    from tracekit.engine import Engine
    from tracekit.events import Event
    from tracekit.pacing import Rate
    from tracekit.probes import Received
    from tracekit.sockets import RawTransport

#: Seconds the fleet waits at most for packets before it looks at its traces again.
LONGEST_WAIT = 1.0
#: Stale wake-ups the heap may hold beyond twice the traces in flight before it is compacted.
STALE_SLACK = 256


class Lane(Protocol):
    """One trace of the fleet: its engine, and what to do with what happens to it."""

    engine: Engine

    @property
    def packed_destination(self) -> bytes:
        """The destination, packed (4 or 16 bytes): what its answers quote or come from."""
        ...

    def send(self, data: bytes) -> float:
        """Send one probe packet; the send time."""
        ...

    def handle(self, event: Event) -> None:
        """One of the engine's events."""
        ...

    def failed(self, error: TracekitError) -> None:
        """The trace cannot go on (no route...): it is taken out of the fleet."""
        ...

    def finished(self) -> None:
        """The engine has finished: it is taken out of the fleet."""
        ...


def destination_of(received: Received) -> bytes | None:
    """The packed destination a packet concerns: the one an ICMP error quotes, else the
    address it came from (``None`` when it is no reply at all)."""
    reply = received.reply
    if reply is None:
        return None
    if reply.quoted is not None:
        return reply.quoted.dst
    data = received.data
    return data[12:16] if received.ip_version == 4 else data[8:24]


class Fleet:
    """Drives many :class:`Lane` at once over shared raw transports (see above)."""

    def __init__(
        self,
        transports: Iterable[RawTransport] = (),
        rate: Rate | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rate = rate
        self.clock = clock
        self._sockets: dict[socket.socket, RawTransport] = {}
        for transport in transports:
            self.add_transport(transport)
        self._by_destination: dict[bytes, list[Lane]] = {}
        #: ``(wake-up, order, lane)``; an entry whose time is not the lane's is stale.
        self._heap: list[tuple[float, int, Lane]] = []
        self._wake: dict[Lane, float | None] = {}
        self._order = itertools.count()
        #: Lanes that wanted to send when the rate had no token, in the order they asked
        #: (each once: ``_starving``; entries of lanes that finished since are stale).
        self._starved: deque[Lane] = deque()
        self._starving: set[Lane] = set()
        #: Packets that arrived for no trace in flight.
        self.strays = 0

    def add_transport(self, transport: RawTransport) -> None:
        for sock in transport.receivers:
            self._sockets[sock] = transport

    def __len__(self) -> int:
        return len(self._wake)

    def add(self, lane: Lane) -> None:
        """Take ``lane`` in and poll it (its first probes go out now)."""
        self._by_destination.setdefault(lane.packed_destination, []).append(lane)
        self._wake[lane] = None
        self._poll(lane, self.clock())

    def step(self) -> None:
        """Poll the traces that are due, wait for packets (at most until the next wake-up),
        and feed them to their traces."""
        # What has arrived is fed first: an answer that came before its probe's give-up
        # time counts, however late the fleet gets to it.
        self.pump()
        now = self.clock()
        self._serve_starved(now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            wake, _, lane = heapq.heappop(heap)
            if self._wake.get(lane) == wake:
                self._wake[lane] = None
                self._poll(lane, now)
        if not self._wake:
            return
        timeout = LONGEST_WAIT
        if heap:
            timeout = min(timeout, max(0.0, heap[0][0] - self.clock()))
        if self._starving and self.rate is not None:
            timeout = min(timeout, max(0.0, self.rate.ready_at(now) - now))
        fed = self._receive(timeout)
        if fed:
            now = self.clock()
            for lane in fed:
                if lane in self._wake:
                    self._poll(lane, now)

    def pump(self) -> None:
        """Read what has arrived, without waiting, and poll the traces it was for: between
        other work (starting traces), so the sockets' buffers do not fill."""
        fed = self._receive(0.0)
        if fed:
            now = self.clock()
            for lane in fed:
                if lane in self._wake:
                    self._poll(lane, now)

    def stop(self, now: float) -> None:
        """Stop every trace in flight (Ctrl-C): each reports what it has and finishes."""
        for lane in list(self._wake):
            lane.engine.stop(now)
            self._events(lane)
            self._remove(lane)
            lane.finished()

    # -- inside -----------------------------------------------------------------------------

    def _receive(self, timeout: float) -> list[Lane]:
        sockets = list(self._sockets)
        if not sockets:
            if timeout > 0.0:
                time.sleep(timeout)
            return []
        ready = select.select(sockets, [], [], timeout)[0]
        fed: dict[Lane, None] = {}
        by_destination = self._by_destination
        for sock in ready:
            for received in self._sockets[sock].read(sock):
                key = destination_of(received)
                lanes = by_destination.get(key) if key is not None else None
                if lanes is None:
                    self.strays += 1
                    continue
                for lane in lanes:
                    if lane.engine.feed(received):
                        fed[lane] = None
                        break
                else:
                    self.strays += 1
        return list(fed)

    def _serve_starved(self, now: float) -> None:
        """Poll the lanes that wait for the rate, in turn, while it has tokens."""
        starved, starving, rate = self._starved, self._starving, self.rate
        while starved and (rate is None or rate.ready_at(now) <= now):
            lane = starved.popleft()
            if lane in starving:
                starving.discard(lane)
                self._poll(lane, now)

    def _poll(self, lane: Lane, now: float) -> None:
        engine = lane.engine
        try:
            for probe in engine.due(now):
                engine.sent(probe, lane.send(probe.packet))
        except NoPrivilege:
            raise
        except TracekitError as exc:
            self._events(lane)
            self._remove(lane)
            lane.failed(exc)
            return
        self._events(lane)
        if engine.finished:
            self._remove(lane)
            lane.finished()
            return
        if engine.starved:
            self._wake[lane] = None
            if lane not in self._starving:  # else it keeps its place in the queue
                self._starving.add(lane)
                self._starved.append(lane)
            return
        wake = engine.wakeup()
        self._wake[lane] = wake
        if wake is not None:
            heap = self._heap
            heapq.heappush(heap, (wake, next(self._order), lane))
            if len(heap) > 2 * len(self._wake) + STALE_SLACK:
                self._compact()

    def _compact(self) -> None:
        """Drop the heap's stale entries: each keeps its trace alive until its time comes,
        up to the longest wait: thousands of finished traces at thousands a second."""
        wakes, heap = self._wake, self._heap
        heap[:] = [entry for entry in heap if wakes.get(entry[2]) == entry[0]]
        heapq.heapify(heap)  # in place: step() holds the list while it polls

    def _events(self, lane: Lane) -> None:
        for event in lane.engine.take_events():
            lane.handle(event)

    def _remove(self, lane: Lane) -> None:
        self._wake.pop(lane, None)
        starving, starved = self._starving, self._starved
        if lane in starving:
            starving.discard(lane)
            if len(starved) > 2 * len(starving) + STALE_SLACK:
                # The queue's stale entries keep finished traces alive: drop them (in
                # place: _serve_starved holds the queue while it polls).
                live = [waiting for waiting in starved if waiting in starving]
                starved.clear()
                starved.extend(live)
        lanes = self._by_destination.get(lane.packed_destination)
        if lanes is not None:
            lanes.remove(lane)
            if not lanes:
                del self._by_destination[lane.packed_destination]
