"""ICMP echo probes (``--probe icmp``, the default), over IPv4 and IPv6.

Each trace picks a random ICMP identifier; the probe's sequence number is the engine's
``seq``. Answers are echo replies from the destination (matched by identifier and sequence)
and ICMP errors quoting one of our echo requests.

With ``--paris`` the ICMP checksum stays the same for every probe (a payload word makes up
for the changing sequence number), so load balancers that hash the first bytes of the ICMP
header keep all probes on one path.
"""

from __future__ import annotations

import secrets
from typing import Any

from tracekit import hookimpl
from tracekit.hookspecs import RegisterProbe
from tracekit.packets import set_ttl, set_word, steer_checksum
from tracekit.probe import Match, Outcome, ProbeContext, Received
from tracekit.probes.common import PAYLOAD, PacketProbe
from tracekit.replies import error_outcome, icmp_error


class IcmpEcho(PacketProbe):
    """Echo requests whose identifier is this trace's and whose sequence is the probe's."""

    options = frozenset({"paris"})  # no ports

    def __init__(self, context: ProbeContext) -> None:
        super().__init__(context)
        self.identifier = secrets.randbelow(0xFFFF) + 1
        self.paris = bool(context.options.get("paris"))
        if context.ip_version == 4:
            from scapy.layers.inet import ICMP

            echo: Any = ICMP(type=8, id=self.identifier, seq=0)
        else:
            from scapy.layers.inet6 import ICMPv6EchoRequest

            echo = ICMPv6EchoRequest(id=self.identifier, seq=0)
        self.template = bytes(self.ip() / echo / PAYLOAD)
        self._checksum = int.from_bytes(self.template[self.l4 + 2 : self.l4 + 4], "big")

    def parameters(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "packet_size": len(self.template),
            "paris": self.paris,
        }

    def build(self, ttl: int, attempt: int, seq: int) -> bytes:
        packet = bytearray(self.template)
        set_ttl(packet, ttl)
        set_word(packet, self.l4 + 6, seq, self.l4 + 2)
        if self.paris:
            steer_checksum(packet, self.l4 + 2, self._checksum, self.free_word)
        return bytes(packet)

    def match(self, received: Received) -> Match | None:
        packet = received.packet
        if self.context.ip_version == 4:
            from scapy.layers.inet import ICMP, ICMPerror

            icmp = packet.getlayer(ICMP)
            if icmp is None:
                return None
            if icmp.type == 0:
                return self._echo_reply(received, icmp.id, icmp.seq)
            request_layer: Any = ICMPerror
        else:
            from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest

            reply = packet.getlayer(ICMPv6EchoReply)
            if reply is not None:
                return self._echo_reply(received, reply.id, reply.seq)
            request_layer = ICMPv6EchoRequest
        error = icmp_error(packet)
        if error is None or not self.is_ours(error.quoted):
            return None
        request = error.quoted.getlayer(request_layer)
        if request is None or request.id != self.identifier:
            return None
        outcome = error_outcome(error.reply, received.address, self.context.destination)
        return Match(request.seq, error.reply, outcome, error.mpls)

    def _echo_reply(self, received: Received, identifier: int, seq: int) -> Match | None:
        if identifier != self.identifier or received.address != self.context.destination:
            return None
        return Match(seq, "echo-reply", Outcome.REACHED)


@hookimpl
def tracekit_register_probes(register: RegisterProbe) -> None:
    register("icmp", IcmpEcho, "ICMP echo requests (like traceroute -I)")
