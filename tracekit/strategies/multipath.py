"""Multipath discovery (``--mda``): every load-balanced interface at each hop, and the links.

Per-flow load balancers send each flow one way; a trace on one flow sees one path. This
strategy probes each TTL on many flows (the probe method's ``flows``: UDP or TCP ports, the
ICMP Paris checksum) until the stopping rule of the Multipath Detection Algorithm says a
further interface is unlikely (:func:`~tracekit.strategies.mda.probes_needed`).

Hop ``t`` is probed in steps, all within one poll as far as the window, ``--rate`` and
pacing allow (a probe ``engine.send`` refuses is asked for again at the next poll):

1. **Hop level** (MDA-Lite): flows that crossed ``t - 1`` first, at least one through each
   of its interfaces (enough to show a second successor where both hops have several:
   MDA-Lite's meshing test), then new flows, until ``n_k`` flows for the ``k - 1``
   interfaces seen at ``t``.
2. **Links**: each flow new at ``t`` is sent to ``t - 1`` too: a link is only what a flow
   answered at both hops shows, never inferred. Where step 4 finds an interface at ``t - 1``
   that hop ``t - 1``'s own steps did not, the flows reaching it are sent to ``t - 2``
   too, for its links from there.
3. **Meshing test**: once steps 1-2 are done, the links between ``t - 1`` and ``t`` are
   checked (:func:`~tracekit.strategies.mda.meshed`, :func:`~tracekit.strategies.mda.uneven`).
4. **Full MDA** where they are meshed or uneven: for each interface ``i`` at ``t - 1``,
   ``n_k`` flows *through i* for the ``k - 1`` successors of ``i`` seen, taken from the
   flows known to reach ``i`` (node control), and where too few are known, new flows sent
   to ``t - 1`` until enough reach ``i``.

The confidence is the trace's: its failure budget is spent half on the first hop that
branches, a quarter on the next..., and split evenly among a full-MDA hop's interfaces.

A hop is reported (``HopCompleted``) once the next two are done, since steps 2 and 4 may
still probe it. A probe unanswered at a hop where others were answered may have met a router's
ICMP rate limit (Linux: a burst of 6, then one a second): it is retried on the same flow
(:data:`RETRIES` times, not before :data:`~tracekit.pacing.SPACING` after it went). The
first retry at a TTL goes alone: if it is answered, the TTL is rate-limited and its probes
are paced from then on (``SPACING / k`` apart for ``k`` interfaces, halved after each
answer, doubled after each withheld probe); until then the TTL's retries go one at a time,
once a flow, unpaced: a silent interface costs one retry a flow, not a second each.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from tracekit.events import HopCompleted, Probe, ProbeAnswered, TraceFinished
from tracekit.model import Link, ProbeResult
from tracekit.pacing import SPACING
from tracekit.probes import Match, Outcome
from tracekit.strategies import Strategy, end_name, hop_of
from tracekit.strategies.mda import TABLES, meshed, probes_needed, uneven

if TYPE_CHECKING:
    from tracekit.strategies.classic import Schedule

__all__ = ["RETRIES", "TABLES", "Multipath", "probes_needed"]

#: Further tries on a flow whose answer a hop withheld (while others there answered).
RETRIES = 3
#: Hops before the one being probed that may still be probed (links), so not reported.
OPEN = 2


class Multipath(Strategy):
    """Probes each TTL on enough flows to find all its interfaces and links, hop after hop."""

    def __init__(
        self,
        schedule: Schedule,
        confidence: float,
        flows: int,
        spacing: float = SPACING,
        retries: int = RETRIES,
    ) -> None:
        self.schedule = schedule
        self.confidence = confidence
        self.flows = flows
        self.spacing = spacing
        self.retries = retries
        self.ttl = schedule.first_ttl
        self._at: dict[int, list[Probe]] = {}
        #: Per TTL: the flows sent there (or waiting for a retry), and who answered each.
        self._probed: dict[int, set[int]] = {}
        self._answer: dict[int, dict[int, str]] = {}
        self._in_flight: dict[Probe, None] = {}
        self._hop_rtt: dict[int, float] = {}
        self._next_flow = 0
        #: ``(ttl, flow)`` to try again, and not before when; tries made so far.
        self._retry: dict[tuple[int, int], float] = {}
        self._tries: Counter[tuple[int, int]] = Counter()
        #: Ids of retries in flight; TTLs where a retry was answered (a rate limit: paced
        #: from then on), and their last send.
        self._retrying: set[int] = set()
        self._limited: set[int] = set()
        self._last: dict[int, float] = {}
        #: Per rate-limited TTL: the gap between its probes, halved after each answered
        #: one and doubled after each withheld one (between ``spacing / 64`` and ``spacing``);
        #: ids of the probes so paced.
        self._gap: dict[int, float] = {}
        self._paced: set[int] = set()
        #: When pacing next lets a waiting probe go (for :meth:`wakeup`).
        self._blocked: float | None = None
        self._reported = schedule.first_ttl - 1
        #: Per hop done: the interfaces its own steps found.
        self._known: dict[int, set[str]] = {}
        #: Ids of probes whose answer ended the trace (the destination, an error).
        self._ends: set[int] = set()
        self.reached = False
        self.end_outcome: Outcome | None = None
        #: Probes sent in all.
        self.sent = 0
        #: TTLs probed with full MDA's per-interface rule (meshed or uneven links before).
        self.full: set[int] = set()
        #: Hops done that showed several interfaces (each halves the failure budget left).
        self.branched = 0

    # -- what it found ----------------------------------------------------------------------

    def links(self) -> list[Link]:
        """Every link between consecutive hops, with the flows that show it: answered at
        both (none is inferred, so none is invented)."""
        found: dict[tuple[int, str, str], Link] = {}
        for ttl in sorted(self._at):
            here = self._answer.get(ttl, {})
            for flow, target in sorted(self._answer.get(ttl + 1, {}).items()):
                source = here.get(flow)
                if source is None:
                    continue
                link = found.get((ttl, source, target))
                if link is None:
                    link = found[(ttl, source, target)] = Link(ttl, source, target)
                link.flows.append(flow)
        return list(found.values())

    def _seen(self, ttl: int) -> set[str]:
        return set(self._answer.get(ttl, {}).values())

    def _needed(self, seen: int, share: int = 1) -> int:
        """The stopping rule at this hop, for one of ``share`` decisions that split its
        budget. The trace's failure budget ``1 - confidence`` is spent half on the first
        hop that branches, a quarter on the next...: a trace through several diamonds still
        finds them all with the confidence asked for (the hop-level rule uses the hop's
        share, each interface's rule of full MDA an equal part of it; ``benchmarks/mda.py``
        measures the outcome)."""
        epsilon = (1 - self.confidence) / 2 ** (self.branched + 1) / share
        return probes_needed(seen, 1 - epsilon)

    # -- probing ----------------------------------------------------------------------------

    def poll(self, now: float) -> None:
        self._blocked = None
        self._expire(now)
        while not self.finished:
            if self._work(now) or self._in_flight:
                return
            if self._meshing_found():
                continue  # full MDA for this hop: more to send
            self._hop_done(now)

    def _expire(self, now: float) -> None:
        for p in [p for p in self._in_flight if now >= self._deadline(p)]:
            del self._in_flight[p]
            p.expired = True
            key = (p.ttl, p.flow)
            answers = self._answer.get(p.ttl, {})
            if p.id in self._paced:
                self._gap[p.ttl] = min(self._gap[p.ttl] * 2, self.spacing)
            self._retrying.discard(p.id)
            tries = self._tries[key]
            if p.flow in answers or not answers or tries >= self.retries:
                continue
            if tries == 0 or p.ttl in self._limited:  # withheld where others answered
                self._tries[key] += 1
                self._retry[key] = p.sent + self.spacing

    def _work(self, now: float) -> bool:
        """Send what the hop still needs; True while anything is to be sent or waited for."""
        busy = False
        for wishes in (self._retries, self._hop_level, self._link_flows, self._per_interface):
            for ttl, flow in wishes(now):
                if not self._send(ttl, flow, now):
                    return True
                busy = True
        return busy or any(ttl >= self.ttl - OPEN for ttl, _ in self._retry)

    def _send(self, ttl: int, flow: int, now: float) -> bool:
        """Send a probe; False when it must wait (window, pacing, ``--rate``, numbers)."""
        if len(self._in_flight) >= self.schedule.window:
            return False
        if ttl in self._limited:
            ready = self._last.get(ttl, -1e18) + self._gap[ttl]
            if now < ready:
                self._blocked = ready if self._blocked is None else min(self._blocked, ready)
                return False
        probe = self.engine.send(ttl, flow, now)
        if probe is None:
            return False
        if self._retry.pop((ttl, flow), None) is not None:
            self._retrying.add(probe.id)
        if ttl in self._limited:
            self._paced.add(probe.id)
        self._at.setdefault(ttl, []).append(probe)
        self._probed.setdefault(ttl, set()).add(flow)
        self._in_flight[probe] = None
        self._last[ttl] = now
        self._next_flow = max(self._next_flow, flow + 1)
        self.sent += 1
        return True

    def _retries(self, now: float) -> list[tuple[int, int]]:
        """Retries due. Until one at a TTL is answered (a rate limit, then), they go one
        at a time there: a silent interface costs a retry's wait, not a second a flow."""
        out = []
        scouting = {p.ttl for p in self._in_flight if p.id in self._retrying}
        for (ttl, flow), when in sorted(self._retry.items(), key=lambda item: item[1]):
            if ttl < self.ttl - OPEN or flow in self._answer.get(ttl, {}):
                del self._retry[(ttl, flow)]
                continue
            if ttl not in self._limited and ttl in scouting:
                continue  # an answer to the retry in flight comes first
            if when <= now:
                out.append((ttl, flow))
                scouting.add(ttl)
            else:
                self._blocked = when if self._blocked is None else min(self._blocked, when)
        return out

    def _new_flows(self, count: int) -> list[int]:
        return list(range(self._next_flow, min(self._next_flow + count, self.flows)))

    def _hop_level(self, now: float) -> list[tuple[int, int]]:
        """Flows for this TTL: through each interface before first, then any, then new."""
        t = self.ttl
        probed = self._probed.get(t, set())
        before = self._answer.get(t - 1, {})
        interfaces = len(set(before.values()))
        # MDA-Lite's meshing test: enough flows through each interface before to see a
        # second successor within the hop's budget, where both hops have several
        phi = self._needed(1) if interfaces > 1 and len(self._seen(t)) > 1 else 1
        through = Counter(before[f] for f in probed if f in before)
        out = []
        for flow, address in before.items():
            if flow not in probed and through[address] < phi:
                through[address] += 1
                out.append(flow)
        missing = self._needed(len(self._seen(t))) - len(probed) - len(out)
        if missing > 0:
            chosen = set(out)
            spare = sorted(f for f in self._probed.get(t - 1, ()) if f not in probed | chosen)
            out += spare[:missing]
            out += self._new_flows(missing - len(spare[:missing]))
        return [(t, flow) for flow in out]

    def _link_flows(self, now: float) -> list[tuple[int, int]]:
        """Flows answered here but not sent to the hop before: which interface each crossed
        (even where it showed one: it may have more, and a link is only what a flow shows).
        A hop back, the flows reaching an interface of the hop before found only by full
        MDA here (the hop's own steps missed it): its links from two hops back."""
        t = self.ttl
        out: list[tuple[int, int]] = []
        if t - 1 >= self.schedule.first_ttl:
            probed = self._probed.get(t - 1, set())
            out += [(t - 1, f) for f in self._answer.get(t, {}) if f not in probed]
        if t - 2 >= self.schedule.first_ttl:
            probed, known = self._probed.get(t - 2, set()), self._known.get(t - 1, set())
            late = self._answer.get(t - 1, {}).items()
            out += [(t - 2, f) for f, a in late if a not in known and f not in probed]
        return out

    def _per_interface(self, now: float) -> list[tuple[int, int]]:
        """Full MDA: ``n_k`` flows through each interface of the hop before, for its own
        ``k - 1`` successors; new flows to the hop before where too few are known."""
        t = self.ttl
        if t not in self.full:
            return []
        before = self._answer.get(t - 1, {})
        here = self._answer.get(t, {})
        probed = self._probed.get(t, set())
        groups: dict[str, list[int]] = {}
        for flow, address in before.items():
            groups.setdefault(address, []).append(flow)
        out: list[tuple[int, int]] = []
        short = 0
        for flows in groups.values():
            sent = [f for f in flows if f in probed]
            successors = {here[f] for f in sent if f in here}
            deficit = self._needed(len(successors), len(groups)) - len(sent)
            if deficit <= 0:
                continue
            spare = [f for f in flows if f not in probed][:deficit]
            out += [(t, f) for f in spare]
            short = max(short, deficit - len(spare))
        if short and not self._pending(t - 1):
            out += [(t - 1, f) for f in self._new_flows(short * len(groups))]
        return out

    def _pending(self, ttl: int) -> bool:
        return any(p.ttl == ttl for p in self._in_flight) or any(k[0] == ttl for k in self._retry)

    def _meshing_found(self) -> bool:
        """MDA-Lite's test, once the hop-level steps are done: whether this hop needs
        full MDA (links from the hop before meshed or uneven)."""
        t = self.ttl
        if t in self.full or len(self._seen(t - 1)) < 2:
            return False
        before = self._answer.get(t - 1, {})
        links = [(before[f], b) for f, b in self._answer.get(t, {}).items() if f in before]
        if meshed(links) or uneven(links):
            self.full.add(t)
            return True
        return False

    def _report(self, last: int, now: float) -> None:
        """Emit the hops not reported yet up to ``last`` (nothing probes them any more)."""
        for ttl in range(max(self._reported + 1, self.schedule.first_ttl), last + 1):
            self._reported = ttl
            probes = self._at.get(ttl, [])
            for p in probes:
                self.engine.release(p, now)
            self.engine.emit(HopCompleted(hop_of(ttl, probes)))

    def _hop_done(self, now: float) -> None:
        self._report(self.ttl - OPEN, now)
        self._known[self.ttl] = self._seen(self.ttl)
        self.branched += len(self._seen(self.ttl)) > 1
        answered = [p for p in self._at.get(self.ttl, []) if p.result is not None]
        ended = bool(answered) and all(p.id in self._ends for p in answered)
        if ended or self.ttl >= self.schedule.max_ttl:
            self._report(self.ttl, now)
            self.finished = True
            self.engine.emit(TraceFinished(end_name(self.end_outcome)))
            return
        self.ttl += 1
        self._retry = {k: v for k, v in self._retry.items() if k[0] >= self.ttl - OPEN}

    def _deadline(self, p: Probe) -> float:
        return p.sent + self.schedule.wait.timeout(self._hop_rtt.get(p.ttl), None)

    def wakeup(self) -> float | None:
        times = [self._deadline(p) for p in self._in_flight]
        if self._blocked is not None:
            times.append(self._blocked)
        return min(times, default=None)

    def answered(self, probe: Probe, match: Match, result: ProbeResult) -> None:
        if probe.ttl < self.ttl - OPEN or probe.result is not None:
            return  # a hop already reported
        probe.result = result
        self._in_flight.pop(probe, None)
        if probe.id in self._paced:
            self._gap[probe.ttl] = max(self._gap[probe.ttl] / 2, self.spacing / 64)
        elif probe.id in self._retrying and probe.ttl not in self._limited:
            self._limited.add(probe.ttl)  # withheld, then answered: a rate limit
            self._gap[probe.ttl] = self.spacing / max(1, len(self._seen(probe.ttl)))
        if result.address is not None:
            self._answer.setdefault(probe.ttl, {})[probe.flow] = result.address
            self._retry.pop((probe.ttl, probe.flow), None)
        self._hop_rtt.setdefault(probe.ttl, (result.rtt_ms or 0.0) / 1000.0)
        if match.outcome is not Outcome.HOP:
            self._ends.add(probe.id)
            self.end_outcome = match.outcome
            self.reached = self.reached or match.outcome is Outcome.REACHED
        self.engine.emit(ProbeAnswered(probe, result, late=probe.expired))

    def stop(self, now: float) -> None:
        if not self.finished:
            self._report(self.ttl - 1, now)
            self.finished = True
            self.engine.emit(TraceFinished("interrupted"))
