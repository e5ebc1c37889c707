"""Small byte-level helpers for probe methods that patch a packet built once by scapy.

A probe method builds its packet once per trace (:func:`ip_packet`, without scapy: importing
scapy costs a run a third of a second, building with it a millisecond a trace) and then
changes only the fields that differ between probes (TTL, sequence), keeping the checksums
right with an incremental update (RFC 1624). Unit tests check the bytes against scapy's.
"""

from __future__ import annotations

import functools
import struct

_ICMP = 1
_UDP = 17


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
    """Set the 16-bit field at ``offset`` and fix the checksum at ``checksum_offset``
    (RFC 1624: ``~(~HC + ~m + m')``; byte by byte, as fast as it gets: once a probe)."""
    total = (
        ((packet[checksum_offset] << 8 | packet[checksum_offset + 1]) ^ 0xFFFF)
        + ((packet[offset] << 8 | packet[offset + 1]) ^ 0xFFFF)
        + value
    )
    total = (total & 0xFFFF) + (total >> 16)  # at most 3 x 0xFFFF: two folds make 16 bits
    total = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
    packet[offset] = value >> 8
    packet[offset + 1] = value & 0xFF
    packet[checksum_offset] = total >> 8
    packet[checksum_offset + 1] = total & 0xFF


def ip_packet(
    src: bytes, dst: bytes, tos: int, protocol: int, upper: bytes, checksum_at: int | None
) -> bytes:
    """A whole IPv4 or IPv6 packet (by the length of the packed ``src`` and ``dst``) of
    ``protocol``, as scapy builds ``IP(src, dst, ttl=1, tos)/...`` or ``IPv6(src, dst, hlim=1,
    tc=tos)/...``: TTL or hop limit 1, IPv4 identification 1, no options. ``upper`` is the
    layer above IP with a zero checksum at ``checksum_at``, where the checksum is filled in:
    over the pseudo-header too, except for ICMPv4, and 0 written as 0xFFFF for UDP (RFC 768).
    ``None``: the layer has no checksum to fill."""
    length = len(upper)
    if len(src) == 4:
        header = bytearray(
            struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + length, 1, 0, 1, protocol, 0, src, dst)
        )
        struct.pack_into("!H", header, 10, internet_checksum(bytes(header)))
        pseudo = struct.pack("!4s4sBBH", src, dst, 0, protocol, length)
    else:
        header = bytearray(
            struct.pack("!IHBB16s16s", 0x60000000 | tos << 20, length, protocol, 1, src, dst)
        )
        pseudo = struct.pack("!16s16sIxxxB", src, dst, length, protocol)
    if checksum_at is not None:
        covered = upper if protocol == _ICMP else pseudo + upper
        checksum = internet_checksum(covered)
        if checksum == 0 and protocol == _UDP:
            checksum = 0xFFFF
        filled = bytearray(upper)
        struct.pack_into("!H", filled, checksum_at, checksum)
        upper = bytes(filled)
    return bytes(header) + upper


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
