"""UDP and TCP probes, flow-stable probing and ICMP extensions (pure logic, scapy-made
packets; the same probes on a real network are in test_probes_netns.py)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6TimeExceeded, IPv6

from tracekit.model import Hop, Host, MplsLabel, ProbeResult
from tracekit.outputs.text import hop_line
from tracekit.packets import internet_checksum
from tracekit.probes import Outcome, ProbeContext, Received
from tracekit.probes.icmp import IcmpEcho
from tracekit.probes.tcp import TcpSyn
from tracekit.probes.udp import BASE_PORT, UdpProbe
from tracekit.replies import icmp_error

# Probes reserve their source port with a real socket, so the source must be a local address.
SRC = {4: "127.0.0.1", 6: "::1"}
DST = {4: "10.0.4.2", 6: "2001:db8:4::2"}
HOP = {4: "10.0.2.2", 6: "2001:db8:2::2"}


@pytest.fixture
def probes() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for probe in made:
        probe.close()


def make(probes: list[Any], cls: Any, version: int, **options: Any) -> Any:
    probe = cls(ProbeContext(version, SRC[version], DST[version], options))
    probes.append(probe)
    return probe


def received(packet: Any) -> Received:
    data = bytes(packet)
    version = data[0] >> 4
    parsed = IP(data) if version == 4 else IPv6(data)
    return Received(data, version, parsed.src, 0.0, 64)


def error_about(probe_bytes: bytes, version: int, code: int | None = None) -> Any:
    """A time-exceeded (or, with ``code``, unreachable) error from HOP quoting a probe."""
    if version == 4:
        icmp = ICMP(type=11) if code is None else ICMP(type=3, code=code)
        return IP(src=HOP[version], dst=SRC[version]) / icmp / probe_bytes
    icmp6 = ICMPv6TimeExceeded() if code is None else ICMPv6DestUnreach(code=code)
    return IPv6(src=HOP[version], dst=SRC[version]) / icmp6 / probe_bytes


def valid_l4_checksum(data: bytes) -> bool:
    """Whether scapy, recomputing the UDP/TCP/ICMP checksum, gets the one in the packet."""
    packet = IP(data) if data[0] >> 4 == 4 else IPv6(data)
    layer = packet.payload
    name = "cksum" if hasattr(layer, "cksum") else "chksum"
    original = getattr(layer, name)
    delattr(layer, name)
    rebuilt = IP(bytes(packet)) if data[0] >> 4 == 4 else IPv6(bytes(packet))
    return bool(getattr(rebuilt.payload, name) == original)


@pytest.mark.parametrize("version", [4, 6])
def test_classic_udp_counts_destination_ports_up(probes: list[Any], version: int) -> None:
    probe = make(probes, UdpProbe, version)
    packets = [probe.build(ttl, 0, seq) for seq, ttl in enumerate([1, 1, 2, 9])]
    ports = [(IP(p) if version == 4 else IPv6(p))[UDP].dport for p in packets]
    assert ports == [BASE_PORT, BASE_PORT + 1, BASE_PORT + 2, BASE_PORT + 3]
    assert all(valid_l4_checksum(p) for p in packets)
    match = probe.match(received(error_about(packets[2], version)))
    assert match is not None and (match.seq, match.outcome) == (2, Outcome.HOP)


@pytest.mark.parametrize("version", [4, 6])
def test_paris_udp_keeps_the_flow_and_steers_the_checksum(probes: list[Any], version: int) -> None:
    probe = make(probes, UdpProbe, version, paris=True)
    packets = [probe.build(ttl, 0, seq) for seq, ttl in enumerate(range(1, 40))]
    parsed = [(IP(p) if version == 4 else IPv6(p))[UDP] for p in packets]
    assert len({(u.sport, u.dport, u.len) for u in parsed}) == 1  # one flow
    assert [u.chksum for u in parsed] == [seq + 1 for seq in range(39)]
    assert all(valid_l4_checksum(p) for p in packets)
    match = probe.match(received(error_about(packets[17], version)))
    assert match is not None and match.seq == 17


def test_fixed_udp_port_is_flow_stable(probes: list[Any]) -> None:
    probe = make(probes, UdpProbe, 4, port=53)
    assert probe.paris and probe.parameters()["port"] == 53
    assert {IP(probe.build(t, 0, t))[UDP].dport for t in range(1, 9)} == {53}


def test_udp_port_unreachable_from_the_destination_means_reached(probes: list[Any]) -> None:
    probe = make(probes, UdpProbe, 4)
    packet = probe.build(4, 0, 5)
    reply = IP(src=DST[4], dst=SRC[4]) / ICMP(type=3, code=3) / packet
    match = probe.match(received(reply))
    assert match is not None
    assert (match.seq, match.reply, match.outcome) == (5, "port-unreachable", Outcome.REACHED)


def test_udp_ignores_errors_about_another_source_port(probes: list[Any]) -> None:
    ours, theirs = make(probes, UdpProbe, 4), make(probes, UdpProbe, 4)
    assert ours.source_port != theirs.source_port
    assert ours.match(received(error_about(theirs.build(2, 0, 1), 4))) is None


@pytest.mark.parametrize("version", [4, 6])
def test_tcp_syns_count_sequence_numbers(probes: list[Any], version: int) -> None:
    probe = make(probes, TcpSyn, version, port=443)
    packets = [probe.build(ttl, 0, seq) for seq, ttl in enumerate([1, 2, 3])]
    segments = [(IP(p) if version == 4 else IPv6(p))[TCP] for p in packets]
    assert {(s.sport, s.dport, str(s.flags)) for s in segments} == {(probe.source_port, 443, "S")}
    assert [s.seq for s in segments] == [(probe.isn + i) & 0xFFFFFFFF for i in range(3)]
    assert all(valid_l4_checksum(p) for p in packets)
    match = probe.match(received(error_about(packets[1], version)))
    assert match is not None and (match.seq, match.outcome) == (1, Outcome.HOP)


@pytest.mark.parametrize("flags,reply", [("SA", "syn-ack"), ("RA", "rst")])
def test_tcp_answers_from_the_destination(probes: list[Any], flags: str, reply: str) -> None:
    probe = make(probes, TcpSyn, 4)
    answer = IP(src=DST[4], dst=SRC[4]) / TCP(
        sport=80, dport=probe.source_port, flags=flags, ack=(probe.isn + 7 + 1) & 0xFFFFFFFF
    )
    match = probe.match(received(answer))
    assert match is not None
    assert (match.seq, match.reply, match.outcome) == (7, reply, Outcome.REACHED)
    stray = IP(src=DST[4], dst=SRC[4]) / TCP(sport=80, dport=probe.source_port - 1, flags="SA")
    assert probe.match(received(stray)) is None
    bare_rst = IP(src=DST[4], dst=SRC[4]) / TCP(sport=80, dport=probe.source_port, flags="R")
    assert probe.match(received(bare_rst)) is None


@pytest.mark.parametrize("version", [4, 6])
def test_tcp_flows_vary_the_source_port_and_keep_the_identity(
    probes: list[Any], version: int
) -> None:
    probe = make(probes, TcpSyn, version)
    assert probe.flows > 256
    packets = [probe.build(5, flow, seq) for seq, flow in enumerate([0, 1, 200, 0])]
    segments = [(IP(p) if version == 4 else IPv6(p))[TCP] for p in packets]
    base = probe.source_port
    assert [s.sport for s in segments] == [base, base + 1, base + 200, base]
    assert {s.dport for s in segments} == {80}
    assert all(valid_l4_checksum(p) for p in packets)
    match = probe.match(received(error_about(packets[2], version)))
    assert match is not None and match.seq == 2
    answer = (IP(src=DST[4], dst=SRC[4]) if version == 4 else IPv6(src=DST[6], dst=SRC[6])) / TCP(
        sport=80, dport=base + 200, flags="SA", ack=(probe.isn + 2 + 1) & 0xFFFFFFFF
    )
    match = probe.match(received(answer))
    assert match is not None and (match.seq, match.outcome) == (2, Outcome.REACHED)
    assert make(probes, TcpSyn, version, source_port=base + 7).flows == 1  # a fixed port


def test_tcp_admin_prohibited_ends_the_trace(probes: list[Any]) -> None:
    probe = make(probes, TcpSyn, 6)
    match = probe.match(received(error_about(probe.build(3, 0, 4), 6, code=1)))
    assert match is not None
    assert (match.reply, match.outcome) == ("admin-prohibited", Outcome.UNREACHABLE)


@pytest.mark.parametrize("version", [4, 6])
def test_paris_icmp_keeps_the_checksum(probes: list[Any], version: int) -> None:
    probe = make(probes, IcmpEcho, version, paris=True)
    packets = [probe.build(ttl, 0, seq) for seq, ttl in enumerate(range(1, 20))]
    offset = 20 if version == 4 else 40
    assert len({p[offset : offset + 4] for p in packets}) == 1  # type, code, checksum
    assert all(valid_l4_checksum(p) for p in packets)
    match = probe.match(received(error_about(packets[11], version)))
    assert match is not None and match.seq == 11


def _with_mpls(error: bytes, labels: list[tuple[int, int, int, int]]) -> bytes:
    """An ICMPv4 time-exceeded (RFC 4884 length set) carrying an MPLS extension."""
    stack = b"".join(struct.pack("!I", (lab << 12) | (tc << 9) | (s << 8) | ttl)
                     for lab, tc, s, ttl in labels)  # fmt: skip
    header = bytearray(b"\x20\x00\x00\x00" + struct.pack("!HBB", 4 + len(stack), 1, 1) + stack)
    header[2:4] = internet_checksum(bytes(header)).to_bytes(2, "big")
    quoted = error.ljust(128, b"\0")
    return bytes(IP(src=HOP[4], dst=SRC[4]) / ICMP(type=11, length=32) / quoted / bytes(header))


def test_mpls_label_stack_is_read_from_the_icmp_extension(probes: list[Any]) -> None:
    probe = make(probes, UdpProbe, 4)
    packet = _with_mpls(probe.build(2, 0, 3), [(16010, 0, 0, 1), (24001, 5, 1, 1)])
    error = icmp_error(IP(packet))
    assert error is not None
    assert [(m.label, m.tc, m.s, m.ttl) for m in error.mpls] == [
        (16010, 0, False, 1),
        (24001, 5, True, 1),
    ]
    match = probe.match(received(IP(packet)))
    assert match is not None and match.seq == 3 and len(match.mpls) == 2


def test_mpls_is_shown_compactly_in_text() -> None:
    result = ProbeResult("10.0.2.2", 1.5, "time-exceeded", 63,
                         [MplsLabel(16010, 0, True, 1)])  # fmt: skip
    hop = Hop(2, [result], {"10.0.2.2": Host("10.0.2.2")})
    assert hop_line(hop, numeric=True) == " 2  10.0.2.2  1.500 ms <MPLS:L=16010,E=0,S=1,T=1>"


def _scapy_probe(probe: Any, version: int, tos: int, data: bytes) -> bytes:
    """The packet the method once built with scapy per trace (before templates were
    shared), for the same destination and identity."""
    src, dst = probe.context.source, probe.context.destination
    ip = (
        IP(src=src, dst=dst, ttl=1, tos=tos)
        if version == 4
        else IPv6(src=src, dst=dst, hlim=1, tc=tos)
    )
    if isinstance(probe, IcmpEcho):
        from scapy.layers.inet6 import ICMPv6EchoRequest

        echo: Any = (
            ICMP(type=8, id=probe.identifier, seq=0)
            if version == 4
            else ICMPv6EchoRequest(id=probe.identifier, seq=0)
        )
        return bytes(ip / echo / data)
    if isinstance(probe, UdpProbe):
        return bytes(ip / UDP(sport=probe.source_port, dport=probe.port) / data)
    syn = TCP(
        sport=probe.source_port, dport=probe.port, seq=probe.isn, flags="S", window=64240,
        options=[("MSS", 1460)],
    )  # fmt: skip
    return bytes(ip / syn)


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("cls", [IcmpEcho, UdpProbe, TcpSyn])
def test_shared_templates_patched_per_trace_are_what_scapy_builds(
    probes: list[Any], cls: Any, version: int
) -> None:
    """A trace's packet is a shared template (built by scapy once, to the unspecified
    address, with a zero identity) with its destination and identity patched in: byte for
    byte what scapy builds for that destination and identity, checksums included, for many
    random destinations and identities, with and without --tos and --packet-size."""
    import random

    rng = random.Random(12)
    for i in range(60):
        if version == 4:
            dst = ".".join(str(rng.randrange(256)) for _ in range(4))
        else:
            dst = ":".join(f"{rng.randrange(0x10000):x}" for _ in range(8))
        options: dict[str, Any] = {}
        if i % 3 == 1:
            options["tos"] = rng.randrange(256) & ~3
        if i % 4 == 2 and cls is not TcpSyn:
            options["packet_size"] = rng.randrange(60, 200)
        if i % 5 == 3 and cls is not IcmpEcho:
            options["port"] = rng.randrange(1, 0x10000)
        if i % 2 and cls is not TcpSyn:
            options["paris"] = True
        probe = cls(ProbeContext(version, SRC[version], dst, options))
        probes.append(probe)
        l4 = 20 if version == 4 else 40
        data = probe.template[l4 + (8 if cls is not TcpSyn else 24) :]
        assert probe.template == _scapy_probe(probe, version, options.get("tos", 0), data)
        if cls is TcpSyn:
            assert data == b""
        else:
            assert len(probe.template) == options.get("packet_size", l4 + 8 + 32)
        for ttl, seq in ((1, 0), (7, rng.randrange(100)), (30, rng.randrange(1000))):
            assert valid_l4_checksum(probe.build(ttl, 0, seq))
        probe.close()
        probes.remove(probe)


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("cls", [IcmpEcho, UdpProbe])
@pytest.mark.parametrize("size", [61, 64, 187])
def test_paris_probes_of_any_packet_size_have_valid_checksums(
    probes: list[Any], cls: Any, version: int, size: int
) -> None:
    """The word that steers the checksum is a whole 16-bit word of the layer above IP, also
    when an odd --packet-size leaves half a word at the end."""
    probe = make(probes, cls, version, paris=True, packet_size=size + (20 if version == 6 else 0))
    for flow, seq in ((0, 0), (0, 5), (3, 9), (17, 300)):
        assert valid_l4_checksum(probe.build(1 + seq % 30, flow, seq))
