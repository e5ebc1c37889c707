"""ICMP echo probes (``--probe icmp``, the default), over IPv4 and IPv6.

Each trace picks a random ICMP identifier; the probe's sequence number is the engine's
``seq``. Answers are echo replies from the destination (matched by identifier and sequence)
and ICMP errors quoting one of our echo requests.
"""

from __future__ import annotations

import secrets
from typing import Any

from tracekit import hookimpl
from tracekit.hookspecs import RegisterProbe
from tracekit.packets import set_ttl, set_word
from tracekit.probe import Match, Outcome, ProbeContext, ProbeMethod, Received
from tracekit.replies import error_outcome, icmp_error

PAYLOAD = b"tracekit".ljust(32, b"\0")


class IcmpEcho(ProbeMethod):
    """Echo requests whose identifier is this trace's and whose sequence is the probe's."""

    def __init__(self, context: ProbeContext) -> None:
        self.context = context
        self.identifier = secrets.randbelow(0xFFFF) + 1
        packet: Any
        if context.ip_version == 4:
            from scapy.layers.inet import ICMP, IP

            packet = IP(src=context.source, dst=context.destination, ttl=1) / ICMP(
                type=8, id=self.identifier, seq=0
            )
            self._icmp_offset = 20
        else:
            from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

            packet = IPv6(src=context.source, dst=context.destination, hlim=1) / (
                ICMPv6EchoRequest(id=self.identifier, seq=0)
            )
            self._icmp_offset = 40
        self._template = bytes(packet / PAYLOAD)

    def parameters(self) -> dict[str, Any]:
        return {"identifier": self.identifier, "packet_size": len(self._template)}

    def build(self, ttl: int, attempt: int, seq: int) -> bytes:
        packet = bytearray(self._template)
        set_ttl(packet, ttl)
        set_word(packet, self._icmp_offset + 6, seq, self._icmp_offset + 2)
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
        if error is None or not self._is_ours(error.quoted):
            return None
        request = error.quoted.getlayer(request_layer)
        if request is None or request.id != self.identifier:
            return None
        outcome = error_outcome(error.reply, received.address, self.context.destination)
        return Match(request.seq, error.reply, outcome)

    def _echo_reply(self, received: Received, identifier: int, seq: int) -> Match | None:
        if identifier != self.identifier or received.address != self.context.destination:
            return None
        return Match(seq, "echo-reply", Outcome.REACHED)

    def _is_ours(self, quoted: Any) -> bool:
        return bool(quoted.src == self.context.source and quoted.dst == self.context.destination)


@hookimpl
def tracekit_register_probes(register: RegisterProbe) -> None:
    register("icmp", IcmpEcho, "ICMP echo requests (like traceroute -I)")
