"""Byte-level helpers and ICMP error meanings (pure logic)."""

from __future__ import annotations

import random
import socket
import struct

import pytest

from tracekit.packets import internet_checksum, set_word
from tracekit.probes import Outcome, ProbeContext
from tracekit.probes.udp import UdpProbe
from tracekit.replies import error_outcome, marker


def test_incremental_checksum_update_equals_a_full_recomputation() -> None:
    rng = random.Random(7)
    for _ in range(500):
        data = bytearray(rng.randbytes(2 * rng.randint(3, 40)))
        data[0:2] = b"\0\0"
        data[0:2] = internet_checksum(bytes(data)).to_bytes(2, "big")
        offset = 2 * rng.randint(1, len(data) // 2 - 1)
        set_word(data, offset, rng.randint(0, 0xFFFF), 0)
        assert internet_checksum(bytes(data)) == 0


@pytest.mark.parametrize(
    "reply,mark",
    [
        ("host-unreachable", "!H"),
        ("net-unreachable", "!N"),
        ("protocol-unreachable", "!P"),
        ("admin-prohibited", "!X"),
        ("fragmentation-needed", "!F"),
        ("no-route", "!N"),
        ("address-unreachable", "!H"),
        ("unreachable-99", "!<99>"),
        ("port-unreachable", ""),
        ("time-exceeded", ""),
        ("echo-reply", ""),
        (None, ""),
    ],
)
def test_markers_are_traceroute_s(reply: str | None, mark: str) -> None:
    assert marker(reply) == mark


def test_what_errors_mean_for_the_trace() -> None:
    assert error_outcome("time-exceeded", "10.0.1.2", "10.0.4.2") is Outcome.HOP
    assert error_outcome("port-unreachable", "10.0.4.2", "10.0.4.2") is Outcome.REACHED
    assert error_outcome("port-unreachable", "10.0.3.2", "10.0.4.2") is Outcome.UNREACHABLE
    assert error_outcome("host-unreachable", "10.0.3.2", "10.0.4.2") is Outcome.UNREACHABLE


@pytest.mark.parametrize("version,source,prefix", [(4, "127.0.0.1", "192.0.2."),
                                                    (6, "::1", "2001:db8::")])  # fmt: skip
def test_every_udp_probe_has_a_valid_nonzero_checksum(
    version: int, source: str, prefix: str
) -> None:
    """Over a whole sequence space the incremental update passes about half the checksum
    values; where it passes 0, UDP must send 0xFFFF (RFC 768; IPv6 drops a datagram with
    0). Destinations are tried until one's space holds that case."""
    header = 20 if version == 4 else 40
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    for host in range(1, 20):
        destination = f"{prefix}{host}"
        method = UdpProbe(ProbeContext(version, source, destination, {}))
        try:
            src, dst = socket.inet_pton(family, source), socket.inet_pton(family, destination)
            all_ones = 0
            for seq in range(method.sequence_space):
                udp = method.build(5, 0, seq)[header:]
                if version == 4:
                    pseudo = struct.pack("!4s4sBBH", src, dst, 0, 17, len(udp))
                else:
                    pseudo = struct.pack("!16s16sIxxxB", src, dst, len(udp), 17)
                assert udp[6:8] != b"\0\0", seq
                assert internet_checksum(pseudo + udp) == 0, seq
                all_ones += udp[6:8] == b"\xff\xff"
        finally:
            method.close()
        if all_ones:
            return
    pytest.fail("no destination's sequence space came to a checksum of 0")
