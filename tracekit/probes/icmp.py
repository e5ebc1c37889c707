"""ICMP echo probes (``--probe icmp``, the default), over IPv4 and IPv6.

Each trace picks a random ICMP identifier; the probe's sequence number is the engine's
``seq``. Answers are echo replies from the destination (matched by identifier and sequence)
and ICMP errors quoting one of our echo requests.

With ``--paris`` the ICMP checksum stays the same for every probe (a payload word makes up
for the changing sequence number), so load balancers that hash the first bytes of the ICMP
header keep all probes on one path.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, Any

from tracekit import hookimpl
from tracekit.packets import set_word, steer_checksum
from tracekit.probes import PACKET_SIZE, PARIS, TOS, Match, Outcome, ProbeContext, Received
from tracekit.probes.base import PacketProbe, payload
from tracekit.replies import error_outcome

if TYPE_CHECKING:
    from tracekit.hookspecs import RegisterProbe


class IcmpEcho(PacketProbe):
    """Echo requests whose identifier is this trace's and whose sequence is the probe's."""

    uses_scapy = False  # packets from bytes (PacketProbe.packet)

    options = (PARIS, PACKET_SIZE, TOS)  # no ports

    def __init__(self, context: ProbeContext) -> None:
        super().__init__(context)
        self.identifier = int.from_bytes(os.urandom(2), "big") % 0xFFFF + 1
        self.paris = bool(context.options.get("paris"))
        self._protocol, self._request = (1, 8) if context.ip_version == 4 else (58, 128)
        echo = struct.pack("!BBHHH", self._request, 0, 0, self.identifier, 0)
        data = payload(context, self.l4 + 8)
        self.template = self.packet(self._protocol, echo + data, 2)
        if self.paris:
            self.flows = 0xFFFE
        self._checksum = int.from_bytes(self.template[self.l4 + 2 : self.l4 + 4], "big")

    def parameters(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "packet_size": len(self.template),
            "paris": self.paris,
        }

    def build(self, ttl: int, flow: int, seq: int) -> bytes:
        packet = bytearray(self.template)
        packet[self.ttl_at] = ttl
        set_word(packet, self.l4 + 6, seq, self.l4 + 2)
        if self.paris:
            target = (self._checksum + flow - 1) % 0xFFFE + 1  # 1..0xFFFE
            steer_checksum(packet, self.l4 + 2, target, self.free_word)
        return bytes(packet)

    def match(self, received: Received) -> Match | None:
        reply = received.reply
        if reply is None:
            return None
        if reply.is_echo_reply:
            if received.address != self.context.destination:
                return None
            ident, seq = struct.unpack_from("!HH", reply.l4, 4)
            if ident != self.identifier:
                return None
            return Match(seq, "echo-reply", Outcome.REACHED)
        quoted = reply.quoted
        if quoted is None or not self.quotes_ours(quoted, self._protocol):
            return None
        kind, _, _, ident, seq = struct.unpack_from("!BBHHH", quoted.l4)
        name = reply.name
        if kind != self._request or ident != self.identifier or name is None:
            return None
        outcome = error_outcome(name, received.address, self.context.destination)
        return Match(seq, name, outcome, reply.mpls)


@hookimpl
def tracekit_register_probes(register: RegisterProbe) -> None:
    register("icmp", IcmpEcho, "ICMP echo requests (like traceroute -I)")
