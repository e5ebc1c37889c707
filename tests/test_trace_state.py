"""Plugins keep their state per trace (``trace.stash``): two traces in one process, one after
another or at the same time, each get their own names and locations, and a trace's
background work ends with it."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from tracekit.enrich import geoip, rdns
from tracekit.model import Hop, Host, ProbeInfo, ProbeResult, Stash, StashKey, Trace


def make_trace(target: str, **settings: Any) -> Trace:
    return Trace(target, target, 4, ProbeInfo("icmp"), source="192.0.2.1", settings=settings)


def answered_hop(trace: Trace, ttl: int, address: str) -> Hop:
    result = ProbeResult(address=address, rtt_ms=1.0, reply="time-exceeded")
    rdns.tracekit_probe_answered(trace=trace, ttl=ttl, result=result)
    return Hop(ttl, [result], {address: Host(address)})


def test_the_stash_keeps_values_by_key() -> None:
    stash, one, two = Stash(), StashKey[int](), StashKey[str]()
    stash[one] = 1
    assert one in stash and two not in stash
    assert stash[one] == 1 and stash.get(two) is None and stash.get(two, "x") == "x"
    assert stash.pop(one) == 1 and stash.pop(one) is None
    with pytest.raises(KeyError):
        stash[one]


def test_traces_have_stashes_of_their_own() -> None:
    assert make_trace("a").stash is not make_trace("b").stash


class NamesOf:
    """A resolver that names an address after the trace it was made for."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, address: str) -> str:
        time.sleep(0.01)
        return f"{address}.{self.label}"


def test_rdns_resolvers_are_per_trace_and_their_threads_end_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    labels = iter(["first", "second"])
    made: list[rdns.ReverseDns] = []
    real = rdns.ReverseDns

    def per_trace() -> rdns.ReverseDns:
        resolver = real(lookup=NamesOf(next(labels)))
        made.append(resolver)
        return resolver

    monkeypatch.setattr(rdns, "ReverseDns", per_trace)
    first, second = make_trace("a"), make_trace("b")
    rdns.tracekit_trace_started(trace=first)
    rdns.tracekit_trace_started(trace=second)
    hops = [answered_hop(t, 1, "10.0.1.2") for t in (first, second)]
    rdns.tracekit_trace_finished(trace=first)  # one trace ending leaves the other alone
    rdns.tracekit_enrich_hop(trace=second, hop=hops[1])
    assert hops[1].hosts["10.0.1.2"].name == "10.0.1.2.second"
    rdns.tracekit_trace_finished(trace=second)
    assert rdns.RESOLVER not in first.stash and rdns.RESOLVER not in second.stash
    for resolver in made:
        for thread in resolver.threads:
            thread.join(2)
            assert not thread.is_alive()


def test_rdns_lookups_not_begun_are_dropped_when_the_trace_ends() -> None:
    gate = threading.Event()
    calls: list[str] = []

    def slow(address: str) -> str:
        calls.append(address)
        gate.wait(2)
        return "slow"

    resolver = rdns.ReverseDns(workers=1, lookup=slow)
    resolver.start("10.0.0.1")
    resolver.start("10.0.0.2")
    time.sleep(0.05)
    resolver.close()
    gate.set()
    resolver.threads[0].join(2)
    assert not resolver.threads[0].is_alive()
    assert calls == ["10.0.0.1"]
    resolver.start("10.0.0.3")  # closed: nothing more begins
    assert resolver.name("10.0.0.3") is None and len(resolver.threads) == 1


def test_two_traces_at_the_same_time_get_their_own_names() -> None:
    traces = [make_trace(f"t{n}") for n in range(2)]
    resolvers = {}
    names: dict[str, str | None] = {}

    def run(trace: Trace) -> None:
        trace.stash[rdns.RESOLVER] = resolvers[trace.target] = rdns.ReverseDns(
            lookup=NamesOf(trace.target)
        )
        hop = answered_hop(trace, 1, "10.0.1.2")
        rdns.tracekit_enrich_hop(trace=trace, hop=hop)
        names[trace.target] = hop.hosts["10.0.1.2"].name
        rdns.tracekit_trace_finished(trace=trace)

    threads = [threading.Thread(target=run, args=(t,)) for t in traces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert names == {"t0": "10.0.1.2.t0", "t1": "10.0.1.2.t1"}


class FakeCity:
    """A City database reader that places every address in the city it was made with."""

    def __init__(self, city: str) -> None:
        self.name = city
        self.closed = False

    def city(self, address: str) -> Any:
        assert not self.closed, "a trace read a database another trace closed"
        return SimpleNamespace(
            city=SimpleNamespace(name=self.name),
            country=SimpleNamespace(name="Nowhere", iso_code="XX"),
            location=SimpleNamespace(latitude=1.0, longitude=2.0, accuracy_radius=5),
        )

    def metadata(self) -> Any:
        return SimpleNamespace(database_type="Test-City", description={}, build_epoch=0)

    def close(self) -> None:
        self.closed = True


def test_two_traces_get_their_own_databases(monkeypatch: pytest.MonkeyPatch) -> None:
    cities = iter(["Lisbon", "Warsaw"])
    opened: list[geoip.GeoIp] = []

    def open_databases(settings: dict[str, Any]) -> geoip.GeoIp:
        opened.append(geoip.GeoIp(FakeCity(next(cities)), None, {"city": "test.mmdb"}))
        return opened[-1]

    monkeypatch.setattr(geoip, "open_databases", open_databases)
    first, second = make_trace("a"), make_trace("b")
    geoip.tracekit_trace_started(trace=first)
    geoip.tracekit_trace_started(trace=second)
    hop = Hop(1, [], {"10.0.1.2": Host("10.0.1.2")})
    geoip.tracekit_enrich_hop(trace=first, hop=hop)
    geoip.tracekit_trace_finished(trace=first)
    assert opened[0].city is None  # closed with its trace
    later = Hop(1, [], {"10.0.1.2": Host("10.0.1.2")})
    geoip.tracekit_enrich_hop(trace=second, hop=later)  # its own reader, still open
    geoip.tracekit_trace_finished(trace=second)
    first_place, later_place = hop.hosts["10.0.1.2"].location, later.hosts["10.0.1.2"].location
    assert first_place is not None and first_place.city == "Lisbon"
    assert later_place is not None and later_place.city == "Warsaw"
    assert first.source_host is not None and first.source_host.location == first_place
