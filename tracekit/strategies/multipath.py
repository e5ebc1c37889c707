"""Multipath discovery (``--mda``): every load-balanced interface at each hop, and the links.

Per-flow load balancers send each flow one way; a trace on one flow sees one path. This
strategy probes each TTL on many flows (the probe method's ``flows``: UDP destination ports,
the ICMP Paris checksum) until the stopping rule of the Multipath Detection Algorithm says a
further interface is unlikely: having seen ``k - 1`` interfaces at a hop, ``n_k`` probes rule
out a ``k``-th with probability ``1 - epsilon`` (Diamond-Miner's closed form,
:func:`probes_needed`: 6, 11, 16, 21, 27... at 95 %).

Flows are reused from hop to hop: TTL ``t + 1`` is probed first with the flows that probed TTL
``t``, so every interface at ``t`` gets successors, and each flow seen at both hops is a link
(``links``). This is the hop-level rule of MDA-Lite, exact for uniform, unmeshed diamonds;
the per-interface rule of full MDA (for meshed diamonds) is still to come.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tracekit.events import HopCompleted, Probe, ProbeAnswered, TraceFinished
from tracekit.model import Link, ProbeResult
from tracekit.probes import Match, Outcome
from tracekit.strategies import Strategy, end_name, hop_of

if TYPE_CHECKING:
    from tracekit.strategies.classic import Schedule

#: Probes needed having seen 1, 2, ... 10 interfaces: the table MDA implementations
#: publish (scamper's tracelb, libparistraceroute), at 95 % and 99 %.
TABLES = {
    0.95: (6, 11, 16, 21, 27, 33, 38, 44, 51, 57),
    0.99: (8, 15, 21, 28, 36, 43, 51, 58, 66, 74),
}


def probes_needed(seen: int, confidence: float) -> int:
    """Probes to send at a hop where ``seen`` interfaces answered, to rule out one more
    with the given confidence (0.95, 0.99): the published table up to ten interfaces,
    then Diamond-Miner's closed form ``ceil(ln(eps / k) / ln((k - 1) / k))``, ``k =
    seen + 1`` (at least one interface is assumed)."""
    seen = max(seen, 1)
    table = TABLES.get(confidence)
    if table is not None and seen <= len(table):
        return table[seen - 1]
    k = seen + 1
    return math.ceil(math.log((1 - confidence) / k) / math.log((k - 1) / k))


class Multipath(Strategy):
    """Probes each TTL on enough flows to find all its interfaces, hop after hop."""

    def __init__(self, schedule: Schedule, confidence: float, flows: int) -> None:
        self.schedule = schedule
        self.confidence = confidence
        self.flows = flows
        self.ttl = schedule.first_ttl
        self._at: dict[int, list[Probe]] = {}
        self._in_flight: dict[Probe, None] = {}
        self._hop_rtt: dict[int, float] = {}
        self._next_flow = 0
        #: Ids of probes whose answer ended the trace (the destination, an error).
        self._ends: set[int] = set()
        self.reached = False
        self.end_outcome: Outcome | None = None
        #: Probes sent in all.
        self.sent = 0

    # -- what it found ----------------------------------------------------------------------

    def links(self) -> list[Link]:
        """Every link between consecutive hops, with the flows that show it. A flow not
        probed at a hop with one interface went through that interface."""
        found: dict[tuple[int, str, str], Link] = {}
        for ttl in sorted(self._at):
            here = {p.flow: p.result.address for p in self._at[ttl]
                    if p.result is not None and p.result.address is not None}  # fmt: skip
            only = next(iter(set(here.values()))) if len(set(here.values())) == 1 else None
            for q in self._at.get(ttl + 1, []):
                if q.result is None or q.result.address is None:
                    continue
                source = here.get(q.flow, only)
                if source is None:
                    continue
                link = found.setdefault((ttl, source, q.result.address),
                                        Link(ttl, source, q.result.address))  # fmt: skip
                if q.flow not in link.flows:
                    link.flows.append(q.flow)
        return list(found.values())

    def _seen(self, ttl: int) -> set[str]:
        return {p.result.address for p in self._at.get(ttl, [])
                if p.result is not None and p.result.address is not None}  # fmt: skip

    # -- probing ----------------------------------------------------------------------------

    def _flows_for(self, ttl: int, count: int) -> list[int]:
        """The next ``count`` flows for ``ttl``: those of the hop before first, then new."""
        used = {p.flow for p in self._at.get(ttl, [])}
        previous = self._at.get(ttl - 1, [])
        before = [p for p in previous if p.flow not in used]
        # one flow through each interface of the hop before first, so each gets successors;
        # interfaces a flow sent here already went through first: this may be called for a
        # probe or two at a time (a full window, --rate)
        covered = {p.result.address if p.result else None for p in previous if p.flow in used}
        firsts: dict[str | None, int] = {}
        for p in before:
            address = p.result.address if p.result else None
            if address not in covered:
                firsts.setdefault(address, p.flow)
        earlier = list(firsts.values()) + [p.flow for p in before if p.flow not in firsts.values()]
        out = earlier[:count]
        while len(out) < count and self._next_flow < self.flows:
            out.append(self._next_flow)
            self._next_flow += 1
        return out

    def poll(self, now: float) -> None:
        if self.finished:
            return
        for p in [p for p in self._in_flight if now >= self._deadline(p)]:
            del self._in_flight[p]
            p.expired = True
        probes = self._at.setdefault(self.ttl, [])
        needed = max(
            probes_needed(len(self._seen(self.ttl)), self.confidence),
            len(self._seen(self.ttl - 1)),  # a flow through each interface before
        )
        missing = needed - len(probes)
        room = self.schedule.window - len(self._in_flight)
        if missing > 0 and room > 0:
            for flow in self._flows_for(self.ttl, min(missing, room)):
                probe = self.engine.send(self.ttl, flow, now)
                if probe is None:
                    break
                probes.append(probe)
                self._in_flight[probe] = None
                self.sent += 1
        elif missing <= 0 and not self._in_flight and not self._link_probes(now):
            self._hop_done(now)

    def _link_probes(self, now: float) -> bool:
        """Probe the hop before, on the flows new here, where it has several interfaces
        (so each new flow's predecessor is known); True if any went out or must wait."""
        before = self._at.get(self.ttl - 1, [])
        if len(self._seen(self.ttl - 1)) < 2:
            return False
        probed = {p.flow for p in before}
        new = [p.flow for p in self._at[self.ttl] if p.flow not in probed and p.result]
        sent = False
        for flow in new[: self.schedule.window]:
            probe = self.engine.send(self.ttl - 1, flow, now)
            if probe is None:
                return True  # not yet (--rate, or no sequence number free): not done either
            before.append(probe)
            self._in_flight[probe] = None
            self.sent += 1
            sent = True
        return sent

    def _hop_done(self, now: float) -> None:
        probes = self._at[self.ttl]
        for p in probes:
            self.engine.release(p, now)
        self.engine.emit(HopCompleted(hop_of(self.ttl, probes)))
        answered = [p for p in probes if p.result is not None]
        ended = bool(answered) and all(p.id in self._ends for p in answered)
        if ended or self.ttl >= self.schedule.max_ttl:
            self.finished = True
            self.engine.emit(TraceFinished(end_name(self.end_outcome)))
            return
        self.ttl += 1

    def _deadline(self, p: Probe) -> float:
        return p.sent + self.schedule.wait.timeout(self._hop_rtt.get(p.ttl), None)

    def wakeup(self) -> float | None:
        if not self._in_flight:
            return None
        return min(self._deadline(p) for p in self._in_flight)

    def answered(self, probe: Probe, match: Match, result: ProbeResult) -> None:
        if probe.ttl not in (self.ttl, self.ttl - 1) or probe.result is not None:
            return  # a hop already reported
        probe.result = result
        self._in_flight.pop(probe, None)
        self._hop_rtt.setdefault(probe.ttl, (result.rtt_ms or 0.0) / 1000.0)
        if match.outcome is not Outcome.HOP:
            self._ends.add(probe.id)
            self.end_outcome = match.outcome
            self.reached = self.reached or match.outcome is Outcome.REACHED
        self.engine.emit(ProbeAnswered(probe, result, late=probe.expired))

    def stop(self, now: float) -> None:
        if not self.finished:
            self.finished = True
            self.engine.emit(TraceFinished("interrupted"))
