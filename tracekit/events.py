"""What the engine reports, in one stream: answers, complete hops, complete rounds, the end.

:meth:`tracekit.engine.Engine.take_events` hands these out in the order they happened;
:mod:`tracekit.session` turns each into hook calls and output calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracekit.model import Hop, ProbeResult


@dataclass(eq=False, slots=True)
class Probe:
    """One probe: sent with ``ttl`` on ``flow``, told apart by ``seq`` on the wire."""

    #: Counts every probe of the engine from 0; never wraps (``seq`` does).
    id: int
    ttl: int
    flow: int
    #: The sequence number on the wire, below the method's ``sequence_space``; recycled.
    seq: int
    #: The round it belongs to (0 for a one-shot trace).
    round: int = 0
    #: Send time, seconds since the epoch (set by the driver).
    sent: float = math.nan
    #: The packet, until the driver sends it.
    packet: bytes = b""
    result: ProbeResult | None = None
    #: Given up without an answer (an answer may still come while ``seq`` is held).
    expired: bool = False
    #: Not wanted any more (past the destination): neither answer nor loss counts.
    cancelled: bool = False
    #: Sent within the router's assumed ICMP budget (:mod:`tracekit.pacing`): if it goes
    #: unanswered, a rate limit cannot explain it.
    budgeted: bool = True

    @property
    def done(self) -> bool:
        return self.result is not None or self.expired or self.cancelled


@dataclass(slots=True)
class ProbeAnswered:
    """An answer was matched to ``probe``; ``late`` when the probe had been given up.

    Made for every answer, so not frozen (a frozen dataclass costs a microsecond more to
    make); treat it as read-only."""

    probe: Probe
    result: ProbeResult
    late: bool = False


@dataclass(frozen=True, slots=True)
class HopCompleted:
    """One-shot traces: ``hop`` and every hop before it are complete (TTL order)."""

    hop: Hop


@dataclass(frozen=True, slots=True)
class Round:
    """One round of a continuous run: one probe per hop, sent together."""

    #: Counts rounds from 1.
    number: int
    #: When its first probe went out (seconds since the epoch).
    started: float
    #: ``(ttl, result)`` for each probe of the round, in TTL order; hops that were paced
    #: (not probed in this round) are absent.
    results: tuple[tuple[int, ProbeResult], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class RoundCompleted:
    """Continuous runs: every probe of ``round`` is answered or given up (round order)."""

    round: Round


@dataclass(frozen=True, slots=True)
class TraceFinished:
    """Nothing more will be sent or taken. ``end``: ``"reached"``, ``"unreachable"``,
    ``"max-ttl"`` or ``"interrupted"``."""

    end: str


Event = ProbeAnswered | HopCompleted | RoundCompleted | TraceFinished
