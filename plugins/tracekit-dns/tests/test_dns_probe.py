"""The DNS probe method on crafted packets: what it sends, and which answers it takes."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6TimeExceeded, IPv6
from tracekit_dns import DnsProbe

from tracekit.errors import BadInput
from tracekit.probes import Outcome, ProbeContext, Received

ADDRESSES = {4: ("127.0.0.1", "127.0.0.53", "127.0.0.9"), 6: ("::1", "::1", "fe80::9")}


@pytest.fixture(params=[4, 6])
def probe(request: pytest.FixtureRequest) -> Iterator[DnsProbe]:
    source, destination, _ = ADDRESSES[request.param]
    method = DnsProbe(ProbeContext(request.param, source, destination, {}))
    yield method
    method.close()


def parse(method: DnsProbe, data: bytes) -> Any:
    return IP(data) if method.context.ip_version == 4 else IPv6(data)


def received(method: DnsProbe, packet: Any, address: str) -> Received:
    return Received(bytes(packet), method.context.ip_version, address, time.time())


def router_error(method: DnsProbe, probe: bytes, kind: str, address: str, quote: int = 0) -> Any:
    """An ICMP error from ``address`` quoting ``probe`` (``quote`` bytes of it, 0: all)."""
    quoted = probe[:quote] if quote else probe
    if method.context.ip_version == 4:
        icmp = ICMP(type=11, code=0) if kind == "time" else ICMP(type=3, code=3)
        return IP(src=address, dst=method.context.source) / icmp / quoted
    icmp6 = ICMPv6TimeExceeded() if kind == "time" else ICMPv6DestUnreach(code=4)
    return IPv6(src=address, dst=method.context.source) / icmp6 / quoted


def response(method: DnsProbe, probe: bytes, **changes: Any) -> Any:
    """The destination's DNS response to ``probe`` (fields changed as given)."""
    query = parse(method, probe)
    fields = {
        "src": method.context.destination,
        "sport": method.port,
        "dport": method.source_port,
        "id": query[DNS].id,
        "qr": 1,
    }
    fields.update(changes)
    ip: Any = IP if method.context.ip_version == 4 else IPv6
    dns = DNS(id=fields["id"], qr=fields["qr"], rcode=5, qd=DNSQR(qname=".", qtype="NS"))
    return (
        ip(src=fields["src"], dst=method.context.source)
        / UDP(sport=fields["sport"], dport=fields["dport"])
        / dns
    )


def test_every_probe_is_the_same_query_on_the_same_flow_with_its_own_checksum(
    probe: DnsProbe,
) -> None:
    packets = [parse(probe, probe.build(ttl=1 + seq // 3, flow=0, seq=seq)) for seq in
               range(40)]  # fmt: skip
    flows = {(p.src, p.dst, p[UDP].sport, p[UDP].dport) for p in packets}
    assert flows == {(probe.context.source, probe.context.destination, probe.source_port, 53)}
    assert [p[UDP].chksum for p in packets] == [seq + 1 for seq in range(40)]
    assert len({p[DNS].id for p in packets}) == 40
    for p in packets:
        assert p[DNS].qr == 0 and p[DNS].rd == 1
        assert p[DNS].qd[0].qname == b"." and p[DNS].qd[0].qtype == 2  # NS
        sent = p[UDP].chksum
        del p[UDP].chksum
        assert parse(probe, bytes(p))[UDP].chksum == sent  # the checksum is right


def test_routers_errors_name_their_probe_even_with_the_shortest_quote(probe: DnsProbe) -> None:
    router = ADDRESSES[probe.context.ip_version][2]
    sent = probe.build(ttl=2, flow=0, seq=17)
    header = 20 if probe.context.ip_version == 4 else 40
    for quote in (0, header + 8):  # everything, or the IP header and 8 bytes (RFC 792)
        match = probe.match(
            received(probe, router_error(probe, sent, "time", router, quote), router)
        )
        assert match is not None and (match.seq, match.reply, match.outcome) == (
            17,
            "time-exceeded",
            Outcome.HOP,
        )


def test_a_dns_response_or_port_unreachable_from_the_destination_reaches_it(
    probe: DnsProbe,
) -> None:
    destination = probe.context.destination
    sent = probe.build(ttl=4, flow=0, seq=9)
    match = probe.match(received(probe, response(probe, sent), destination))
    assert match is not None and (match.seq, match.reply, match.outcome) == (
        9,
        "dns-reply",
        Outcome.REACHED,
    )
    closed = router_error(probe, sent, "port", destination)
    match = probe.match(received(probe, closed, destination))
    assert match is not None and (match.seq, match.reply, match.outcome) == (
        9,
        "port-unreachable",
        Outcome.REACHED,
    )


@pytest.mark.parametrize(
    "change",
    [
        {"id": "other"},  # a transaction id this trace never sent
        {"qr": 0},  # a query, not a response
        {"sport": 5353},  # from another port
        {"dport": "other"},  # to another source port (another trace)
        {"src": "other"},  # from another host
    ],
)
def test_answers_to_other_queries_are_not_taken(probe: DnsProbe, change: dict[str, Any]) -> None:
    sent = probe.build(ttl=4, flow=0, seq=9)
    ids = set(probe.ids)
    others = {
        "id": next(i for i in range(65536) if i not in ids),
        "dport": probe.source_port + 1,
        "src": ADDRESSES[probe.context.ip_version][2],
    }
    fields = {key: others[key] if value == "other" else value for key, value in change.items()}
    answer = response(probe, sent, **fields)
    assert probe.match(received(probe, answer, answer.src)) is None


def test_two_traces_never_take_each_other_s_answers(probe: DnsProbe) -> None:
    other = DnsProbe(probe.context)
    try:
        assert other.source_port != probe.source_port
        sent = other.build(ttl=4, flow=0, seq=3)
        probe.build(ttl=4, flow=0, seq=3)
        router = ADDRESSES[probe.context.ip_version][2]
        destination = probe.context.destination
        assert probe.match(received(probe, response(other, sent), destination)) is None
        error = router_error(other, sent, "time", router)
        assert probe.match(received(probe, error, router)) is None
        assert other.match(received(other, error, router)) is not None
    finally:
        other.close()


def test_a_source_port_in_use_is_bad_input() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(BadInput, match=f"source port {port} is not free"):
            DnsProbe(ProbeContext(4, "127.0.0.1", "127.0.0.53", {"source_port": port}))


def test_port_option_and_parameters() -> None:
    method = DnsProbe(ProbeContext(4, "127.0.0.1", "127.0.0.53", {"port": 5353, "paris": False}))
    try:
        assert IP(method.build(1, 0, 0))[UDP].dport == 5353
        assert method.parameters() == {
            "port": 5353,
            "source_port": method.source_port,
            "query": ". NS",
            "paris": True,
            "packet_size": len(method.template),
        }
    finally:
        method.close()
