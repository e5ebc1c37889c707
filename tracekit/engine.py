"""The TTL loop: keeps a window of probes in flight, matches answers, decides when to stop.

The engine knows nothing of protocols or output formats. It asks the probe method for packets
and for the meaning of what arrives, talks to the network through a :class:`Transport`, and
yields each hop, in TTL order, as soon as that hop and all before it are complete.

Waiting follows the system ``traceroute``'s ``-w MAX,HERE,NEAR``: a probe is given up after
MAX seconds, but no longer than HERE times the round trip of an answer already seen at the same
hop, or NEAR times the round trip of an answer to a probe sent after it.
"""

from __future__ import annotations

import bisect
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from tracekit.model import Hop, Host, ProbeResult
from tracekit.probe import Outcome, ProbeMethod, Received

#: Added to measured round trips before scaling them (``traceroute``'s DEF_WAIT_PREC):
#: timer and scheduling resolution.
WAIT_PRECISION = 0.001


class Transport(Protocol):
    """Sends probe packets and delivers what arrives (see :mod:`tracekit.sockets`)."""

    def send(self, data: bytes) -> float:
        """Send one packet; return the send time (seconds since the epoch)."""
        ...

    def receive(self, timeout: float) -> list[Received]:
        """Wait up to ``timeout`` seconds; return what arrived (possibly nothing)."""
        ...


@dataclass(frozen=True)
class Wait:
    """How long to wait for an answer, as in ``traceroute -w MAX,HERE,NEAR``."""

    max: float = 5.0
    here: float = 3.0
    near: float = 10.0


@dataclass(frozen=True)
class Schedule:
    """Which probes to send, how many at once, and how fast."""

    first_ttl: int = 1
    max_ttl: int = 30
    queries: int = 3
    wait: Wait = field(default_factory=Wait)
    #: Probes in flight at once (``traceroute -N``).
    window: int = 16
    #: Least time between any two probes, in seconds (``traceroute -z``).
    send_interval: float = 0.0
    #: Least time between two probes with the same TTL, in seconds. Routers rate-limit the
    #: ICMP errors they send; spacing the probes of one hop keeps them under that limit.
    hop_interval: float = 0.0


@dataclass(eq=False)
class _Probe:
    seq: int
    ttl: int
    attempt: int
    sent: float | None = None
    result: ProbeResult | None = None
    #: Given up (timed out) without an answer; an answer may still fill it in until its hop
    #: is reported.
    expired: bool = False

    @property
    def done(self) -> bool:
        return self.result is not None or self.expired


