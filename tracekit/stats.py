"""Statistics per hop and per responder, folded as results come (memory stays bounded).

Round trips follow mtr: ``last``, ``best``, ``worst``, ``avg`` and the sample standard
deviation (Welford's method); tracekit adds the median of the latest :data:`SAMPLE` answers
(a bounded window: the exact median for runs of up to that many answers). Jitter is
``|rtt - previous rtt|`` of one host, with its mean (``javg``), worst (``jmax``) and the
RFC 3550 smoothed value (``jint``, gain 1/16).

Loss is forwarding loss only. A router that withholds ICMP errors (a rate limit) while the
hops behind it still answer has not lost those probes: :func:`attribute` counts them as
``rate_limited``. The rule: a hop's forwarding loss cannot exceed the loss of any answering
hop behind it, because every probe to a farther hop crossed it too. So hop *k*'s loss is the
least loss rate seen at *k* or behind it; the rest of its unanswered probes were withheld.
Probes sent within the router's ICMP budget (a full second after a probe it answered,
:mod:`tracekit.pacing`) are never counted as withheld: a rate limit cannot explain their
silence, and their loss rate, where known, is the hop's own. The last answering hop has
nothing behind it: its silence is loss.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracekit.model import ProbeResult

#: Round trips kept per host and per hop for the median: the latest this many answers.
SAMPLE = 1000


def _sample() -> deque[float]:
    return deque(maxlen=SAMPLE)


@dataclass(slots=True)
class RttStats:
    """Round trips of the answers of one host (or of all hosts of a hop)."""

    received: int = 0
    last_ms: float | None = None
    best_ms: float | None = None
    worst_ms: float | None = None
    _mean: float = 0.0
    _m2: float = 0.0
    #: ``|rtt - previous rtt|`` of the latest answer, and its mean, worst and smoothed value.
    jitter_ms: float | None = None
    javg_ms: float | None = None
    jmax_ms: float | None = None
    jint_ms: float | None = None
    _jitters: int = 0
    #: The latest :data:`SAMPLE` round trips, oldest first (for :attr:`median_ms`).
    samples: deque[float] = field(default_factory=_sample, repr=False)

    def add(self, rtt_ms: float) -> None:
        """Fold in one answer's round trip (called twice for every answer: keep it lean)."""
        last = self.last_ms
        received = self.received + 1
        self.received = received
        self.last_ms = rtt_ms
        self.samples.append(rtt_ms)
        if last is None:
            self.best_ms = self.worst_ms = self._mean = rtt_ms
            return
        jitter = rtt_ms - last if rtt_ms >= last else last - rtt_ms
        self.jitter_ms = jitter
        javg = self.javg_ms
        if javg is None:
            self._jitters = 1
            self.javg_ms = self.jmax_ms = self.jint_ms = jitter
        else:
            jitters = self._jitters = self._jitters + 1
            self.javg_ms = javg + (jitter - javg) / jitters
            if jitter > self.jmax_ms:  # type: ignore[operator]  # set with javg_ms
                self.jmax_ms = jitter
            self.jint_ms += (jitter - self.jint_ms) / 16  # type: ignore[operator]
        if rtt_ms < self.best_ms:  # type: ignore[operator]  # set with last_ms
            self.best_ms = rtt_ms
        elif rtt_ms > self.worst_ms:  # type: ignore[operator]
            self.worst_ms = rtt_ms
        delta = rtt_ms - self._mean
        self._mean += delta / received
        self._m2 += delta * (rtt_ms - self._mean)

    @property
    def avg_ms(self) -> float | None:
        return self._mean if self.received else None

    @property
    def median_ms(self) -> float | None:
        """The median of the latest :data:`SAMPLE` answers (of all of them, up to that
        many); the mean of the middle two for an even number."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[middle]
        return (ordered[middle - 1] + ordered[middle]) / 2

    @property
    def stdev_ms(self) -> float | None:
        """Sample standard deviation (as mtr's StDev); 0 for a single answer."""
        if not self.received:
            return None
        return math.sqrt(self._m2 / (self.received - 1)) if self.received > 1 else 0.0


@dataclass(slots=True)
class HopStats(RttStats):
    """What became of the probes of one hop."""

    #: Probes whose fate is known: answered, or given up.
    sent: int = 0
    #: Probes given up without an answer (lost or withheld).
    unanswered: int = 0
    #: Of ``unanswered``, those withheld by the hop (an ICMP rate limit), not lost;
    #: set by :func:`attribute`.
    rate_limited: int = 0
    #: Of ``sent`` and ``unanswered``: probes sent within the hop's assumed ICMP budget,
    #: whose silence a rate limit cannot explain (:mod:`tracekit.pacing`).
    sent_budgeted: int = 0
    unanswered_budgeted: int = 0

    @property
    def lost(self) -> int:
        """Probes lost in forwarding: unanswered and not withheld."""
        return self.unanswered - self.rate_limited

    @property
    def loss_pct(self) -> float | None:
        """Forwarding loss in percent; ``None`` for a hop that never answered (silent:
        its loss cannot be told)."""
        if not self.sent or not self.received:
            return None
        return 100.0 * self.lost / self.sent

    @property
    def rate_limited_pct(self) -> float | None:
        return 100.0 * self.rate_limited / self.sent if self.sent else None


def withheld(
    unanswered: int, sent: int, behind: Iterable[tuple[int, int]], own: float | None = None
) -> int:
    """How many of ``unanswered`` probes (out of ``sent``) a hop withheld, given the
    ``(unanswered, sent)`` of the answering hops behind it, and ``own``: the hop's loss
    rate among its probes that a rate limit cannot explain, where known."""
    behind = list(behind)
    if not sent or not unanswered or not behind:
        return 0  # nothing behind it answered: its silence is loss as far as can be told
    if own is not None:
        rate = own
    else:
        rate = min([unanswered / sent] + [lost / n for lost, n in behind if n])
    return max(0, unanswered - round(rate * sent))


def attribute(hops: Sequence[HopStats]) -> None:
    """Set ``rate_limited`` of every hop (in TTL order) by the rule above. Hops that never
    answered are silent, not rate-limited."""
    behind: list[tuple[int, int]] = []
    for stats in reversed(hops):
        if not stats.received:
            stats.rate_limited = 0
            continue
        unexplained = stats.unanswered - stats.unanswered_budgeted
        if not unexplained:  # what withheld() says, without its cost (every hop, every answer)
            stats.rate_limited = 0
        else:
            own = None
            if stats.sent_budgeted:
                own = stats.unanswered_budgeted / stats.sent_budgeted
            stats.rate_limited = withheld(
                unexplained, stats.sent - stats.sent_budgeted, behind, own
            )
        behind.append((stats.unanswered, stats.sent))


def fold(results: Iterable[ProbeResult]) -> HopStats:
    """The statistics of one hop's probe results (``rate_limited`` from their marks)."""
    stats = HopStats()
    for r in results:
        stats.sent += 1
        if r.address is None or r.rtt_ms is None:
            stats.unanswered += 1
            stats.rate_limited += r.rate_limited
        else:
            stats.add(r.rtt_ms)
    return stats
