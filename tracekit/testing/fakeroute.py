"""Fakeroute: simulated load-balanced paths, to test multipath discovery without a network.

After the simulator of MDA-Lite's authors (Vermeulen et al., IMC 2018): a
:class:`Topology` is a graph of interfaces, one level per TTL; each router sends a flow to
the successor a deterministic hash of (flow, router) picks, as per-flow load balancers do.
:class:`Fakeroute` is a transport for :func:`tracekit.driver.drive` with a virtual clock,
and :class:`FlowMethod` the probe method it understands. Nothing is sent anywhere.

``random_diamond`` draws the topologies of ``tests/test_multipath.py`` and
``benchmarks/mda.py``: diamonds of widths 2 to 16, one to three levels, meshed or not.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracekit.probes import Match, Outcome, ProbeMethod, Received

if TYPE_CHECKING:
    from tracekit.pacing import Rate
    from tracekit.strategies.multipath import Multipath

_MASK = (1 << 64) - 1


def _mix(*values: int) -> int:
    """A 64-bit hash of ``values`` (splitmix64 rounds): the same on every run."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & _MASK
        h ^= h >> 29
    return h


@dataclass
class Topology:
    """``levels[i]``: the interfaces that may answer at TTL ``i + 1``; the last level is the
    destination alone. ``successors``: where each interface sends flows on."""

    levels: list[list[str]]
    successors: dict[str, list[str]]
    seed: int = 0

    @property
    def destination(self) -> str:
        return self.levels[-1][0]

    def next_hop(self, node: str, flow: int) -> str:
        choices = self.successors[node]
        index = self._index[node]
        return (
            choices[_mix(self.seed, index, flow) % len(choices)] if len(choices) > 1 else choices[0]
        )

    def interface(self, ttl: int, flow: int) -> str:
        """Who answers a probe on ``flow`` sent with ``ttl`` (the destination beyond it)."""
        node = self.levels[0][0]
        for _ in range(min(ttl, len(self.levels)) - 1):
            node = self.next_hop(node, flow)
        return node

    def truth(self, flows: int) -> tuple[list[set[str]], set[tuple[int, str, str]]]:
        """Every interface per TTL, and every link ``(ttl, from, to)``, that ``flows`` flows
        can reach: what a complete discovery finds."""
        hops: list[set[str]] = [set() for _ in self.levels]
        links: set[tuple[int, str, str]] = set()
        for flow in range(flows):
            node = self.levels[0][0]
            hops[0].add(node)
            for ttl in range(1, len(self.levels)):
                after = self.next_hop(node, flow)
                hops[ttl].add(after)
                links.add((ttl, node, after))
                node = after
        return hops, links

    def __post_init__(self) -> None:
        self._index = {n: i for i, n in enumerate(a for level in self.levels for a in level)}

    @classmethod
    def diamond(cls, width: int, seed: int = 0) -> Topology:
        """One hop of ``width`` interfaces between single hops: TTL 1, the split, the merge
        at TTL 3, the destination at TTL 4."""
        middle = [f"10.2.{i}.1" for i in range(width)]
        levels = [["10.1.0.1"], middle, ["10.3.0.1"], ["10.4.0.1"]]
        successors = {"10.1.0.1": middle, **{m: ["10.3.0.1"] for m in middle}}
        successors["10.3.0.1"] = ["10.4.0.1"]
        return cls(levels, successors, seed)


def _parts(items: list[str], count: int, rng: random.Random) -> list[list[str]]:
    """``items`` cut into ``count`` non-empty runs, at random places."""
    cuts = sorted(rng.sample(range(1, len(items)), count - 1))
    return [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)], strict=True)]


