"""What the built-in probe methods share: a packet built once a trace, patched per probe.

The built-in methods build their packet from bytes (:meth:`PacketProbe.packet`), without
scapy, whose import costs a third of a second and whose build a millisecond a trace (a run
of many targets makes a method per trace); a plugin's method may still use scapy
(:meth:`PacketProbe.ip`).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from tracekit.errors import BadInput
from tracekit.packets import ip_packet, skip_scapy_routes
from tracekit.probes import ProbeContext, ProbeMethod

if TYPE_CHECKING:
    from tracekit.wire import Quoted

#: Probe payload: 32 bytes, as traceroute's default 60-byte IPv4 probes. Its last word is
#: free for flow-stable probes to steer the checksum with.
PAYLOAD = b"tracekit".ljust(32, b"\0")
#: The least payload: a word to steer checksums with.
MIN_PAYLOAD = 2


def payload(context: ProbeContext, headers: int) -> bytes:
    """The probe payload: :data:`PAYLOAD`, or as long as ``--packet-size`` asks for the
    whole packet, ``headers`` (IP and layer 4) included."""
    size: int | None = context.options.get("packet_size")
    if size is None:
        return PAYLOAD
    length = size - headers
    if length < MIN_PAYLOAD:
        raise BadInput(f"--packet-size {size} is too small: at least {headers + MIN_PAYLOAD}")
    return (b"tracekit" * (length // 8 + 1))[:length]


class PacketProbe(ProbeMethod):
    """A probe method whose packets differ only in TTL and a few header fields."""

    def __init__(self, context: ProbeContext) -> None:
        self.context = context
        #: Offset of the layer above IP in our packets, and of the IPv4 TTL (IPv6 hop limit).
        self.l4 = 20 if context.ip_version == 4 else 40
        self.ttl_at = 8 if context.ip_version == 4 else 7
        self._reserved: socket.socket | None = None
        self.template = b""
        family = socket.AF_INET if context.ip_version == 4 else socket.AF_INET6
        #: Our source and the destination, packed, as quoted headers carry them.
        self.packed_source = socket.inet_pton(family, context.source)
        self.packed_destination = socket.inet_pton(family, context.destination)

    def ip(self, **fields: Any) -> Any:
        """A scapy IP/IPv6 header from our source to the destination, with ``--tos`` (the
        IPv4 type of service or IPv6 traffic class) where given."""
        skip_scapy_routes()
        tos = self.context.options.get("tos") or 0
        if self.context.ip_version == 4:
            from scapy.layers.inet import IP

            return IP(
                src=self.context.source, dst=self.context.destination, ttl=1, tos=tos, **fields
            )
        from scapy.layers.inet6 import IPv6

        return IPv6(src=self.context.source, dst=self.context.destination, hlim=1, tc=tos, **fields)

    @property
    def tos(self) -> int:
        """``--tos``: the IPv4 type of service or IPv6 traffic class (0 when not given)."""
        tos: int = self.context.options.get("tos") or 0
        return tos

    def packet(self, protocol: int, upper: bytes, checksum_at: int | None) -> bytes:
        """Our whole probe packet (:func:`tracekit.packets.ip_packet`): an IP/IPv6 header from
        our source to the destination, TTL 1, ``--tos``, over ``upper`` (the layer above IP,
        its checksum at ``checksum_at`` filled in)."""
        return ip_packet(
            self.packed_source, self.packed_destination, self.tos, protocol, upper, checksum_at
        )

    @property
    def free_word(self) -> int:
        """Offset of the payload word that may be changed to steer a checksum: the last
        whole one, counted in 16-bit words from the start of the layer above IP as the
        checksum counts them (with an odd ``--packet-size`` the last byte is half a word)."""
        return self.l4 + (len(self.template) - self.l4) // 2 * 2 - 2

    def is_ours(self, quoted: Any) -> bool:
        """Whether a quoted IP header (scapy's ``IPerror``/``IPerror6``) is one of this
        trace's probes: its source and destination."""
        return bool(quoted.src == self.context.source and quoted.dst == self.context.destination)

    def quotes_ours(self, quoted: Quoted | None, protocol: int) -> bool:
        """Whether an error quotes a ``protocol`` datagram from our source to our
        destination (:attr:`tracekit.wire.Reply.quoted`), with at least 8 bytes of it."""
        return (
            quoted is not None
            and quoted.protocol == protocol
            and quoted.dst == self.packed_destination
            and quoted.src == self.packed_source
            and len(quoted.l4) >= 8
        )

    def reserve_port(self, kind: int, port: int | None) -> int:
        """Bind a socket to our source port so no other program (or trace) uses it meanwhile.

        The kernel picks a free port unless ``port`` is given. A TCP socket that is bound but
        not listening makes the kernel answer a SYN-ACK with a RST, so no half-open
        connection lingers at the destination.
        """
        family = socket.AF_INET if self.context.ip_version == 4 else socket.AF_INET6
        sock = socket.socket(family, kind)
        try:
            sock.bind((self.context.source, port or 0))
        except OSError as exc:
            sock.close()
            raise BadInput(f"source port {port} is not free: {exc.strerror}") from exc
        self._reserved = sock
        bound: int = sock.getsockname()[1]
        return bound

    @property
    def datagram_socket(self) -> socket.socket | None:
        """The socket bound to our source port (:meth:`reserve_port`): the unprivileged
        transport sends UDP probes through it (:mod:`tracekit.datagram`); ``None`` for a
        stream socket (TCP), which is never read: unconnected, it would poll as hung up."""
        reserved = self._reserved
        return reserved if reserved is not None and reserved.type == socket.SOCK_DGRAM else None

    def close(self) -> None:
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
