"""Strategies: what to probe next, when to give a probe up, and what to report.

The engine (:mod:`tracekit.engine`) calls a strategy from :meth:`Engine.due` (``poll``) and
for every matched answer (``answered``); the strategy sends through ``engine.send`` and
reports through ``engine.emit``. Built in:

- :class:`tracekit.strategies.classic.Classic`: the one-shot trace, ``-q`` probes per hop;
- :class:`tracekit.strategies.rounds.Rounds`: continuous mode (``-c``), one probe per hop a
  round, statistics, per-router pacing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracekit.model import Hop, Host, ProbeResult
from tracekit.probes import Match, Outcome
from tracekit.stats import HopStats, RttStats

if TYPE_CHECKING:
    from tracekit.engine import Engine
    from tracekit.events import Probe

#: Added to measured round trips before scaling them (``traceroute``'s DEF_WAIT_PREC):
#: timer and scheduling resolution.
WAIT_PRECISION = 0.001


@dataclass(frozen=True)
class Wait:
    """How long to wait for an answer, as in ``traceroute -w MAX,HERE,NEAR``: at most MAX
    seconds, but no longer than HERE times the round trip of an answer from the same hop,
    or NEAR times that of an answer to a probe sent later."""

    max: float = 5.0
    here: float = 3.0
    near: float = 10.0

    def timeout(self, here_rtt: float | None, later_rtt: float | None) -> float:
        """Seconds to wait for a probe, given a round trip seen at its hop (``here_rtt``)
        and one of a probe sent after it (``later_rtt``), in seconds."""
        if here_rtt is not None and self.here:
            return min(self.here * (here_rtt + WAIT_PRECISION), self.max)
        if later_rtt is not None and self.near:
            return min(self.near * (later_rtt + WAIT_PRECISION), self.max)
        return self.max


class Strategy(ABC):
    """Decides what an :class:`~tracekit.engine.Engine` probes, and reports it."""

    engine: Engine
    #: True once the strategy has emitted ``TraceFinished``.
    finished: bool = False
    #: The strategy need not hear of an answer before its next :meth:`wakeup`: a driver
    #: whose packets carry the kernel's arrival times may read them then, all at once
    #: (:mod:`tracekit.driver`). False where what comes next depends on answers at once.
    patient: bool = False

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    def detach(self) -> None:
        """Let go of the engine (:meth:`Engine.close`); the strategy is not polled again."""
        self.__dict__.pop("engine", None)

    @abstractmethod
    def poll(self, now: float) -> None:
        """Give up overdue probes, send what is due, emit what is complete."""

    @abstractmethod
    def answered(self, probe: Probe, match: Match, result: ProbeResult) -> None:
        """An answer to ``probe`` (held, not yet answered) arrived."""

    @abstractmethod
    def wakeup(self) -> float | None:
        """When :meth:`poll` is next needed (epoch seconds), or ``None``."""

    @abstractmethod
    def stop(self, now: float) -> None:
        """End early (interrupted): emit what is complete, then ``TraceFinished``."""


def end_name(outcome: Outcome | None) -> str:
    """``TraceFinished.end`` for what ended a trace: an outcome, or ``None`` (max TTL)."""
    if outcome is Outcome.REACHED:
        return "reached"
    return "unreachable" if outcome is Outcome.UNREACHABLE else "max-ttl"


def hop_of(ttl: int, probes: list[Probe]) -> Hop:
    """The hop of ``probes`` sent with ``ttl``: their results, hosts and statistics."""
    results = [p.result or ProbeResult(flow=p.flow) for p in probes]
    stats = HopStats()
    hop = Hop(ttl=ttl, probes=results, stats=stats)
    for r in results:
        stats.sent += 1
        if r.address is None or r.rtt_ms is None:
            stats.unanswered += 1
            continue
        stats.add(r.rtt_ms)
        host = hop.hosts.get(r.address)
        if host is None:
            host = hop.hosts[r.address] = Host(r.address, stats=RttStats())
        assert host.stats is not None
        host.stats.add(r.rtt_ms)
    return hop
