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
from typing import Any

from tracekit import hookimpl
from tracekit.hookspecs import RegisterProbe
from tracekit.packets import set_ttl, set_word, steer_checksum
from tracekit.probe import Match, Outcome, ProbeContext, Received
from tracekit.probes.common import PAYLOAD, PacketProbe
from tracekit.replies import error_outcome, icmp_error

BASE_PORT = 33434


class UdpProbe(PacketProbe):
    """UDP datagrams to a closed (or chosen) port."""

    def __init__(self, context: ProbeContext) -> None:
        super().__init__(context)
        from scapy.layers.inet import UDP

        port = context.options.get("port")
        self.paris = bool(context.options.get("paris")) or port is not None
        self.port: int = port if port is not None else BASE_PORT
        self.source_port = self.reserve_port(socket.SOCK_DGRAM, context.options.get("source_port"))
        self.template = bytes(self.ip() / UDP(sport=self.source_port, dport=self.port) / PAYLOAD)
        if not self.paris:
            self.extra_protocols = (socket.IPPROTO_UDP,)

    def parameters(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "source_port": self.source_port,
            "paris": self.paris,
            "packet_size": len(self.template),
        }

    def build(self, ttl: int, attempt: int, seq: int) -> bytes:
        packet = bytearray(self.template)
        set_ttl(packet, ttl)
        if self.paris:
            steer_checksum(packet, self.l4 + 6, seq + 1, self.free_word)
        else:
            set_word(packet, self.l4 + 2, (self.port + seq) & 0xFFFF, self.l4 + 6)
        return bytes(packet)

    def match(self, received: Received) -> Match | None:
        from scapy.layers.inet import UDP, UDPerror

        packet = received.packet
        datagram = packet.getlayer(UDP)
        if datagram is not None and not packet.haslayer(UDPerror):
            return self._answer(received, datagram)
        error = icmp_error(packet)
        if error is None or not self.is_ours(error.quoted):
            return None
        udp = error.quoted.getlayer(UDPerror)
        if udp is None or udp.sport != self.source_port:
            return None
        if self.paris:
            if udp.dport != self.port:
                return None
            seq = udp.chksum - 1
        else:
            seq = (udp.dport - self.port) & 0xFFFF
        outcome = error_outcome(error.reply, received.address, self.context.destination)
        return Match(seq, error.reply, outcome, error.mpls)

    def _answer(self, received: Received, datagram: Any) -> Match | None:
        """A datagram from the destination's probed port to our source port (classic mode)."""
        if self.paris or received.address != self.context.destination:
            return None
        if datagram.dport != self.source_port:
            return None
        return Match((datagram.sport - self.port) & 0xFFFF, "udp-reply", Outcome.REACHED)


@hookimpl
def tracekit_register_probes(register: RegisterProbe) -> None:
    register("udp", UdpProbe, "UDP datagrams to closed ports (like traceroute -U); --paris")
