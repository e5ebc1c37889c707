"""The data model of a trace: plain dataclasses shared by the engine, enrichers and outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tracekit.stash import Stash, StashKey

__all__ = ["Stash", "StashKey"]  # re-exported: plugins make their keys with them

if TYPE_CHECKING:
    from tracekit.stats import HopStats, RttStats


@dataclass(frozen=True)
class MplsLabel:
    """One MPLS label stack entry, as a router reported it (RFC 4950; JSON: ``{"label",
    "tc", "s", "ttl"}``)."""

    label: int
    #: Traffic class (the former "EXP" bits).
    tc: int
    #: Bottom of stack.
    s: bool
    ttl: int


@dataclass
class ProbeResult:
    """What became of one probe.

    A lost probe has every field ``None``.
    """

    #: Address of the host that answered, or ``None`` if nothing answered.
    address: str | None = None
    #: Round-trip time in milliseconds, not rounded: from just before the probe was handed to
    #: the kernel (``time.time()``) to the kernel's receive timestamp of the answer
    #: (``SO_TIMESTAMPNS``). Its resolution is about a microsecond (0.001 ms): that of a
    #: float of seconds since 1970. Outputs round it: text and JSON to 3 decimals.
    rtt_ms: float | None = None
    #: What the answer was, e.g. ``"time-exceeded"``, ``"echo-reply"``, ``"host-unreachable"``.
    reply: str | None = None
    #: The IP TTL (IPv6 hop limit) the answer arrived with.
    reply_ttl: int | None = None
    #: MPLS label stack entries the router reported (RFC 4950), outermost first.
    mpls: list[MplsLabel] = field(default_factory=list)
    #: The probe method's own text marker for this answer (``Match.marker``), if it gave one.
    marker: str = ""
    #: The flow the probe was sent on (``ProbeMethod.build``'s ``flow``).
    flow: int = 0
    #: For a probe without answer: the hop withheld it (an ICMP rate limit) while later
    #: hops still answered, so it is not counted as loss (see ``docs/continuous.md``).
    rate_limited: bool = False
    #: Bytes of the answer after its IP header (the ICMP message, or the TCP/UDP segment).
    size: int | None = None

    @property
    def answered(self) -> bool:
        return self.address is not None


@dataclass(frozen=True, kw_only=True)
class Location:
    """Where an address is, as a GeoIP database says (JSON: a host's ``location``)."""

    city: str | None = None
    country: str | None = None
    #: ISO 3166-1 alpha-2, e.g. ``"DE"``.
    country_code: str | None = None
    latitude: float
    longitude: float
    #: How far off the place may be, in kilometres, if the database says.
    accuracy_radius_km: int | None = None


@dataclass(frozen=True, kw_only=True)
class AutonomousSystem:
    """The autonomous system an address belongs to (JSON: a host's ``asn``)."""

    number: int
    organization: str | None = None


@dataclass(frozen=True, kw_only=True)
class Credit:
    """Attribution that the licence of some data asks for (``trace.credits``), in plain
    text: outputs escape it. ``url`` and ``licence_url`` are links (http or https)."""

    text: str
    url: str | None = None
    licence: str | None = None
    licence_url: str | None = None


@dataclass
class Host:
    """One address seen at a hop, with what enrichers found out about it."""

    address: str
    #: Reverse DNS name, if known.
    name: str | None = None
    #: Further annotations by enrichment plugins (JSON-serialisable values).
    annotations: dict[str, Any] = field(default_factory=dict)
    #: Round trips of this host's answers (continuous mode and one-shot alike).
    stats: RttStats | None = None
    #: Where the address is (set by the ``geoip`` plugin, or another enrichment).
    location: Location | None = None
    #: Its autonomous system (set by the ``geoip`` plugin, or another enrichment).
    asn: AutonomousSystem | None = None


@dataclass
class Hop:
    """All probes sent with one TTL."""

    ttl: int
    probes: list[ProbeResult] = field(default_factory=list)
    #: Every address that answered at this hop, in order of first answer.
    hosts: dict[str, Host] = field(default_factory=dict)
    #: Probes sent, answered, lost and withheld, and round trips (:mod:`tracekit.stats`).
    stats: HopStats | None = None

    @property
    def silent(self) -> bool:
        """True when no probe of this hop was answered."""
        if self.stats is not None:
            return self.stats.received == 0
        return not any(p.answered for p in self.probes)

    @property
    def addresses(self) -> list[str]:
        """Distinct answering addresses, in order of first answer."""
        return list(self.hosts)


@dataclass
class Link:
    """Multipath discovery: flows that crossed ``source`` at ``ttl`` and ``target`` at
    ``ttl + 1``."""

    ttl: int
    source: str
    target: str
    flows: list[int] = field(default_factory=list)


@dataclass
class ProbeInfo:
    """The probe method of a trace and its parameters (as shown in the JSON ``probe``)."""

    method: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Expectation:
    """The verdict on one ``--expect`` rule (:mod:`tracekit.expect`)."""

    #: The rule as written, e.g. ``"hops<=12"``.
    rule: str
    passed: bool
    #: What was seen, in words: ``"4 hops"``, ``"median 0.052 ms of 3 answers"``.
    seen: str


@dataclass
class Trace:
    """A whole trace; hops are appended in TTL order as they complete."""

    #: The target as the user gave it.
    target: str
    #: The resolved destination address; ``None`` only for a target that failed before
    #: probing (several targets: a name that does not resolve...; ``error`` says why).
    address: str | None
    #: 4 or 6; ``None`` only with ``address``.
    ip_version: int | None
    probe: ProbeInfo
    #: Our own source address.
    source: str | None = None
    first_ttl: int = 1
    max_ttl: int = 30
    queries: int = 3
    #: Rounds asked for in continuous mode: N for ``-c N``, 0 for "until interrupted";
    #: ``None`` for a one-shot trace.
    cycles: int | None = None
    #: Seconds between the starts of rounds (``-i``), in continuous mode.
    interval: float | None = None
    #: Rounds completed so far.
    rounds: int = 0
    started: datetime | None = None
    finished: datetime | None = None
    #: What the user asked for that plugins may need: ``numeric`` (``-n``: no name lookups),
    #: ``report`` (``-r``: no live view), and the value of every option a plugin added
    #: (``tracekit_add_options``) under its name: the geoip plugin's ``no_geo``,
    #: ``geoip_db`` and ``asn_db``, the map's ``origin`` (``(latitude, longitude)``)...
    settings: dict[str, Any] = field(default_factory=dict)
    #: Trace-wide annotations by plugins (JSON-serialisable), e.g. ``"geoip"``: which
    #: databases were used. (The JSON output adds ``"source"``, from ``source_host``.)
    annotations: dict[str, Any] = field(default_factory=dict)
    #: True once the destination itself answered.
    reached: bool = False
    #: Why the trace ended: ``"reached"``, ``"unreachable"`` (an error other than
    #: time-exceeded ended it), ``"max-ttl"``, ``"interrupted"`` or ``"error"`` (tracekit
    #: could not go on, e.g. the route went away). ``None`` while the trace runs.
    end: str | None = None
    hops: list[Hop] = field(default_factory=list)
    #: Multipath discovery (``--mda``): the links between consecutive hops; else ``None``.
    links: list[Link] | None = None
    #: Multipath discovery: the confidence asked for (0.95, 0.99) and the probes sent.
    confidence: float | None = None
    probes_sent: int | None = None
    #: The verdicts on the ``--expect`` rules, judged once the trace is over (before the
    #: outputs' ``finish``); ``None`` when no rule was given.
    expectations: list[Expectation] | None = None
    #: With ``end == "error"``: the one-line reason (as printed on standard error).
    error: str | None = None
    #: What enrichment found out about our own address (``source``): its ``location`` and
    #: ``asn``; ``None`` if nothing.
    source_host: Host | None = None
    #: Attribution the data of this trace asks for (a database's licence), added by the
    #: enrichment that used the data; outputs that show the data show these too.
    credits: list[Credit] = field(default_factory=list)
    #: Plugins' state for this trace (:class:`Stash`), never written to any output.
    stash: Stash = field(default_factory=Stash, repr=False, compare=False)

    @property
    def continuous(self) -> bool:
        """True for a run in rounds (``-c``), False for a one-shot trace."""
        return self.cycles is not None
