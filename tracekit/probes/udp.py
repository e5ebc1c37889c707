"""UDP probes (``--probe udp``), over IPv4 and IPv6.

Every probe of a trace comes from one source port, which tracekit reserves for the trace.

- Classic (the default): the destination port rises with every probe, from 33434, as in
  ``traceroute``; the port in the quoted header tells which probe an answer is for.
- Flow-stable (``--paris``, or any fixed ``--port``): every probe has the same addresses and
  ports, so per-flow load balancers keep them on one path; the probe is told by its UDP
  checksum, steered through the payload (as Paris traceroute does).

The destination is reached when it answers "port unreachable", or, in classic mode, with a
UDP datagram from the port probed (a service listening there). In flow-stable mode every
probe has the same ports, so a UDP answer cannot say which probe it is for and is not used:
the trace relies on ICMP then (use a protocol plugin, such as DNS, to probe open ports).
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING, Any

from tracekit import hookimpl
from tracekit.packets import set_word, steer_checksum
from tracekit.probes import (
    PACKET_SIZE,
    PARIS,
    PORT,
    SOURCE_PORT,
    TOS,
    Match,
    Outcome,
    ProbeContext,
    Received,
)
from tracekit.probes.base import PacketProbe, payload
from tracekit.replies import error_outcome

if TYPE_CHECKING:
    from tracekit.hookspecs import RegisterProbe

BASE_PORT = 33434
_UDP = 17


class UdpProbe(PacketProbe):
    """UDP datagrams to a closed (or chosen) port."""

    uses_scapy = False  # packets from bytes (PacketProbe.packet)

    options = (PORT, PARIS, SOURCE_PORT, PACKET_SIZE, TOS)

    def __init__(self, context: ProbeContext) -> None:
        super().__init__(context)
        port = context.options.get("port")
        self.paris = bool(context.options.get("paris")) or port is not None
        self.port: int = port if port is not None else BASE_PORT
        self.source_port = self.reserve_port(socket.SOCK_DGRAM, context.options.get("source_port"))
        data = payload(context, self.l4 + 8)
        header = struct.pack("!HHHH", self.source_port, self.port, 8 + len(data), 0)
        self.template = self.packet(_UDP, header + data, 6)
        if not self.paris:
            self.extra_protocols = (socket.IPPROTO_UDP,)
            # Destination ports from BASE_PORT up to 65535, never wrapping to low ports.
            self.sequence_space = 0x10000 - self.port
        else:
            # The UDP checksum carries seq + 1 (1..0xFFFE); without a fixed --port, flows
            # take the destination ports from 33434 up.
            self.sequence_space = 0xFFFE
            self.flows = 1 if port is not None else 1024

    def parameters(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "source_port": self.source_port,
            "paris": self.paris,
            "packet_size": len(self.template),
        }

    def build(self, ttl: int, flow: int, seq: int) -> bytes:
        packet = bytearray(self.template)
        packet[self.ttl_at] = ttl
        if self.paris:
            if flow:
                set_word(packet, self.l4 + 2, self.port + flow, self.l4 + 6)
            steer_checksum(packet, self.l4 + 6, seq + 1, self.free_word)
        else:
            set_word(packet, self.l4 + 2, self.port + seq, self.l4 + 6)
            if not packet[self.l4 + 6] and not packet[self.l4 + 7]:
                # RFC 768: a checksum that comes to 0 is sent as 0xFFFF (0 means "none",
                # and an IPv6 destination drops a UDP datagram without one)
                packet[self.l4 + 6] = packet[self.l4 + 7] = 0xFF
        return bytes(packet)

    def match(self, received: Received) -> Match | None:
        reply = received.reply
        if reply is None:
            return None
        if reply.protocol == _UDP:
            return self._answer(received, reply.l4)
        quoted = reply.quoted
        if quoted is None or not self.quotes_ours(quoted, _UDP):
            return None
        sport, dport, _, checksum = struct.unpack_from("!HHHH", quoted.l4)
        name = reply.name
        if sport != self.source_port or name is None:
            return None
        if self.paris:
            if not 0 <= dport - self.port < self.flows:
                return None
            seq = checksum - 1
        else:
            seq = dport - self.port
            if not 0 <= seq < self.sequence_space:
                return None
        outcome = error_outcome(name, received.address, self.context.destination)
        return Match(seq, name, outcome, reply.mpls)

    def _answer(self, received: Received, segment: bytes) -> Match | None:
        """A datagram from the destination's probed port to our source port (classic mode)."""
        if self.paris or received.address != self.context.destination or len(segment) < 8:
            return None
        sport, dport = struct.unpack_from("!HH", segment)
        if dport != self.source_port or not 0 <= sport - self.port < self.sequence_space:
            return None
        return Match(sport - self.port, "udp-reply", Outcome.REACHED)


@hookimpl
def tracekit_register_probes(register: RegisterProbe) -> None:
    register("udp", UdpProbe, "UDP datagrams to closed ports (like traceroute -U); --paris")
