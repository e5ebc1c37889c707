"""What ICMP errors say: reply names, traceroute-style markers, and the quoted probe.

Probe plugins use :func:`icmp_error` to find the header of their own probe quoted inside an
ICMP error, and :func:`error_outcome` to learn what the error means for the trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracekit.probe import Outcome

TIME_EXCEEDED = "time-exceeded"

# ICMPv4 destination unreachable, by code: (reply name, traceroute marker).
_UNREACH_V4: dict[int, tuple[str, str]] = {
    0: ("net-unreachable", "!N"),
    1: ("host-unreachable", "!H"),
    2: ("protocol-unreachable", "!P"),
    3: ("port-unreachable", ""),
    4: ("fragmentation-needed", "!F"),
    5: ("source-route-failed", "!S"),
    6: ("net-unknown", "!N"),
    7: ("host-unknown", "!H"),
    8: ("source-host-isolated", "!N"),
    9: ("net-prohibited", "!X"),
    10: ("host-prohibited", "!X"),
    11: ("net-unreachable-for-tos", "!N"),
    12: ("host-unreachable-for-tos", "!H"),
    13: ("admin-prohibited", "!X"),
    14: ("host-precedence-violation", "!V"),
    15: ("precedence-cutoff", "!C"),
}

# ICMPv6 destination unreachable, by code.
_UNREACH_V6: dict[int, tuple[str, str]] = {
    0: ("no-route", "!N"),
    1: ("admin-prohibited", "!X"),
    2: ("beyond-scope", "!H"),
    3: ("address-unreachable", "!H"),
    4: ("port-unreachable", ""),
    5: ("source-address-failed", "!X"),
    6: ("reject-route", "!X"),
}

_OTHER_MARKERS = {
    "packet-too-big": "!F",
    "parameter-problem": "!Z",
}

#: Replies from the destination that mean it was reached.
_REACHED_REPLIES = frozenset({"port-unreachable", "protocol-unreachable"})


def marker(reply: str | None) -> str:
    """The short traceroute marker for a reply name (``"!H"``...), or ``""`` for none."""
    if reply is None:
        return ""
    for table in (_UNREACH_V4, _UNREACH_V6):
        for name, mark in table.values():
            if name == reply:
                return mark
    if reply.startswith("unreachable-"):
        return f"!<{reply.rsplit('-', 1)[1]}>"
    return _OTHER_MARKERS.get(reply, "")


@dataclass(frozen=True)
class IcmpError:
    """An ICMP error and the probe header it quotes."""

    #: The reply name, e.g. ``"time-exceeded"`` or ``"host-unreachable"``.
    reply: str
    #: The quoted IP header of the offending probe, as scapy parsed it (``IPerror`` or
    #: ``IPerror6``), with what follows it (``ICMPerror``, ``UDPerror``, ``TCPerror``...).
    quoted: Any


def icmp_error(packet: Any) -> IcmpError | None:
    """Return the ICMP error carried by ``packet`` (a scapy ``IP``/``IPv6``), else ``None``."""
    if packet.version == 4:
        from scapy.layers.inet import ICMP, IPerror

        icmp = packet.getlayer(ICMP)
        quoted = packet.getlayer(IPerror)
        if icmp is None or quoted is None:
            return None
        if icmp.type == 11:
            name = TIME_EXCEEDED if icmp.code == 0 else "reassembly-time-exceeded"
        elif icmp.type == 3:
            name = _UNREACH_V4.get(icmp.code, (f"unreachable-{icmp.code}", ""))[0]
        elif icmp.type == 12:
            name = "parameter-problem"
        else:
            return None
        return IcmpError(name, quoted)

    from scapy.layers.inet6 import (
        ICMPv6DestUnreach,
        ICMPv6PacketTooBig,
        ICMPv6ParamProblem,
        ICMPv6TimeExceeded,
        IPerror6,
    )

    quoted = packet.getlayer(IPerror6)
    if quoted is None:
        return None
    if packet.haslayer(ICMPv6TimeExceeded):
        code = packet[ICMPv6TimeExceeded].code
        name = TIME_EXCEEDED if code == 0 else "reassembly-time-exceeded"
    elif packet.haslayer(ICMPv6DestUnreach):
        code = packet[ICMPv6DestUnreach].code
        name = _UNREACH_V6.get(code, (f"unreachable-{code}", ""))[0]
    elif packet.haslayer(ICMPv6PacketTooBig):
        name = "packet-too-big"
    elif packet.haslayer(ICMPv6ParamProblem):
        name = "parameter-problem"
    else:
        return None
    return IcmpError(name, quoted)


def error_outcome(reply: str, address: str, destination: str) -> Outcome:
    """What an ICMP error from ``address`` means for a trace to ``destination``."""
    if reply == TIME_EXCEEDED:
        return Outcome.HOP
    if address == destination and reply in _REACHED_REPLIES:
        return Outcome.REACHED
    return Outcome.UNREACHABLE
