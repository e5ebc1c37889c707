"""The sans-IO engine: which probes to send and when, and what the answers mean.

The engine does no I/O and reads no clock. A driver (:mod:`tracekit.driver`) asks it what is
due (:meth:`Engine.due`), sends those packets and tells it when (:meth:`Engine.sent`), feeds
it what arrives (:meth:`Engine.feed`), sleeps until :meth:`Engine.wakeup`, and passes on the
events (:meth:`Engine.take_events`). Tests drive it with a virtual clock and a simulated
path.

What to probe is the :class:`~tracekit.strategies.Strategy`'s business (one-shot, rounds,
multipath...). The engine keeps what every strategy needs: the probes in flight, their
sequence numbers, and matching answers to them.

Sequence numbers are taken from the method's ``sequence_space`` and recycled, so a run can
go on for days. A number is reused only after it has rested for :data:`QUARANTINE`
seconds, and an answer whose number is not held by a probe in flight is dropped: a late
answer to a recycled number is never taken for a newer probe's.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import TYPE_CHECKING

from tracekit.events import Event, Probe
from tracekit.model import ProbeResult

if TYPE_CHECKING:
    from tracekit.pacing import Rate
    from tracekit.probes import Match, ProbeMethod, Received
    from tracekit.strategies import Strategy

#: Seconds a released sequence number rests before it is used again.
QUARANTINE = 10.0


class Engine:
    """One trace: a probe method, a strategy, and the probes in flight between them."""

    def __init__(
        self,
        method: ProbeMethod,
        strategy: Strategy,
        quarantine: float = QUARANTINE,
        rate: Rate | None = None,
    ) -> None:
        self.method = method
        self.strategy = strategy
        self.quarantine = quarantine
        #: The cap on probes per second (``--rate``), shared with the run's other engines.
        self.rate = rate
        #: When a send was refused for want of the rate's tokens, since the strategy last
        #: polled (``None``: none was).
        self._starved_at: float | None = None
        self._space = method.sequence_space
        self._held: dict[int, Probe] = {}
        self._resting: dict[int, float] = {}
        #: ``(until, seq)`` of ``_resting``, in the order released: ended rests are dropped,
        #: so memory follows the probes of one quarantine, not the length of the run.
        self._released: deque[tuple[float, int]] = deque()
        self._next_seq = 0
        self._ids = itertools.count()
        self._outbox: list[Probe] = []
        self._events: list[Event] = []
        #: Answers that were ours but for no probe held (duplicates, or too late).
        self.stale = 0
        strategy.attach(self)

    # -- the driver's side ------------------------------------------------------------------

    def due(self, now: float) -> list[Probe]:
        """Give up overdue probes and return those to send now (each with its ``packet``)."""
        self._starved_at = None
        self.strategy.poll(now)
        out, self._outbox = self._outbox, []
        return out

    def sent(self, probe: Probe, when: float) -> None:
        """The driver sent ``probe`` at ``when`` (seconds since the epoch)."""
        probe.sent = when
        probe.packet = b""

    def feed(self, received: Received) -> bool:
        """Take one arrived packet; True if it was an answer to this trace."""
        match = self.method.match(received)
        if match is None:
            return False
        probe = self._held.get(match.seq)
        if probe is None or probe.result is not None or probe.cancelled:
            self.stale += 1
            return True
        self.strategy.answered(probe, match, self._result(probe, match, received))
        return True

    def wakeup(self) -> float | None:
        """When the engine next needs :meth:`due` (epoch seconds); ``None``: only when
        something arrives."""
        wake = self.strategy.wakeup()
        if self._starved_at is not None and self.rate is not None:
            # Nothing can go before the rate allows it; what else is due then is due a
            # little late (at most one probe's interval), which no give-up time minds.
            ready = self.rate.ready_at(self._starved_at)
            wake = ready if wake is None else max(wake, ready)
        return wake

    def take_events(self) -> list[Event]:
        """The events since the last call, in order."""
        out, self._events = self._events, []
        return out

    @property
    def finished(self) -> bool:
        return self.strategy.finished

    @property
    def starved(self) -> bool:
        """Whether the last :meth:`due` wanted to send more than the rate allowed."""
        return self._starved_at is not None

    def stop(self, now: float) -> None:
        """End the run early (Ctrl-C): the strategy reports what it has and finishes."""
        self.strategy.stop(now)

    def close(self) -> None:
        """The trace is over and its events taken: break the engine-strategy reference
        cycle, so that the trace is freed as soon as it is dropped. (The cyclic collector
        frees it too, but late: a run of many targets ends thousands of traces a second,
        and they piled up by the thousand between its full passes.)"""
        self.strategy.detach()

    # -- the strategy's side ----------------------------------------------------------------

    def send(self, ttl: int, flow: int, now: float, round: int = 0) -> Probe | None:
        """Build a probe to go out now; ``None`` when no sequence number is free or the
        rate (``--rate``) allows no probe yet: the strategy keeps it for later."""
        seq = self._next_seq
        if seq in self._held or seq in self._resting:
            taken = self._take_seq(now)
            if taken is None:
                return None
            seq = taken
        else:  # the next number is free (the usual case: what _take_seq would find first)
            self._next_seq = seq + 1 if seq + 1 < self._space else 0
        if self.rate is not None and not self.rate.take(now):
            self._starved_at = now
            return None
        packet = self.method.build(ttl, flow, seq)
        probe = Probe(next(self._ids), ttl, flow, seq, round, now, packet)
        self._held[seq] = probe
        self._outbox.append(probe)
        return probe

    def release(self, probe: Probe, now: float) -> None:
        """Free ``probe``'s sequence number: answers to it are no longer taken."""
        if self._held.get(probe.seq) is probe:
            del self._held[probe.seq]
            until = self._resting[probe.seq] = now + self.quarantine
            released = self._released
            released.append((until, probe.seq))
            while released and released[0][0] <= now:
                ended, seq = released.popleft()
                if self._resting.get(seq) == ended:
                    del self._resting[seq]

    def emit(self, event: Event) -> None:
        self._events.append(event)

    @property
    def held(self) -> int:
        """Sequence numbers held by probes (in flight, or waiting to be reported)."""
        return len(self._held)

    def _take_seq(self, now: float) -> int | None:
        for _ in range(self._space):
            seq = self._next_seq
            self._next_seq = (seq + 1) % self._space
            if seq in self._held:
                continue
            until = self._resting.get(seq)
            if until is not None:
                if until > now:
                    continue
                del self._resting[seq]
            return seq
        return None

    @staticmethod
    def _result(probe: Probe, match: Match, received: Received) -> ProbeResult:
        data = received.data
        header = ((data[0] & 0x0F) * 4 if data else 20) if received.ip_version == 4 else 40
        rtt = (received.time - probe.sent) * 1000.0
        return ProbeResult(
            received.address,
            rtt if rtt > 0.0 else 0.0,
            match.reply,
            received.ttl,
            list(match.mpls) if match.mpls else [],
            match.marker,
            probe.flow,
            False,
            len(data) - header if len(data) >= header else None,
        )
