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
from typing import Any

from tracekit import hookimpl
from tracekit.errors import BadInput
from tracekit.hookspecs import RegisterProbe
from tracekit.packets import set_ttl, steer_checksum
from tracekit.probe import Match, Outcome, ProbeContext, ProbeMethod, Received
from tracekit.replies import error_outcome, icmp_error

__all__ = ["DEFAULT_PORT", "QUERY", "DnsProbe"]

DEFAULT_PORT = 53
#: The question every probe asks: (name, type).
QUERY = (".", "NS")
#: What a DNS response from the destination is called in reports.
REPLY = "dns-reply"
#: How the text output marks a DNS response.
MARKER = "[dns]"
_QR = 0x8000  # the header's "this is a response" bit


class DnsProbe(ProbeMethod):
    """DNS queries from one reserved source port, told apart by their transaction ids."""

    extra_protocols = (socket.IPPROTO_UDP,)  # the DNS responses
    sequence_space = 0xFFFE  # the UDP checksum carries seq + 1 (1..0xFFFE)

    def __init__(self, context: ProbeContext) -> None:
        from scapy.layers.dns import DNS, DNSQR
        from scapy.layers.inet import IP, UDP
        from scapy.layers.inet6 import IPv6

        self.context = context
        self.port: int = context.options.get("port") or DEFAULT_PORT
        self._reserved = self._reserve(context.options.get("source_port"))
        self.source_port: int = self._reserved.getsockname()[1]
        if context.ip_version == 4:
            ip: Any = IP(src=context.source, dst=context.destination, ttl=1)
        else:
            ip = IPv6(src=context.source, dst=context.destination, hlim=1)
        query = DNS(id=0, rd=1, qd=DNSQR(qname=QUERY[0], qtype=QUERY[1]))
        udp = UDP(sport=self.source_port, dport=self.port)
        self.template = bytes(ip / udp / query)
        #: Offset of the UDP header in our probes.
        self.l4 = 20 if context.ip_version == 4 else 40
        #: Transaction id -> sequence number of every probe sent.
        self.ids: dict[int, int] = {}

    def _reserve(self, port: int | None) -> socket.socket:
        """Bind a UDP socket to our source port, so that no other program uses it meanwhile
        (and our kernel does not answer the DNS responses with "port unreachable")."""
        family = socket.AF_INET if self.context.ip_version == 4 else socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.context.source, port or 0))
        except OSError as exc:
            sock.close()
            raise BadInput(f"source port {port} is not free: {exc.strerror}") from exc
        return sock

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
        from scapy.layers.inet import UDP, UDPerror

        packet = received.packet
        if packet.haslayer(UDP) and not packet.haslayer(UDPerror):
            return self._response(received)
        error = icmp_error(packet)
        if error is None:
            return None
        quoted = error.quoted
        if quoted.src != self.context.source or quoted.dst != self.context.destination:
            return None
        udp = quoted.getlayer(UDPerror)
        if udp is None or (udp.sport, udp.dport) != (self.source_port, self.port):
            return None
        outcome = error_outcome(error.reply, received.address, self.context.destination)
        return Match(udp.chksum - 1, error.reply, outcome, error.mpls)

    def _response(self, received: Received) -> Match | None:
        """A DNS response from the destination's port to ours, with one of our ids."""
        if received.address != self.context.destination:
            return None
        data = received.data
        start = (data[0] & 0x0F) * 4 if received.ip_version == 4 else 40
        if len(data) < start + 12:  # UDP header and DNS header
            return None
        sport, dport = struct.unpack_from("!HH", data, start)
        transaction_id, flags = struct.unpack_from("!HH", data, start + 8)
        if (sport, dport) != (self.port, self.source_port) or not flags & _QR:
            return None
        seq = self.ids.get(transaction_id)
        if seq is None:
            return None
        return Match(seq, REPLY, Outcome.REACHED, marker=MARKER)

    def close(self) -> None:
        self._reserved.close()


@hookimpl
def tracekit_register_probes(register: RegisterProbe) -> None:
    register("dns", DnsProbe, "DNS queries to UDP port 53, flow-stable (tracekit-dns)")
