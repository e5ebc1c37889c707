"""What ICMP errors say: reply names, traceroute-style markers, and the quoted probe.

Probe plugins use :func:`icmp_error` to find the header of their own probe quoted inside an
ICMP error, and :func:`error_outcome` to learn what the error means for the trace.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracekit.probes import Outcome

if TYPE_CHECKING:
    from tracekit.model import MplsLabel

__all__ = ["MplsLabel"]  # defined in tracekit.model, where ProbeResult uses it


def __getattr__(name: str) -> Any:
    # ``MplsLabel`` is re-exported on first use: the model is not imported with this module
    # (the probe methods import it, and ``tracekit --help`` loads them).
    if name == "MplsLabel":
        from tracekit.model import MplsLabel

        return MplsLabel
    raise AttributeError(f"module 'tracekit.replies' has no attribute {name!r}")


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
    "syn-ack": "[open]",
    "rst": "[closed]",
    "udp-reply": "[open]",
}

#: Replies from the destination that mean it was reached.
_REACHED_REPLIES = frozenset({"port-unreachable", "protocol-unreachable"})


def reply_name(ip_version: int, icmp_type: int, icmp_code: int) -> str | None:
    """The reply name of an ICMP error type and code, or ``None`` for other messages."""
    if ip_version == 4:
        if icmp_type == 11:
            return TIME_EXCEEDED if icmp_code == 0 else "reassembly-time-exceeded"
        if icmp_type == 3:
            return _UNREACH_V4.get(icmp_code, (f"unreachable-{icmp_code}", ""))[0]
        return "parameter-problem" if icmp_type == 12 else None
    if icmp_type == 3:
        return TIME_EXCEEDED if icmp_code == 0 else "reassembly-time-exceeded"
    if icmp_type == 1:
        return _UNREACH_V6.get(icmp_code, (f"unreachable-{icmp_code}", ""))[0]
    return {2: "packet-too-big", 4: "parameter-problem"}.get(icmp_type)


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
    #: MPLS label stack entries from the error's RFC 4884 extension, if the router sent any.
    mpls: tuple[MplsLabel, ...] = ()


def mpls_labels(icmp: Any) -> tuple[MplsLabel, ...]:
    """The MPLS label stack in the RFC 4884 extension of a scapy ICMP/ICMPv6 error layer."""
    extension = getattr(icmp, "ext", None)
    if not extension:
        return ()
    from tracekit.model import MplsLabel

    data = bytes(extension)[4:]  # after the extension header (version, checksum)
    labels = []
    while len(data) >= 4:
        length, class_num, c_type = struct.unpack("!HBB", data[:4])
        if length < 4 or length > len(data):
            break
        if class_num == 1 and c_type == 1:  # MPLS label stack (RFC 4950)
            body = data[4:length]
            for i in range(0, len(body) - 3, 4):
                (entry,) = struct.unpack("!I", body[i : i + 4])
                labels.append(
                    MplsLabel(entry >> 12, (entry >> 9) & 7, bool(entry & 0x100), entry & 0xFF)
                )
        data = data[length:]
    return tuple(labels)


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
        return IcmpError(name, quoted, mpls_labels(icmp))

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
    icmp6: Any
    if (icmp6 := packet.getlayer(ICMPv6TimeExceeded)) is not None:
        name = TIME_EXCEEDED if icmp6.code == 0 else "reassembly-time-exceeded"
    elif (icmp6 := packet.getlayer(ICMPv6DestUnreach)) is not None:
        name = _UNREACH_V6.get(icmp6.code, (f"unreachable-{icmp6.code}", ""))[0]
    elif (icmp6 := packet.getlayer(ICMPv6PacketTooBig)) is not None:
        name = "packet-too-big"
    elif (icmp6 := packet.getlayer(ICMPv6ParamProblem)) is not None:
        name = "parameter-problem"
    else:
        return None
    return IcmpError(name, quoted, mpls_labels(icmp6))


def error_outcome(reply: str, address: str, destination: str) -> Outcome:
    """What an ICMP error from ``address`` means for a trace to ``destination``."""
    if reply == TIME_EXCEEDED:
        return Outcome.HOP
    if address == destination and reply in _REACHED_REPLIES:
        return Outcome.REACHED
    return Outcome.UNREACHABLE
