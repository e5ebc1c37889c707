"""Continuous mode (``-c N``, ``-i SECONDS``): rounds of one probe per hop, and statistics.

A round starts every ``interval`` seconds and sends one probe to each TTL up to the
destination (before it is known: up to ``window`` TTLs, or five past the deepest answering
hop). Rounds may overlap; they are reported in order once each of their probes is answered
or given up. A probe is given up by the adaptive wait (HERE times the worst round trip seen
at its hop, NEAR times that of a later answer, at most MAX), and an answer that comes later,
while its sequence number is still held (MAX seconds), is still counted.

Results are folded into :mod:`tracekit.stats` as they come; nothing per probe is kept once
its round is reported, so memory stays bounded however long the run. Routers that withhold
answers are paced (:mod:`tracekit.pacing`) and their withheld answers are not loss.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracekit.events import Probe, ProbeAnswered, Round, RoundCompleted, TraceFinished
from tracekit.model import Hop, Host, ProbeResult
from tracekit.pacing import Pacer
from tracekit.probes import Match, Outcome
from tracekit.stats import HopStats, RttStats, attribute
from tracekit.strategies import Strategy, end_name

if TYPE_CHECKING:
    from tracekit.strategies.classic import Schedule

#: Before the destination is known, rounds probe this many TTLs past the deepest answer.
MAX_UNKNOWN = 5
#: Seconds between tries while every sequence number is held or resting.
_BLOCKED_POLL = 0.01
#: Seconds a given-up probe may wait to be counted while another round is to start.
LINGER = 0.05


@dataclass(eq=False)
class _Round:
    number: int
    started: float
    probes: list[Probe] = field(default_factory=list)
    #: TTLs still to send: every sequence number was held when their turn came.
    waiting: list[int] = field(default_factory=list)


class Rounds(Strategy):
    """Rounds of probes, ``cycles`` of them (0: until stopped), ``interval`` apart."""

    patient = True

    def __init__(
        self, schedule: Schedule, cycles: int, interval: float, pacer: Pacer | None = None
    ) -> None:
        self.schedule = schedule
        self.cycles = cycles
        self.interval = interval
        self.pacer = pacer if pacer is not None else Pacer()
        self._rounds: deque[_Round] = deque()
        self._started = 0
        self._next_at: float | None = None
        #: Probes sent and neither answered nor given up, in the order sent, with when each
        #: is given up; ``_stale`` when those times need working out again (a probe went
        #: out, or a hop's worst round trip grew).
        self._in_flight: dict[Probe, float] = {}
        self._stale = False
        #: Given-up probes whose sequence numbers are still held, oldest first.
        self._held: deque[Probe] = deque()
        self._hops: dict[int, Hop] = {}
        #: ``_hops`` in TTL order, and their statistics; ``None`` when a TTL came or went.
        self._ordered: list[Hop] | None = None
        self._ordered_stats: list[HopStats] = []
        self._worst: dict[int, float] = {}
        self._deepest = 0
        self.dest_ttl: int | None = None
        self.end_outcome: Outcome | None = None
        #: True once the destination has answered.
        self.reached = False
        self._stopping = False
        self._blocked_since = 0.0
        #: Hosts seen so far, over all hops (grows when a new responder answers).
        self.responders = 0

    # -- what the run looks like ------------------------------------------------------------

    def hops(self) -> list[Hop]:
        """Every hop probed so far, in TTL order, with statistics (rate limits attributed)."""
        if self._ordered is None:
            self._ordered = [self._hops[t] for t in sorted(self._hops)]
            self._ordered_stats = [h.stats for h in self._ordered if h.stats is not None]
        attribute(self._ordered_stats)
        return list(self._ordered)

    def _hop(self, ttl: int) -> Hop:
        hop = self._hops.get(ttl)
        if hop is None:
            hop = self._hops[ttl] = Hop(ttl, stats=HopStats())
            self._ordered = None
        return hop

    def _limit(self) -> int:
        s = self.schedule
        if self.dest_ttl is not None:
            return self.dest_ttl
        return min(s.max_ttl, max(s.first_ttl + s.window - 1, self._deepest + MAX_UNKNOWN))

    # -- sending ----------------------------------------------------------------------------

    def _start_rounds(self, now: float) -> None:
        if self._stopping or (self.cycles and self._started >= self.cycles):
            return
        if self._next_at is None:
            self._next_at = now
        if now < self._next_at:
            return
        self._started += 1
        current = _Round(self._started, now)
        current.waiting = [
            ttl
            for ttl in range(self.schedule.first_ttl, self._limit() + 1)
            if self.pacer.allowed(ttl, 0, now)
        ]
        self._rounds.append(current)
        self._send_waiting(now)
        self._next_at += self.interval
        if self._next_at < now:  # fell behind: go on from now, do not burst to catch up
            self._next_at = now + self.interval

    def _send_waiting(self, now: float) -> None:
        """Send the probes of rounds that are waiting for sequence numbers, oldest first."""
        for r in self._rounds:
            while r.waiting:
                ttl = r.waiting[0]
                if self.dest_ttl is not None and ttl > self.dest_ttl:
                    r.waiting.clear()
                    break
                probe = self.engine.send(ttl, 0, now, r.number)
                if probe is None:
                    return  # every sequence number is held or resting: wait
                r.waiting.pop(0)
                probe.budgeted = self.pacer.sent(ttl, 0, now)
                r.probes.append(probe)
                self._in_flight[probe] = now + self.schedule.wait.max
                self._stale = True  # worked out once the driver has set the send time

    # -- waiting ----------------------------------------------------------------------------

    def _deadline(self, p: Probe) -> float:
        """HERE x the worst round trip of the hop; for a hop that never answered, NEAR x
        the worst of the hops behind it; else MAX."""
        here = self._worst.get(p.ttl)
        later = None
        if here is None:
            later = max((w for t, w in self._worst.items() if t > p.ttl), default=None)
        return p.sent + self.schedule.wait.timeout(here, later)

    def _deadlines(self) -> dict[Probe, float]:
        """``_in_flight``, its give-up times up to date."""
        in_flight = self._in_flight
        if self._stale:
            for p in in_flight:
                in_flight[p] = self._deadline(p)
            self._stale = False
        return in_flight

    def _expire(self, now: float) -> None:
        for p in [p for p, deadline in self._deadlines().items() if now >= deadline]:
            del self._in_flight[p]
            p.expired = True
            self._held.append(p)
            stats = self._hop(p.ttl).stats
            assert stats is not None
            stats.sent += 1
            stats.unanswered += 1
            if p.budgeted:
                stats.sent_budgeted += 1
                stats.unanswered_budgeted += 1
            if not p.budgeted and stats.received and self._answered_behind(p):
                self.pacer.withheld(p.ttl, p.flow)
        horizon = now - self.schedule.wait.max
        while self._held and (self._held[0].sent <= horizon or self._held[0].result is not None):
            self.engine.release(self._held.popleft(), now)

    def _answered_behind(self, p: Probe) -> bool:
        """Whether a probe of ``p``'s round to a farther hop was answered."""
        for r in self._rounds:
            if r.number == p.round:
                return any(q.result is not None and q.ttl > p.ttl for q in r.probes)
        return False

    def wakeup(self) -> float | None:
        """The next round's start; the first give-up time once no round is to come (while
        rounds come, at most :data:`LINGER` after it: given-up probes wait to be counted
        until the strategy wakes anyway, and answers to them that came before are
        counted as answers)."""
        deadlines = self._deadlines()
        times = [min(deadlines.values())] if deadlines else []
        if not self._stopping and not (self.cycles and self._started >= self.cycles):
            after = self._next_at if self._next_at is not None else 0.0
            times = [min(after, times[0] + LINGER)] if times else [after]
        if any(r.waiting for r in self._rounds):
            times.append(self._blocked_since + _BLOCKED_POLL)
        return min(times) if times else None

    # -- answers ----------------------------------------------------------------------------

    def answered(self, probe: Probe, match: Match, result: ProbeResult) -> None:
        rtt_ms = result.rtt_ms
        address = result.address
        assert address is not None and rtt_ms is not None
        ttl = probe.ttl
        when = probe.sent + rtt_ms / 1000.0
        if self.dest_ttl is not None and ttl > self.dest_ttl:
            self._cancel(probe, when)
            return
        late = probe.expired
        probe.result = result
        self._in_flight.pop(probe, None)
        self.engine.release(probe, when)
        hop = self._hops.get(ttl) or self._hop(ttl)
        stats = hop.stats
        assert stats is not None
        if late:
            stats.unanswered -= 1
            stats.unanswered_budgeted -= probe.budgeted
        else:
            stats.sent += 1
            stats.sent_budgeted += probe.budgeted
        stats.add(rtt_ms)
        host = hop.hosts.get(address)
        if host is None:
            host = hop.hosts[address] = Host(address, stats=RttStats())
            self.responders += 1
        host.stats.add(rtt_ms)  # type: ignore[union-attr]  # every host here has stats
        rtt = rtt_ms / 1000.0
        worst = self._worst.get(ttl)
        if worst is None or rtt > worst:
            self._worst[ttl] = rtt
            self._stale = True
        if ttl > self._deepest:
            self._deepest = ttl
        self.pacer.learn(ttl, probe.flow, address, probe.sent)
        outcome = match.outcome
        if outcome is not Outcome.HOP:
            if outcome is Outcome.REACHED:
                self.reached = True
            if self.dest_ttl is None or ttl < self.dest_ttl:
                self._end_at(ttl, outcome, when)
        self.engine.emit(ProbeAnswered(probe, result, late))

    def _end_at(self, ttl: int, outcome: Outcome, now: float) -> None:
        """The destination (or an error that ends the path) answered at ``ttl``."""
        self.dest_ttl, self.end_outcome = ttl, outcome
        for p in [p for p in self._in_flight if p.ttl > ttl]:
            self._cancel(p, now)
        for t in [t for t in self._hops if t > ttl]:
            del self._hops[t]
            self._ordered = None

    def _cancel(self, probe: Probe, now: float) -> None:
        probe.cancelled = True
        self._in_flight.pop(probe, None)
        self.engine.release(probe, now)

    # -- reporting --------------------------------------------------------------------------

    def poll(self, now: float) -> None:
        if self.finished:
            return
        self._expire(now)
        self._send_waiting(now)
        self._start_rounds(now)
        self._blocked_since = now
        self._complete_rounds()
        done_sending = self._stopping or (self.cycles and self._started >= self.cycles)
        if done_sending and not self._rounds:
            self._finish(now, end_name(self.end_outcome))

    def _complete_rounds(self) -> None:
        while (
            self._rounds
            and not self._rounds[0].waiting
            and all(p.done for p in self._rounds[0].probes)
        ):
            r = self._rounds.popleft()
            self.engine.emit(RoundCompleted(Round(r.number, r.started, self._results(r))))

    def _results(self, r: _Round) -> tuple[tuple[int, ProbeResult], ...]:
        probes = [p for p in r.probes if not p.cancelled]
        deepest = max((p.ttl for p in probes if p.result is not None), default=0)
        out = []
        for p in probes:
            result = p.result
            if result is None:
                hop = self._hops.get(p.ttl)
                answers = hop is not None and hop.stats is not None and hop.stats.received > 0
                result = ProbeResult(flow=p.flow, rate_limited=answers and p.ttl < deepest)
            out.append((p.ttl, result))
        return tuple(out)

    def _finish(self, now: float, end: str) -> None:
        for p in self._in_flight:
            self.engine.release(p, now)
        while self._held:
            self.engine.release(self._held.popleft(), now)
        self._in_flight.clear()
        self.finished = True
        self.engine.emit(TraceFinished(end))

    def stop(self, now: float) -> None:
        """Interrupted: probes still in flight are not counted (given-up ones are)."""
        if self.finished:
            return
        self._stopping = True
        self._complete_rounds()
        self._rounds.clear()
        self._finish(now, "interrupted")
