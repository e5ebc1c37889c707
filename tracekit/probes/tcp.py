"""TCP SYN probes (``--probe tcp``), over IPv4 and IPv6: port 80 unless ``--port``.

Every probe has the same addresses and ports (flow-stable by nature); the probe is told by
its sequence number, which ICMP errors quote and the destination acknowledges (plus one).
The destination is reached when it answers SYN-ACK (port open) or RST (port closed).

The source port is reserved by a bound TCP socket that never listens, so our kernel answers
the destination's SYN-ACK with a RST: no half-open connection is left behind.

Flows (``--mda``): flow ``f`` comes from the source port ``f`` above the reserved one (the
destination port stays the one asked for, the identity stays in the sequence number), for
:data:`FLOWS` flows unless ``--source-port`` fixes it. Only the first port is reserved; our
kernel answers a SYN-ACK to the others with a RST as well, as no socket holds them.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import TYPE_CHECKING, Any

from tracekit import hookimpl
from tracekit.packets import set_long, set_word
from tracekit.probes import PARIS, PORT, SOURCE_PORT, TOS, Match, Outcome, ProbeContext, Received
from tracekit.probes.base import PacketProbe
from tracekit.replies import error_outcome

if TYPE_CHECKING:
    from tracekit.hookspecs import RegisterProbe

DEFAULT_PORT = 80
#: Flows (source ports) for multipath discovery, unless ``--source-port`` is given.
FLOWS = 1024
_SYN, _RST, _ACK = 0x02, 0x04, 0x10
_TCP = 6
#: The TCP option maximum segment size, 1460.
_MSS_1460 = bytes([2, 4, 0x05, 0xB4])


class TcpSyn(PacketProbe):
    """SYN segments whose sequence numbers count the probes from a random start."""

    uses_scapy = False  # packets from bytes (PacketProbe.packet)

    extra_protocols = (socket.IPPROTO_TCP,)
    #: A SYN carries no payload: no --packet-size.
    options = (PORT, PARIS, SOURCE_PORT, TOS)

    def __init__(self, context: ProbeContext) -> None:
        super().__init__(context)
        self.port: int = context.options.get("port") or DEFAULT_PORT
        fixed = context.options.get("source_port")
        self.source_port = self.reserve_port(socket.SOCK_STREAM, fixed)
        if fixed is None:
            self.flows = min(FLOWS, 0x10000 - self.source_port)
        self.isn = int.from_bytes(os.urandom(4), "big")
        # A SYN, header length 6 words, window 64240, and the option MSS 1460 (as scapy's
        # TCP(flags="S", window=64240, options=[("MSS", 1460)])).
        syn = struct.pack(
            "!HHIIBBHHH", self.source_port, self.port, self.isn, 0, 6 << 4, _SYN, 64240, 0, 0
        )
        self.template = self.packet(_TCP, syn + _MSS_1460, 16)

    def parameters(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "source_port": self.source_port,
            "packet_size": len(self.template),
        }

    def build(self, ttl: int, flow: int, seq: int) -> bytes:
        packet = bytearray(self.template)
        packet[self.ttl_at] = ttl
        if flow:
            set_word(packet, self.l4, self.source_port + flow, self.l4 + 16)
        set_long(packet, self.l4 + 4, (self.isn + seq) & 0xFFFFFFFF, self.l4 + 16)
        return bytes(packet)

    def match(self, received: Received) -> Match | None:
        reply = received.reply
        if reply is None:
            return None
        if reply.protocol == _TCP:
            return self._answer(received, reply.l4)
        quoted = reply.quoted
        if quoted is None or not self.quotes_ours(quoted, _TCP):
            return None
        sport, dport, sequence = struct.unpack_from("!HHI", quoted.l4)
        name = reply.name
        if dport != self.port or not self._ours(sport) or name is None:
            return None
        seq = (sequence - self.isn) & 0xFFFFFFFF
        if seq >= self.sequence_space:
            return None
        outcome = error_outcome(name, received.address, self.context.destination)
        return Match(seq, name, outcome, reply.mpls)

    def _ours(self, port: int) -> bool:
        """Whether ``port`` is one of our flows' source ports."""
        return 0 <= port - self.source_port < self.flows

    def _answer(self, received: Received, segment: bytes) -> Match | None:
        """The destination's own answer: SYN-ACK or RST, acknowledging our sequence + 1."""
        if received.address != self.context.destination or len(segment) < 14:
            return None
        sport, dport, _, ack, _, flags = struct.unpack_from("!HHIIBB", segment)
        if sport != self.port or not self._ours(dport):
            return None
        if not flags & _ACK:
            return None  # a bare RST does not say which probe it answers
        if flags & _SYN:
            reply = "syn-ack"
        elif flags & _RST:
            reply = "rst"
        else:
            return None
        seq = (ack - 1 - self.isn) & 0xFFFFFFFF
        if seq >= self.sequence_space:
            return None
        return Match(seq, reply, Outcome.REACHED)


@hookimpl
def tracekit_register_probes(register: RegisterProbe) -> None:
    register("tcp", TcpSyn, "TCP SYN to a port, 80 by default (like traceroute -T)")
