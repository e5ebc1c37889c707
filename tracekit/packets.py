"""Small byte-level helpers for probe methods that patch a packet built once by scapy.

Building a packet with scapy costs about half a millisecond; a probe method builds its packet
once and then changes only the fields that differ between probes (TTL, sequence), keeping
the checksums right with an incremental update (RFC 1624).
"""

from __future__ import annotations

import functools
import struct


def internet_checksum(data: bytes) -> int:
    """The Internet checksum of ``data`` (0 when the data carries its own correct checksum)."""
    if len(data) % 2:
        data += b"\0"
    # The ones' complement sum of the 16-bit words is the number the bytes spell, modulo
    # 0xFFFF (2**16 is 1 modulo 0xFFFF), with 0xFFFF for a non-zero multiple: one C call.
    number = int.from_bytes(data, "big")
    total = number % 0xFFFF
    if not total and number:
        total = 0xFFFF
    return ~total & 0xFFFF


def ipv6_header(protocol: int, src: bytes, dst: bytes, length: int, hop_limit: int) -> bytes:
    """An IPv6 header (packed addresses) for ``length`` bytes of ``protocol``: what a raw or
    datagram socket leaves out of what it delivers, put back so every reply reads alike."""
    return struct.pack("!IHBB16s16s", 0x60000000, length, protocol, hop_limit, src, dst)


def set_word(packet: bytearray, offset: int, value: int, checksum_offset: int) -> None:
    """Set the 16-bit field at ``offset`` and fix the checksum at ``checksum_offset``."""
    (old,) = struct.unpack_from("!H", packet, offset)
    (checksum,) = struct.unpack_from("!H", packet, checksum_offset)
    total = _ones_add(_ones_add(~checksum & 0xFFFF, ~old & 0xFFFF), value)
    struct.pack_into("!H", packet, offset, value)
    struct.pack_into("!H", packet, checksum_offset, ~total & 0xFFFF)


def set_words(
    packet: bytearray, offset: int, data: bytes, checksum_offsets: tuple[int, ...]
) -> None:
    """Put ``data`` (an even number of bytes: an address) at ``offset``, and fix every
    checksum at ``checksum_offsets`` (those that cover it: the IPv4 header's, and a layer 4
    checksum whose pseudo-header holds the address)."""
    for at in range(0, len(data), 2):
        (old,) = struct.unpack_from("!H", packet, offset + at)
        (value,) = struct.unpack_from("!H", data, at)
        for checksum_offset in checksum_offsets:
            (checksum,) = struct.unpack_from("!H", packet, checksum_offset)
            total = _ones_add(_ones_add(~checksum & 0xFFFF, ~old & 0xFFFF), value)
            struct.pack_into("!H", packet, checksum_offset, ~total & 0xFFFF)
        struct.pack_into("!H", packet, offset + at, value)


def set_ttl(packet: bytearray, ttl: int) -> None:
    """Set the IPv4 TTL or IPv6 hop limit (the kernel recomputes the IPv4 header checksum)."""
    packet[8 if packet[0] >> 4 == 4 else 7] = ttl


def _ones_add(a: int, b: int) -> int:
    total = a + b
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def steer_checksum(packet: bytearray, checksum_offset: int, target: int, free_offset: int) -> None:
    """Make the checksum at ``checksum_offset`` equal ``target`` (1..0xFFFE) by changing the
    16-bit word at ``free_offset`` (a payload word), keeping the packet valid.

    Paris traceroute's trick: the checksum is quoted in ICMP errors and is not part of the
    flow hash, so it can carry the probe's identity while the 5-tuple stays fixed.
    """
    (checksum,) = struct.unpack_from("!H", packet, checksum_offset)
    (free,) = struct.unpack_from("!H", packet, free_offset)
    # The sum over the packet must not change: free + checksum == free' + target.
    struct.pack_into(
        "!H", packet, free_offset, _ones_add(_ones_add(free, checksum), ~target & 0xFFFF)
    )
    struct.pack_into("!H", packet, checksum_offset, target)


def set_long(packet: bytearray, offset: int, value: int, checksum_offset: int) -> None:
    """Set the 32-bit field at ``offset`` and fix the checksum at ``checksum_offset``."""
    set_word(packet, offset, value >> 16, checksum_offset)
    set_word(packet, offset + 2, value & 0xFFFF, checksum_offset)


@functools.cache
def skip_scapy_routes() -> None:
    """Tell scapy not to read the routing tables when its layers are first imported.

    Probes carry the source address the kernel chose (``ProbeContext.source``) and go out
    through tracekit's own sockets, so scapy's copy of the routes is never used; reading it
    costs a third of scapy's import time. Call before the first import of ``scapy.layers``
    (once a process: every trace of a run calls it).
    """
    from scapy.config import conf

    conf.route_autoload = False
    conf.route6_autoload = False
