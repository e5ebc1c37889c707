"""Small byte-level helpers for probe methods that patch a packet built once by scapy.

Building a packet with scapy costs about half a millisecond; a probe method builds its packet
once and then changes only the fields that differ between probes (TTL, sequence), keeping
the checksums right with an incremental update (RFC 1624).
"""

from __future__ import annotations

import struct


def internet_checksum(data: bytes) -> int:
    """The Internet checksum of ``data`` (0 when the data carries its own correct checksum)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def set_word(packet: bytearray, offset: int, value: int, checksum_offset: int) -> None:
    """Set the 16-bit field at ``offset`` and fix the checksum at ``checksum_offset``."""
    (old,) = struct.unpack_from("!H", packet, offset)
    (checksum,) = struct.unpack_from("!H", packet, checksum_offset)
    total = (~checksum & 0xFFFF) + (~old & 0xFFFF) + value
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    struct.pack_into("!H", packet, offset, value)
    struct.pack_into("!H", packet, checksum_offset, ~total & 0xFFFF)


def set_ttl(packet: bytearray, ttl: int) -> None:
    """Set the IPv4 TTL or IPv6 hop limit (the kernel recomputes the IPv4 header checksum)."""
    packet[8 if packet[0] >> 4 == 4 else 7] = ttl