def _connect(
    upper: list[str], lower: list[str], meshed: bool, rng: random.Random
) -> dict[str, list[str]]:
    """Links from ``upper`` to ``lower``: each upper interface splits to its own run of the
    lower ones, or runs of upper ones merge into one; ``meshed`` adds crossing links."""
    out: dict[str, list[str]] = {}
    if len(lower) >= len(upper):
        for node, part in zip(upper, _parts(lower, len(upper), rng), strict=True):
            out[node] = list(part)
    else:
        for target, part in zip(lower, _parts(upper, len(lower), rng), strict=True):
            for node in part:
                out[node] = [target]
    if meshed:
        for _ in range(rng.randint(1, max(1, len(upper) // 2))):
            node = rng.choice(upper)
            others = [n for n in lower if n not in out[node]]
            if others:
                out[node].append(rng.choice(others))
    return out


def random_diamond(rng: random.Random, meshed: bool, max_width: int = 16) -> Topology:
    """A path with one diamond: one or two single hops, one to three levels of 2 to
    ``max_width`` interfaces (at least two levels when ``meshed``), a merge, the
    destination."""
    levels: list[list[str]] = []
    ttl = 0

    def level(width: int) -> list[str]:
        nonlocal ttl
        ttl += 1
        return [f"10.{ttl}.{i}.1" for i in range(width)]

    for _ in range(rng.randint(1, 2)):
        levels.append(level(1))
    for _ in range(rng.randint(2, 3) if meshed else rng.randint(1, 3)):
        levels.append(level(rng.randint(2, max_width)))
    levels.append(level(1))
    levels.append(level(1))
    successors: dict[str, list[str]] = {}
    for upper, lower in itertools.pairwise(levels):
        crossing = meshed and len(upper) > 1 and len(lower) > 1
        successors.update(_connect(upper, lower, crossing, rng))
    return Topology(levels, successors, rng.getrandbits(32))


@dataclass
class Fakeroute:
    """A transport answering as ``topology`` would, on a virtual clock (``clock``).

    ``silent`` interfaces never answer. With ``ratelimit``, every interface limits its ICMP
    errors as Linux does (a burst of 6, then one a second); the destination too."""

    topology: Topology
    silent: frozenset[str] = frozenset()
    ratelimit: bool = False
    now: float = 1000.0
    #: Probes received, in all.
    probes: int = 0
    _queue: list[tuple[float, int, bytes]] = field(default_factory=list)
    _tokens: dict[str, tuple[float, float]] = field(default_factory=dict)

    def clock(self) -> float:
        return self.now

    def _allowed(self, address: str) -> bool:
        if not self.ratelimit:
            return True
        tokens, at = self._tokens.get(address, (6.0, self.now))
        tokens = min(6.0, tokens + (self.now - at))
        allowed = tokens >= 1.0
        self._tokens[address] = (tokens - 1.0 if allowed else tokens, self.now)
        return allowed

    def send(self, data: bytes) -> float:
        self.probes += 1
        ttl, flow, seq = data[0], int.from_bytes(data[1:3], "big"), data[3:5]
        address = self.topology.interface(ttl, flow)
        if address in self.silent or not self._allowed(address):
            return self.now
        reached = bytes([address == self.topology.destination])
        when = self.now + 0.001 * min(ttl, len(self.topology.levels))
        heapq.heappush(self._queue, (when, len(self._queue), reached + seq + address.encode()))
        return self.now

    def receive(self, timeout: float) -> list[Received]:
        if self._queue and self._queue[0][0] <= self.now + timeout:
            self.now = max(self.now, self._queue[0][0])
        else:
            self.now += timeout
        out = []
        while self._queue and self._queue[0][0] <= self.now:
            when, _, payload = heapq.heappop(self._queue)
            out.append(Received(payload, 4, payload[3:].decode(), when, 64))
        return out


class FlowMethod(ProbeMethod):
    """Probes :class:`Fakeroute` reads: TTL, flow and sequence number in five bytes."""

    flows = 1024

    def parameters(self) -> dict[str, Any]:
        return {}

    def build(self, ttl: int, flow: int, seq: int) -> bytes:
        return bytes([ttl]) + flow.to_bytes(2, "big") + seq.to_bytes(2, "big")

    def match(self, received: Received) -> Match | None:
        reached = bool(received.data[0])
        seq = int.from_bytes(received.data[1:3], "big")
        if reached:
            return Match(seq, "port-unreachable", Outcome.REACHED)
        return Match(seq, "time-exceeded", Outcome.HOP)


@dataclass
class Discovery:
    """What ``--mda`` found on a :class:`Topology`, beside the truth."""

    hops: list[set[str]]
    links: set[tuple[int, str, str]]
    truth_hops: list[set[str]]
    truth_links: set[tuple[int, str, str]]
    probes: int
    #: Seconds of the virtual clock the discovery took.
    duration: float
    strategy: Multipath

    @property
    def complete(self) -> bool:
        """Every interface and every link found."""
        return self.hops == self.truth_hops and self.links == self.truth_links

    @property
    def invented(self) -> set[tuple[int, str, str]]:
        """Links found that do not exist (never acceptable)."""
        return self.links - self.truth_links


def discover(
    topology: Topology, confidence: float = 0.95, rate: Rate | None = None, **options: Any
) -> Discovery:
    """Run the multipath strategy over ``Fakeroute(topology, **options)``."""
    from tracekit.driver import drive
    from tracekit.engine import Engine
    from tracekit.events import HopCompleted
    from tracekit.strategies.classic import Schedule
    from tracekit.strategies.multipath import Multipath

    path = Fakeroute(topology, **options)
    start = path.now
    strategy = Multipath(Schedule(), confidence, FlowMethod.flows)
    engine = Engine(FlowMethod(), strategy, rate=rate)
    hops = [
        set(e.hop.hosts)
        for e in drive(engine, path, clock=path.clock, sleep=lambda s: None)
        if isinstance(e, HopCompleted)
    ]
    links = {(k.ttl, k.source, k.target) for k in strategy.links()}
    truth_hops, truth_links = topology.truth(FlowMethod.flows)
    silent = options.get("silent", frozenset())
    truth_hops = [h - silent for h in truth_hops]
    truth_links = {k for k in truth_links if not {k[1], k[2]} & silent}
    duration = path.now - start
    return Discovery(hops, links, truth_hops, truth_links, strategy.sent, duration, strategy)
