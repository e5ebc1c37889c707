"""Byte-level helpers and ICMP error meanings (pure logic)."""

from __future__ import annotations

import random

import pytest

from tracekit.packets import internet_checksum, set_word
from tracekit.probes import Outcome
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
