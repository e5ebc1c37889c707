"""The JSON report: a public contract, described by ``tracekit/trace.schema.json``
(``tracekit schema`` prints it; ``docs/trace.schema.json`` is a copy)."""

from __future__ import annotations

import json
from typing import Any

from tracekit import __version__, hookimpl
from tracekit.hookspecs import RegisterOutput
from tracekit.model import Hop, Host, Trace
from tracekit.output import Output

#: Raised only when a field changes meaning or is removed; added fields keep the version.
SCHEMA_VERSION = 1


def _host(host: Host) -> dict[str, Any]:
    out: dict[str, Any] = {"address": host.address, "name": host.name}
    for key, value in host.annotations.items():
        out.setdefault(key, value)  # annotations never replace the address or name
    return out


def _hop(hop: Hop) -> dict[str, Any]:
    return {
        "ttl": hop.ttl,
        "silent": hop.silent,
        "hosts": [_host(h) for h in hop.hosts.values()],
        "probes": [
            {
                "address": p.address,
                "rtt_ms": None if p.rtt_ms is None else round(p.rtt_ms, 3),
                "reply": p.reply,
                "reply_ttl": p.reply_ttl,
                "mpls": p.mpls,
            }
            for p in hop.probes
        ],
    }


def trace_to_dict(trace: Trace) -> dict[str, Any]:
    """The JSON-ready form of a trace."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tracekit_version": __version__,
        "target": trace.target,
        "address": trace.address,
        "ip_version": trace.ip_version,
        "source": trace.source,
        "probe": {"method": trace.probe.method, "parameters": trace.probe.parameters},
        "first_ttl": trace.first_ttl,
        "max_ttl": trace.max_ttl,
        "queries": trace.queries,
        "started": trace.started.isoformat() if trace.started else None,
        "finished": trace.finished.isoformat() if trace.finished else None,
        "reached": trace.reached,
        "end": trace.end,
        "annotations": trace.annotations,
        "hops": [_hop(h) for h in trace.hops],
    }


class JsonOutput(Output):
    """Writes the whole trace as one JSON document when it is finished."""

    def finish(self, trace: Trace) -> None:
        json.dump(trace_to_dict(trace), self.target.stream, indent=2, ensure_ascii=False)
        self.target.stream.write("\n")
        self.target.stream.flush()


@hookimpl
def tracekit_register_outputs(register: RegisterOutput) -> None:
    register("json", JsonOutput, "JSON report (its schema: tracekit schema)", [".json"])
