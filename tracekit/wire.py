"""Replies read from their bytes: what arrived, in one normalised form, in microseconds.

(``Reply`` and ``Quoted`` are not frozen only because frozen dataclasses are slower to make;
treat them as read-only.)

Every packet the sockets deliver is read here once, without scapy: an ICMP error and the
header of the probe it quotes, an echo reply, or a TCP/UDP segment. Probe methods decide
"ours or not" from these few fields; scapy (``Received.packet``) stays available to plugins
that want a full parse, at about a millisecond a packet.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tracekit.model import MplsLabel
from tracekit.replies import reply_name

ICMP4, ICMP6, TCP, UDP = 1, 58, 6, 17
#: ICMP error types whose body quotes the offending datagram.
_ERRORS = {4: frozenset({3, 11, 12}), 6: frozenset({1, 2, 3, 4})}
#: Error types with an RFC 4884 length field (v4: in 32-bit words, v6: in 64-bit words).
_LENGTH_FIELD = {4: frozenset({3, 11, 12}), 6: frozenset({1, 3})}
_ECHO_REPLY = {4: 0, 6: 129}
#: RFC 4884 section 5: an extension follows a quote padded to at least 128 bytes.
_MIN_QUOTE = 128


@dataclass(slots=True)
class Quoted:
    """The header of our probe as an ICMP error quotes it."""

    #: Packed source and destination addresses (4 or 16 bytes each).
    src: bytes
    dst: bytes
    #: IP protocol of the quoted datagram (ICMP 1/58, TCP 6, UDP 17...).
    protocol: int
    #: The quoted layer-4 bytes (at least 8 where the router follows RFC 792).
    l4: bytes


@dataclass(slots=True)
class Reply:
    """One received packet, read: ICMP type and code, and what it carries."""

    #: 4 or 6.
    ip_version: int
    #: IP protocol of the packet itself (ICMP 1/58, TCP 6, UDP 17).
    protocol: int
    #: ICMP type and code; -1 for TCP/UDP segments.
    icmp_type: int = -1
    icmp_code: int = -1
    #: The layer-4 bytes of the packet (an ICMP message, a TCP or UDP segment).
    l4: bytes = b""
    #: For ICMP errors: the quoted probe header.
    quoted: Quoted | None = None
    #: For ICMP errors: the RFC 4884 extension structure, if any.
    extension: bytes = b""

    @property
    def is_echo_reply(self) -> bool:
        return self.quoted is None and self.icmp_type == _ECHO_REPLY[self.ip_version]

    @property
    def name(self) -> str | None:
        """The reply name of an ICMP error (``"time-exceeded"``...), else ``None``."""
        if self.quoted is None:
            return None
        return reply_name(self.ip_version, self.icmp_type, self.icmp_code)

    @property
    def mpls(self) -> tuple[MplsLabel, ...]:
        return mpls_labels(self.extension) if self.extension else ()


def parse(data: bytes, ip_version: int) -> Reply | None:
    """Read a whole IPv4/IPv6 packet; ``None`` when it is too short to be any reply.

    (Every packet that arrives comes here: kept to a few slices and one object or two.)"""
    if ip_version == 4:
        if len(data) < 20:
            return None
        start = (data[0] & 0x0F) * 4
        protocol = data[9]
        if protocol != ICMP4:
            return Reply(4, protocol, l4=data[start:])
    else:
        if len(data) < 40:
            return None
        start, protocol = 40, data[6]
        if protocol != ICMP6:
            return Reply(6, protocol, l4=data[start:])
    if len(data) < start + 8:
        return None
    l4 = data[start:]
    kind, code = l4[0], l4[1]
    if kind not in _ERRORS[ip_version]:
        return Reply(ip_version, protocol, kind, code, l4)
    length = 0
    if kind in _LENGTH_FIELD[ip_version]:
        length = l4[5] * 4 if ip_version == 4 else l4[4] * 8
    if length:
        quoted, extension = l4[8 : 8 + length], l4[8 + length :]
    else:
        quoted, extension = _split(l4[8:])
    header = _quoted(quoted, ip_version)
    if header is None:
        return None
    return Reply(ip_version, protocol, kind, code, l4, header, extension)


def _split(body: bytes) -> tuple[bytes, bytes]:
    """The quoted datagram and the extension after it (RFC 4884), where the error has no
    length field or left it 0."""
    # Older routers set no length but still pad to 128 bytes before an extension.
    if len(body) > _MIN_QUOTE + 4 and body[_MIN_QUOTE] >> 4 == 2:
        return body[:_MIN_QUOTE], body[_MIN_QUOTE:]
    return body, b""


def _quoted(quoted: bytes, ip_version: int) -> Quoted | None:
    if ip_version == 4:
        if len(quoted) < 20 or quoted[0] >> 4 != 4:
            return None
        ihl = (quoted[0] & 0x0F) * 4
        return Quoted(quoted[12:16], quoted[16:20], quoted[9], quoted[ihl:])
    if len(quoted) < 40 or quoted[0] >> 4 != 6:
        return None
    return Quoted(quoted[8:24], quoted[24:40], quoted[6], quoted[40:])


def mpls_labels(extension: bytes) -> tuple[MplsLabel, ...]:
    """The MPLS label stack entries (RFC 4950) in an RFC 4884 extension structure."""
    if len(extension) < 8 or extension[0] >> 4 != 2:
        return ()
    data = extension[4:]  # after the extension header (version, checksum)
    labels = []
    while len(data) >= 4:
        length, class_num, c_type = struct.unpack_from("!HBB", data)
        if length < 4 or length > len(data):
            break
        if class_num == 1 and c_type == 1:
            body = data[4:length]
            for i in range(0, len(body) - 3, 4):
                (entry,) = struct.unpack_from("!I", body, i)
                labels.append(
                    MplsLabel(entry >> 12, (entry >> 9) & 7, bool(entry & 0x100), entry & 0xFF)
                )
        data = data[length:]
    return tuple(labels)
