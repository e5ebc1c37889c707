"""The ICMP echo probe: the packets it builds and the answers it recognises (pure logic)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6TimeExceeded,
    IPv6,
)

from tracekit.packets import internet_checksum
from tracekit.probes import Outcome, ProbeContext, Received
from tracekit.probes.icmp import IcmpEcho

SRC4, DST4, HOP4 = "10.0.1.1", "10.0.4.2", "10.0.2.2"
SRC6, DST6, HOP6 = "2001:db8:1::1", "2001:db8:4::2", "2001:db8:2::2"


def method(version: int) -> IcmpEcho:
    if version == 4:
        return IcmpEcho(ProbeContext(4, SRC4, DST4))
    return IcmpEcho(ProbeContext(6, SRC6, DST6))


def received(packet: object, version: int) -> Received:
    data = bytes(packet)  # type: ignore[call-overload]
    parsed = IP(data) if version == 4 else IPv6(data)
    return Received(data, version, parsed.src, 0.0, parsed.ttl if version == 4 else parsed.hlim)


@pytest.mark.parametrize("ttl,seq", [(1, 0), (7, 1), (30, 65535), (255, 4242)])
def test_ipv4_probe_is_a_valid_echo_request(ttl: int, seq: int) -> None:
    m = method(4)
    packet = IP(m.build(ttl, 0, seq))
    assert (packet.src, packet.dst, packet.ttl) == (SRC4, DST4, ttl)
    assert (packet[ICMP].type, packet[ICMP].id, packet[ICMP].seq) == (8, m.identifier, seq)
    assert internet_checksum(bytes(packet[ICMP])) == 0


@pytest.mark.parametrize("ttl,seq", [(1, 0), (9, 300), (64, 65535)])
def test_ipv6_probe_is_a_valid_echo_request(ttl: int, seq: int) -> None:
    m = method(6)
    raw = m.build(ttl, 0, seq)
    packet = IPv6(raw)
    assert (packet.src, packet.dst, packet.hlim) == (SRC6, DST6, ttl)
    request = packet[ICMPv6EchoRequest]
    assert (request.id, request.seq) == (m.identifier, seq)
    original = request.cksum
    del request.cksum  # let scapy compute the right one over the pseudo-header
    assert IPv6(bytes(packet))[ICMPv6EchoRequest].cksum == original


def test_two_traces_use_different_identifiers() -> None:
    assert len({method(4).identifier for _ in range(20)}) > 1


def test_time_exceeded_quoting_our_probe_matches_ipv4() -> None:
    m = method(4)
    quoted = m.build(2, 1, 17)
    reply = IP(src=HOP4, dst=SRC4) / ICMP(type=11, code=0) / quoted
    match = m.match(received(reply, 4))
    assert match is not None
    assert (match.seq, match.reply, match.outcome) == (17, "time-exceeded", Outcome.HOP)


def test_time_exceeded_quoting_our_probe_matches_ipv6() -> None:
    m = method(6)
    reply = IPv6(src=HOP6, dst=SRC6) / ICMPv6TimeExceeded() / m.build(3, 0, 9)
    match = m.match(received(reply, 6))
    assert match is not None and (match.seq, match.outcome) == (9, Outcome.HOP)


def test_echo_reply_from_destination_means_reached() -> None:
    m = method(4)
    reply = IP(src=DST4, dst=SRC4) / ICMP(type=0, id=m.identifier, seq=5)
    match = m.match(received(reply, 4))
    assert match is not None
    assert (match.seq, match.reply, match.outcome) == (5, "echo-reply", Outcome.REACHED)
    m6 = method(6)
    reply6 = IPv6(src=DST6, dst=SRC6) / ICMPv6EchoReply(id=m6.identifier, seq=6)
    match6 = m6.match(received(reply6, 6))
    assert match6 is not None and match6.outcome is Outcome.REACHED


def test_unreachable_from_a_router_ends_the_trace_unreached() -> None:
    m = method(4)
    reply = IP(src=HOP4, dst=SRC4) / ICMP(type=3, code=13) / m.build(2, 0, 4)
    match = m.match(received(reply, 4))
    assert match is not None
    assert (match.reply, match.outcome) == ("admin-prohibited", Outcome.UNREACHABLE)
    m6 = method(6)
    reply6 = IPv6(src=HOP6, dst=SRC6) / ICMPv6DestUnreach(code=3) / m6.build(2, 0, 4)
    match6 = m6.match(received(reply6, 6))
    assert match6 is not None and match6.reply == "address-unreachable"


def test_answers_to_another_trace_are_ignored() -> None:
    ours, theirs = method(4), method(4)
    while theirs.identifier == ours.identifier:
        theirs = method(4)
    error = IP(src=HOP4, dst=SRC4) / ICMP(type=11) / theirs.build(2, 0, 3)
    echo = IP(src=DST4, dst=SRC4) / ICMP(type=0, id=theirs.identifier, seq=3)
    assert ours.match(received(error, 4)) is None
    assert ours.match(received(echo, 4)) is None


def test_echo_reply_from_another_host_is_ignored() -> None:
    m = method(4)
    reply = IP(src="10.0.9.9", dst=SRC4) / ICMP(type=0, id=m.identifier, seq=1)
    assert m.match(received(reply, 4)) is None


def test_error_about_another_destination_is_ignored() -> None:
    m = method(4)
    # our identifier, but sent to another destination (by another program)
    probe = IP(src=SRC4, dst="10.0.3.2", ttl=1) / ICMP(type=8, id=m.identifier, seq=1)
    reply = IP(src=HOP4, dst=SRC4) / ICMP(type=11) / bytes(probe)
    assert m.match(received(reply, 4)) is None


def test_other_icmp_is_ignored() -> None:
    m = method(4)
    assert m.match(received(IP(src=HOP4, dst=SRC4) / ICMP(type=8, id=m.identifier), 4)) is None
    assert m.match(received(IP(src=HOP4, dst=SRC4) / ICMP(type=5) / (b"x" * 28), 4)) is None