class Engine:
    """Runs one trace. Iterate over :meth:`run` to get the hops."""

    def __init__(
        self,
        method: ProbeMethod,
        transport: Transport,
        schedule: Schedule,
        on_answer: Callable[[int, ProbeResult], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.method = method
        self.transport = transport
        self.schedule = schedule
        self.on_answer = on_answer
        self.clock = clock
        s = schedule
        pairs = [(ttl, a) for ttl in range(s.first_ttl, s.max_ttl + 1) for a in range(s.queries)]
        self._probes = [_Probe(seq=i, ttl=ttl, attempt=a) for i, (ttl, a) in enumerate(pairs)]
        self._unsent = list(self._probes)
        self._in_flight: list[_Probe] = []
        #: Sequence numbers of answered probes, in order, and the round trip of the first
        #: answer at each TTL: what the adaptive wait is computed from.
        self._answered: list[int] = []
        self._hop_rtt: dict[int, float] = {}
        #: The last TTL that counts: lowered when the destination (or an error) answers.
        self.end_ttl = s.max_ttl
        #: What ended the trace: the outcome at ``end_ttl``, if any.
        self.end_outcome: Outcome | None = None
        self._reported_ttl = s.first_ttl - 1
        self._last_send = float("-inf")
        self._last_send_at_ttl: dict[int, float] = {}

    def run(self) -> Iterator[Hop]:
        """Probe and yield each hop, in TTL order, once it and all before it are complete."""
        while self._reported_ttl < self.end_ttl:
            now = self.clock()
            self._send_due(now)
            self._expire(now)
            yield from self._complete_hops()
            if self._reported_ttl >= self.end_ttl:
                break
            for received in self.transport.receive(self._next_wakeup(self.clock())):
                self._take(received)

    # -- sending ----------------------------------------------------------------------------

    def _earliest_send(self, p: _Probe) -> float:
        """When ``p`` may go, as far as pacing is concerned."""
        s = self.schedule
        at_ttl = self._last_send_at_ttl.get(p.ttl, float("-inf"))
        return max(self._last_send + s.send_interval, at_ttl + s.hop_interval)

    def _send_due(self, now: float) -> None:
        window = self.schedule.window
        for p in list(self._unsent):
            if len(self._in_flight) >= window or p.ttl > self.end_ttl:
                break
            if self._earliest_send(p) > now:
                continue  # paced: a probe for another TTL may go first
            p.sent = now = self.transport.send(self.method.build(p.ttl, p.attempt, p.seq))
            self._last_send = self._last_send_at_ttl[p.ttl] = now
            self._unsent.remove(p)
            self._in_flight.append(p)

    # -- waiting ----------------------------------------------------------------------------

    def _timeout(self, p: _Probe) -> float:
        """How long ``p`` is waited for, from its send time (``traceroute``'s rule)."""
        w = self.schedule.wait
        rtt = self._hop_rtt.get(p.ttl) if w.here else None
        if rtt is not None:
            return min(w.here * (rtt + WAIT_PRECISION), w.max)
        if w.near:
            i = bisect.bisect_right(self._answered, p.seq)
            if i < len(self._answered):
                later = _rtt(self._probes[self._answered[i]])
                if later is not None:
                    return min(w.near * (later + WAIT_PRECISION), w.max)
        return w.max

    def _expire(self, now: float) -> None:
        for p in list(self._in_flight):
            assert p.sent is not None
            if now >= p.sent + self._timeout(p):
                p.expired = True
                self._in_flight.remove(p)

    def _next_wakeup(self, now: float) -> float:
        """Seconds until a probe may expire or the next probe may be sent."""
        wakeups = [p.sent + self._timeout(p) for p in self._in_flight if p.sent is not None]
        if self._unsent and len(self._in_flight) < self.schedule.window:
            sendable = [p for p in self._unsent if p.ttl <= self.end_ttl]
            if sendable:
                wakeups.append(min(self._earliest_send(p) for p in sendable))
        if not wakeups:
            return 0.0
        return max(0.0, min(wakeups) - now)

    # -- answers ----------------------------------------------------------------------------

    def _take(self, received: Received) -> None:
        match = self.method.match(received)
        if match is None or not 0 <= match.seq < len(self._probes):
            return
        p = self._probes[match.seq]
        if p.sent is None or p.result is not None:
            return  # never sent, or a duplicate answer
        if p.ttl <= self._reported_ttl or p.ttl > self.end_ttl:
            return  # its hop is already reported, or lies past the end of the trace
        p.result = ProbeResult(
            address=received.address,
            rtt_ms=max(0.0, (received.time - p.sent) * 1000.0),
            reply=match.reply,
            reply_ttl=received.ttl,
            mpls=[dataclasses.asdict(entry) for entry in match.mpls],
            marker=match.marker,
        )
        if p in self._in_flight:
            self._in_flight.remove(p)
        bisect.insort(self._answered, p.seq)
        self._hop_rtt.setdefault(p.ttl, (received.time - p.sent))
        if match.outcome is not Outcome.HOP and (p.ttl < self.end_ttl or self.end_outcome is None):
            self.end_ttl = p.ttl
            self.end_outcome = match.outcome
            self._in_flight = [q for q in self._in_flight if q.ttl <= p.ttl]
        if self.on_answer is not None:
            self.on_answer(p.ttl, p.result)

    # -- reporting --------------------------------------------------------------------------

    def _probes_at(self, ttl: int) -> list[_Probe]:
        q = self.schedule.queries
        start = (ttl - self.schedule.first_ttl) * q
        return self._probes[start : start + q]

    def _complete_hops(self) -> Iterator[Hop]:
        while self._reported_ttl < self.end_ttl:
            ttl = self._reported_ttl + 1
            probes = self._probes_at(ttl)
            if not all(p.done for p in probes):
                return
            self._reported_ttl = ttl
            yield _hop(ttl, probes)


def _rtt(p: _Probe) -> float | None:
    if p.result is None or p.result.rtt_ms is None or p.sent is None:
        return None
    return p.result.rtt_ms / 1000.0


def _hop(ttl: int, probes: list[_Probe]) -> Hop:
    hop = Hop(ttl=ttl, probes=[p.result or ProbeResult() for p in probes])
    for r in hop.probes:
        if r.address is not None and r.address not in hop.hosts:
            hop.hosts[r.address] = Host(r.address)
    return hop
