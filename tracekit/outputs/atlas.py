"""The RIPE Atlas traceroute result format, so that tools which read Atlas results
(``ripe.atlas.sagan``, Atlas's own pipelines) read tracekit's; see ``docs/atlas.md``.

One result object per trace (a JSON array of them for several targets)::

    {"fw": 5080, "af": 4, "dst_addr": "10.0.4.2", "dst_name": "server", "src_addr": ...,
     "from": ..., "proto": "ICMP", "paris_id": 0, "size": 36, "msm_id": 0, "prb_id": 0,
     "timestamp": 1700000000, "endtime": 1700000001, "type": "traceroute",
     "result": [{"hop": 1, "result": [{"from": "10.0.1.2", "rtt": 0.081, "size": 64,
                                       "ttl": 64}, {"x": "*"}, ...]}, ...]}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tracekit import hookimpl
from tracekit.outputs import Output

if TYPE_CHECKING:
    from tracekit.hookspecs import RegisterOutput
    from tracekit.model import ProbeResult, Trace

#: The Atlas probe firmware whose result format this follows (sagan reads by it).
FIRMWARE = 5080
#: Atlas's ``err`` letters, by tracekit reply name; other unreachable codes are given as
#: their number, as Atlas does.
_ERR = {
    "net-unreachable": "N",
    "no-route": "N",
    "net-unknown": "N",
    "net-unreachable-for-tos": "N",
    "host-unreachable": "H",
    "host-unknown": "H",
    "host-unreachable-for-tos": "H",
    "address-unreachable": "H",
    "admin-prohibited": "A",
    "net-prohibited": "A",
    "host-prohibited": "A",
    "protocol-unreachable": "P",
    "port-unreachable": "p",
    "beyond-scope": "h",
}
_CODES = {
    "fragmentation-needed": 4,
    "source-route-failed": 5,
    "source-host-isolated": 8,
    "host-precedence-violation": 14,
    "precedence-cutoff": 15,
    "source-address-failed": 5,
    "reject-route": 6,
}
#: Replies from the destination that end a trace normally: no ``err``.
_REACHED = frozenset({"port-unreachable", "protocol-unreachable"})
#: TCP flags of a destination's answer, in Atlas's order (F S R P A U).
_FLAGS = {"syn-ack": "SA", "rst": "RA"}
_L4_HEADER = {"icmp": 8, "udp": 8, "tcp": 20}


def _packet(trace: Trace, probe: ProbeResult) -> dict[str, Any]:
    if probe.address is None or probe.rtt_ms is None:
        return {"x": "*"}
    out: dict[str, Any] = {"from": probe.address, "rtt": round(probe.rtt_ms, 3)}
    if probe.size is not None:
        out["size"] = probe.size
    if probe.reply_ttl is not None:
        out["ttl"] = probe.reply_ttl
    reply = probe.reply
    if reply in _FLAGS:
        out["flags"] = _FLAGS[reply]
    elif reply is not None and not (reply in _REACHED and probe.address == trace.address):
        err: str | int | None = _ERR.get(reply, _CODES.get(reply))
        if err is None and reply.startswith("unreachable-"):
            err = int(reply.rsplit("-", 1)[1])
        if err is not None:
            out["err"] = err
    if probe.mpls:
        out["icmpext"] = {
            "version": 2,
            "rfc4884": 1,
            "obj": [
                {
                    "class": 1,
                    "type": 1,
                    "mpls": [
                        {"label": m.label, "exp": m.tc, "s": int(m.s), "ttl": m.ttl}
                        for m in probe.mpls
                    ],
                }
            ],
        }
    return out


def _size(trace: Trace) -> int:
    """Atlas's ``size``: the probe's bytes after its IP and ICMP/UDP/TCP headers."""
    packet = trace.probe.parameters.get("packet_size")
    if not isinstance(packet, int):
        return 0
    ip = 20 if trace.ip_version == 4 else 40
    return max(0, packet - ip - _L4_HEADER.get(trace.probe.method, 8))


def trace_to_atlas(trace: Trace) -> dict[str, Any]:
    """A trace as one RIPE Atlas traceroute result."""
    method = trace.probe.method
    paris = bool(trace.probe.parameters.get("paris")) or method == "tcp"
    started = int(trace.started.timestamp()) if trace.started else 0
    result: dict[str, Any] = {
        "fw": FIRMWARE,
        "type": "traceroute",
        "msm_id": 0,
        "prb_id": 0,
        "timestamp": started,
        "endtime": int(trace.finished.timestamp()) if trace.finished else started,
        "af": trace.ip_version,
        "dst_name": trace.target,
        "dst_addr": trace.address,
        "src_addr": trace.source,
        "from": trace.source,
        "proto": method.upper(),
        "paris_id": 1 if paris else 0,
        "size": _size(trace),
        "result": [
            {"hop": hop.ttl, "result": [_packet(trace, p) for p in hop.probes]}
            for hop in trace.hops
        ],
    }
    if trace.address is None:  # failed before probing
        key = "dnserr" if (trace.error or "").startswith("cannot resolve") else "err"
        result[key] = trace.error
    elif trace.end == "error" and trace.error is not None:
        last = trace.hops[-1].ttl if trace.hops else trace.first_ttl - 1
        result["result"].append({"hop": last + 1, "error": trace.error})
    return {k: v for k, v in result.items() if v is not None}


class AtlasOutput(Output):
    """Writes the trace as a RIPE Atlas traceroute result when it is finished."""

    list_start = "[\n"
    list_separator = ",\n"
    list_end = "\n]\n"

    def finish(self, trace: Trace) -> None:
        line = json.dumps(trace_to_atlas(trace), ensure_ascii=False)
        self.target.stream.write(line if self.target.several else line + "\n")
        self.target.stream.flush()


@hookimpl
def tracekit_register_outputs(register: RegisterOutput) -> None:
    register(
        "atlas", AtlasOutput, "RIPE Atlas traceroute results (read by ripe.atlas.sagan)",
        [".atlas.json"],
    )  # fmt: skip
