"""A tracekit probe plugin: traceroute with DNS queries (``--probe dns``), IPv4 and IPv6.

Every probe is the same DNS query (``. NS``, recursion desired, as ``dig`` sends by
default) in a UDP datagram to port 53 (``--port`` for another), from one source port that
is reserved for the trace by a bound socket (``--source-port`` to choose it).

**Flow-stable**: every probe has the same addresses and ports, so per-flow load balancers
keep them all on one path (``--paris`` changes nothing). Probes differ only in their DNS
transaction id, which is chosen so that the UDP checksum equals the probe's sequence number
plus one (Paris traceroute's trick). ICMP errors quote the UDP header, checksum included, so
a router's answer names its probe even when it quotes no more than the RFC 792 minimum; a
DNS response carries the transaction id back.

**Identity**: an answer counts only if it is for this trace's source port (which no other
program or trace can hold meanwhile) and destination port, and, for a DNS response, carries
one of this trace's transaction ids. So two runs, even at once, never mix.

**Reached**: on a DNS response from the destination (any response code: reply
``dns-reply``, shown as ``[dns]``), or on "port unreachable" from it (nothing listens on the
port).
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING, Any

from tracekit import hookimpl
from tracekit.packets import set_ttl, steer_checksum
from tracekit.probes import Match, Outcome, ProbeContext, Received
from tracekit.probes.base import PacketProbe
from tracekit.replies import error_outcome

if TYPE_CHECKING:
    from tracekit.hookspecs import RegisterProbe

__all__ = ["DEFAULT_PORT", "QUERY", "DnsProbe"]

DEFAULT_PORT = 53
#: The question every probe asks: (name, type).
QUERY = (".", "NS")
#: What a DNS response from the destination is called in reports.
REPLY = "dns-reply"
#: How the text output marks a DNS response.
MARKER = "[dns]"
_QR = 0x8000  # the header's "this is a response" bit


class DnsProbe(PacketProbe):
    """DNS queries from one reserved source port, told apart by their transaction ids.

    Built on tracekit's base for packet probes (:class:`tracekit.probes.base.PacketProbe`):
    the packet is made once, the source port is held by a bound socket (which also lets
    tracekit trace without raw sockets, ``--unprivileged``), and answers are read from
    their bytes (``received.reply``), without scapy.
    """

    extra_protocols = (socket.IPPROTO_UDP,)  # the DNS responses
    sequence_space = 0xFFFE  # the UDP checksum carries seq + 1 (1..0xFFFE)

    def __init__(self, context: ProbeContext) -> None:
        from scapy.layers.dns import DNS, DNSQR
        from scapy.layers.inet import UDP

        super().__init__(context)
        self.port: int = context.options.get("port") or DEFAULT_PORT
        self.source_port = self.reserve_port(socket.SOCK_DGRAM, context.options.get("source_port"))
        query = DNS(id=0, rd=1, qd=DNSQR(qname=QUERY[0], qtype=QUERY[1]))
        udp = UDP(sport=self.source_port, dport=self.port)
        self.template = bytes(self.ip() / udp / query)
        #: Transaction id -> sequence number of every probe sent.
        self.ids: dict[int, int] = {}

    def parameters(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "source_port": self.source_port,
            "query": " ".join(QUERY),
            "paris": True,
            "packet_size": len(self.template),
        }

    def build(self, ttl: int, flow: int, seq: int) -> bytes:
        packet = bytearray(self.template)
        set_ttl(packet, ttl)
        # The transaction id (first word of the DNS header) steers the UDP checksum.
        steer_checksum(packet, self.l4 + 6, seq + 1, self.l4 + 8)
        (transaction_id,) = struct.unpack_from("!H", packet, self.l4 + 8)
        self.ids[transaction_id] = seq
        return bytes(packet)

    def match(self, received: Received) -> Match | None:
        reply = received.reply
        if reply is None:
            return None
        if reply.protocol == socket.IPPROTO_UDP:
            return self._response(received, reply.l4)
        quoted = reply.quoted
        name = reply.name
        if name is None or not self.quotes_ours(quoted, socket.IPPROTO_UDP):
            return None
        assert quoted is not None
        sport, dport, _length, checksum = struct.unpack_from("!HHHH", quoted.l4)
        if (sport, dport) != (self.source_port, self.port):
            return None
        outcome = error_outcome(name, received.address, self.context.destination)
        return Match(checksum - 1, name, outcome, reply.mpls)

    def _response(self, received: Received, udp: bytes) -> Match | None:
        """A DNS response from the destination's port to ours, with one of our ids."""
        if received.address != self.context.destination or len(udp) < 12:  # UDP + DNS headers
            return None
        sport, dport = struct.unpack_from("!HH", udp)
        transaction_id, flags = struct.unpack_from("!HH", udp, 8)
        if (sport, dport) != (self.port, self.source_port) or not flags & _QR:
            return None
        seq = self.ids.get(transaction_id)
        if seq is None:
            return None
        return Match(seq, REPLY, Outcome.REACHED, marker=MARKER)


@hookimpl
def tracekit_register_probes(register: RegisterProbe) -> None:
    register("dns", DnsProbe, "DNS queries to UDP port 53, flow-stable (tracekit-dns)")
