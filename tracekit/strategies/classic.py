"""The one-shot trace: ``-q`` probes per hop, a window in flight, the adaptive wait.

Probes go out in TTL order, up to ``window`` at once (``traceroute -N``). A probe is given up
by the :class:`~tracekit.strategies.Wait` rule; an answer that comes later still counts until
its hop is reported. Hops are reported in TTL order as soon as they and all before them are
complete; the trace ends at the destination (or the first error that ends it), or at
``max_ttl``.

Where a hop answered some probes and not others while the hops behind it answered, the
unanswered ones were withheld (an ICMP rate limit), not lost: they are marked
``rate_limited`` (:func:`tracekit.stats.withheld`).
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracekit.events import HopCompleted, Probe, ProbeAnswered, TraceFinished
from tracekit.probes import Match, Outcome
from tracekit.stats import withheld
from tracekit.strategies import Strategy, Wait, end_name, hop_of

if TYPE_CHECKING:
    from tracekit.model import Hop, ProbeResult


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
    #: Least time between two probes with the same TTL, in seconds.
    hop_interval: float = 0.0
    #: Send each window's worth of probes in a random order of TTLs, not TTL by TTL (as
    #: yarrp does), so the probes of many traces at once do not reach one router in bursts.
    shuffle: bool = False


def blocks(pending: list[int], block: int) -> list[list[int]]:
    """``pending`` cut in runs of ``block`` entries, the last run first (to be popped)."""
    return [pending[i : i + block] for i in range(0, len(pending), block)][::-1]


class Classic(Strategy):
    """One pass over the TTLs, ``queries`` probes each."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = s = schedule
        #: TTLs still to probe, one entry per probe, in order.
        self._pending = [ttl for ttl in range(s.first_ttl, s.max_ttl + 1) for _ in range(s.queries)]
        #: With ``shuffle``: the runs of ``window`` entries not yet in ``_pending``, each put
        #: there in a random order when ``_pending`` runs short (most traces end long before
        #: ``max_ttl``: shuffling every run up front cost a fleet more than their probes).
        self._runs: list[list[int]] = []
        if s.shuffle:
            self._runs, self._pending = blocks(self._pending, s.window), []
        self._at: dict[int, list[Probe]] = {}
        self._in_flight: list[Probe] = []
        #: Ids of answered probes, in order, with their round trips: for NEAR.
        self._answered_ids: list[int] = []
        self._answered_rtts: list[float] = []
        self._hop_rtt: dict[int, float] = {}
        #: Seconds each probe in flight is waited for (by probe id): they change only with
        #: an answer (:meth:`answered` clears them), and are asked for at every poll.
        self._timeouts: dict[int, float] = {}
        #: The last TTL that counts: lowered when the destination (or an error) answers.
        self.end_ttl = s.max_ttl
        self.end_outcome: Outcome | None = None
        self._reported = s.first_ttl - 1
        self._last_send = float("-inf")
        self._last_send_at: dict[int, float] = {}
        if self._runs:
            self._top_up()

    # -- sending ----------------------------------------------------------------------------

    def _earliest(self, ttl: int) -> float:
        s = self.schedule
        at_ttl = self._last_send_at.get(ttl, float("-inf"))
        return max(self._last_send + s.send_interval, at_ttl + s.hop_interval)

    def _top_up(self) -> None:
        """Put runs of ``_runs`` in ``_pending``, each in a random order, while it holds
        less than a window: when the window has room (so it is never short of probes it
        could send), not before (a trace that ends early never shuffles the rest)."""
        later, pending = self._runs, self._pending
        if later and later[-1][0] > self.end_ttl:
            later.clear()  # runs go up in TTL: the rest lies past the end, never sent
        while later and len(pending) < self.schedule.window:
            part = later.pop()
            random.shuffle(part)
            pending += part

    def _send_due(self, now: float) -> None:
        if self._runs and len(self._in_flight) < self.schedule.window:
            self._top_up()
        kept: list[int] = []
        pending = iter(self._pending)
        for ttl in pending:
            if ttl > self.end_ttl:
                continue  # past the destination: never sent (the end only comes nearer)
            if len(self._in_flight) >= self.schedule.window:
                kept.append(ttl)
                break
            if self._earliest(ttl) > now:
                kept.append(ttl)  # paced: a probe for another TTL may go first
                continue
            probe = self.engine.send(ttl, 0, now)
            if probe is None:
                kept.append(ttl)  # no sequence number free: wait for answers
                break
            self._last_send = self._last_send_at[ttl] = now
            self._at.setdefault(ttl, []).append(probe)
            self._in_flight.append(probe)
        kept.extend(pending)
        self._pending = kept

    # -- waiting ----------------------------------------------------------------------------

    def _deadline(self, p: Probe) -> float:
        timeout = self._timeouts.get(p.id)
        if timeout is None:
            timeout = self.schedule.wait.timeout(self._hop_rtt.get(p.ttl), self._later(p))
            self._timeouts[p.id] = timeout
        return p.sent + timeout

    def _later(self, p: Probe) -> float | None:
        """The round trip NEAR scales: of the first answer to a probe sent after ``p``
        (traceroute's rule); when TTLs go out in a random order, of the nearest hop past
        ``p``'s that answered."""
        if self.schedule.shuffle:
            nearest = min((ttl for ttl in self._hop_rtt if ttl > p.ttl), default=None)
            return None if nearest is None else self._hop_rtt[nearest]
        i = bisect.bisect_right(self._answered_ids, p.id)
        return self._answered_rtts[i] if i < len(self._answered_ids) else None

    def _expire(self, now: float) -> None:
        for p in list(self._in_flight):
            if now >= self._deadline(p):
                p.expired = True
                self._in_flight.remove(p)

    def wakeup(self) -> float | None:
        times = [self._deadline(p) for p in self._in_flight]
        if self._runs and not self._pending and len(self._in_flight) < self.schedule.window:
            self._top_up()
        if self._pending and len(self._in_flight) < self.schedule.window:
            sendable = [t for t in set(self._pending) if t <= self.end_ttl]
            if sendable:
                times.append(min(self._earliest(t) for t in sendable))
        return min(times) if times else None

    # -- answers ----------------------------------------------------------------------------

    def answered(self, probe: Probe, match: Match, result: ProbeResult) -> None:
        if probe.ttl <= self._reported or probe.ttl > self.end_ttl:
            return  # its hop is already reported, or lies past the end of the trace
        probe.result = result
        if probe in self._in_flight:
            self._in_flight.remove(probe)
        rtt = (result.rtt_ms or 0.0) / 1000.0
        self._timeouts.clear()  # NEAR and HERE may have a new round trip to scale
        i = bisect.bisect_left(self._answered_ids, probe.id)
        self._answered_ids.insert(i, probe.id)
        self._answered_rtts.insert(i, rtt)
        self._hop_rtt.setdefault(probe.ttl, rtt)
        if match.outcome is not Outcome.HOP and (
            probe.ttl < self.end_ttl or self.end_outcome is None
        ):
            self.end_ttl = probe.ttl
            self.end_outcome = match.outcome
            self._in_flight = [q for q in self._in_flight if q.ttl <= probe.ttl]
        self.engine.emit(ProbeAnswered(probe, result, late=probe.expired))

    # -- reporting --------------------------------------------------------------------------

    def poll(self, now: float) -> None:
        if self.finished:
            return
        self._send_due(now)
        self._expire(now)
        self._complete_hops(now)

    def _complete_hops(self, now: float) -> None:
        q = self.schedule.queries
        while self._reported < self.end_ttl:
            ttl = self._reported + 1
            probes = self._at.get(ttl, [])
            if len(probes) < q or not all(p.done for p in probes):
                return
            self._reported = ttl
            for p in probes:
                self.engine.release(p, now)
            self.engine.emit(HopCompleted(self._hop(ttl, probes)))
        self._finish(now, end_name(self.end_outcome))

    def _finish(self, now: float, end: str) -> None:
        for probes in self._at.values():
            for p in probes:
                self.engine.release(p, now)
        self.finished = True
        self.engine.emit(TraceFinished(end))

    def stop(self, now: float) -> None:
        if not self.finished:
            self._finish(now, "interrupted")

    def _hop(self, ttl: int, probes: list[Probe]) -> Hop:
        hop = hop_of(ttl, probes)
        assert hop.stats is not None
        results = hop.probes
        if hop.stats.received:
            n = withheld(hop.stats.unanswered, hop.stats.sent, self._behind(ttl))
            hop.stats.rate_limited = n
            for r in reversed(results):
                if n and r.address is None:
                    r.rate_limited = True
                    n -= 1
        return hop

    def _behind(self, ttl: int) -> list[tuple[int, int]]:
        """``(unanswered, sent)`` of the answering hops after ``ttl`` whose probes are all
        done by now."""
        out = []
        for later in range(ttl + 1, self.end_ttl + 1):
            probes = self._at.get(later, [])
            if len(probes) < self.schedule.queries or not all(p.done for p in probes):
                continue
            answered = sum(1 for p in probes if p.result is not None)
            if answered:
                out.append((len(probes) - answered, len(probes)))
        return out
