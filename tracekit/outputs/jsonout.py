"""The JSON report: a public contract, described by ``tracekit/trace.schema.json``
(``tracekit schema`` prints it; ``docs/trace.schema.json`` is a copy)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import tracekit
from tracekit import hookimpl
from tracekit.outputs import Output

if TYPE_CHECKING:
    from tracekit.hookspecs import RegisterOutput
    from tracekit.model import Hop, Host, Trace
    from tracekit.stats import HopStats, RttStats

#: Raised only when a field changes meaning or is removed; added fields keep the version.
SCHEMA_VERSION = 1


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def rtt_stats(stats: RttStats) -> dict[str, Any]:
    """The round-trip statistics of a host or hop, as JSON."""
    return {
        "received": stats.received,
        "last_ms": _ms(stats.last_ms),
        "avg_ms": _ms(stats.avg_ms),
        "best_ms": _ms(stats.best_ms),
        "worst_ms": _ms(stats.worst_ms),
        "stdev_ms": _ms(stats.stdev_ms),
        "jitter_ms": _ms(stats.jitter_ms),
        "javg_ms": _ms(stats.javg_ms),
        "jmax_ms": _ms(stats.jmax_ms),
        "jint_ms": _ms(stats.jint_ms),
    }


def hop_stats(stats: HopStats) -> dict[str, Any]:
    """A hop's statistics, as JSON."""
    loss = stats.loss_pct
    return {
        "sent": stats.sent,
        "received": stats.received,
        "lost": stats.lost,
        "loss_pct": None if loss is None else round(loss, 2),
        "rate_limited": stats.rate_limited,
        **{k: v for k, v in rtt_stats(stats).items() if k != "received"},
    }


def geo(host: Host) -> dict[str, Any]:
    """A host's ``location`` and ``asn`` as JSON objects, those that are known."""
    out: dict[str, Any] = {}
    if host.location is not None:
        out["location"] = asdict(host.location)
    if host.asn is not None:
        out["asn"] = asdict(host.asn)
    return out


def _host(host: Host) -> dict[str, Any]:
    out: dict[str, Any] = {"address": host.address, "name": host.name, **geo(host)}
    for key, value in host.annotations.items():
        out.setdefault(key, value)  # annotations never replace the address or name
    stats = host.stats
    if stats is None:  # (tracekit --help loads this module: statistics only when needed)
        from tracekit.stats import RttStats

        stats = RttStats()
    out["stats"] = rtt_stats(stats)
    return out


def hop_to_dict(hop: Hop) -> dict[str, Any]:
    """The JSON-ready form of a hop."""
    return {
        "ttl": hop.ttl,
        "silent": hop.silent,
        "hosts": [_host(h) for h in hop.hosts.values()],
        "probes": [
            {
                "address": p.address,
                "rtt_ms": _ms(p.rtt_ms),
                "reply": p.reply,
                "reply_ttl": p.reply_ttl,
                "mpls": [{"label": m.label, "tc": m.tc, "s": m.s, "ttl": m.ttl} for m in p.mpls],
                "flow": p.flow,
                **({"rate_limited": True} if p.rate_limited else {}),
            }
            for p in hop.probes
        ],
        "stats": hop_stats(hop.stats if hop.stats is not None else _fold(hop)),
    }


def _fold(hop: Hop) -> HopStats:
    from tracekit.stats import fold

    return fold(hop.probes)


def trace_annotations(trace: Trace) -> dict[str, Any]:
    """The trace's annotations, with ``source``: what enrichment found about our own
    address."""
    out = dict(trace.annotations)
    source = geo(trace.source_host) if trace.source_host is not None else {}
    if source:
        out.setdefault("source", source)
    return out


def trace_to_dict(trace: Trace) -> dict[str, Any]:
    """The JSON-ready form of a trace."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tracekit_version": tracekit.__version__,
        "target": trace.target,
        "address": trace.address,
        "ip_version": trace.ip_version,
        "source": trace.source,
        "probe": {"method": trace.probe.method, "parameters": trace.probe.parameters},
        "first_ttl": trace.first_ttl,
        "max_ttl": trace.max_ttl,
        "queries": trace.queries,
        **(
            {"cycles": trace.cycles, "interval": trace.interval, "rounds": trace.rounds}
            if trace.continuous
            else {}
        ),
        "started": trace.started.isoformat() if trace.started else None,
        "finished": trace.finished.isoformat() if trace.finished else None,
        "reached": trace.reached,
        "end": trace.end,
        "annotations": trace_annotations(trace),
        "hops": [hop_to_dict(h) for h in trace.hops],
        **(
            {
                "confidence": trace.confidence,
                "probes_sent": trace.probes_sent,
                "links": [
                    {"ttl": k.ttl, "from": k.source, "to": k.target, "flows": k.flows}
                    for k in trace.links
                ],
            }
            if trace.links is not None
            else {}
        ),
        **(
            {"expectations": [asdict(e) for e in trace.expectations]}
            if trace.expectations is not None
            else {}
        ),
        **({"error": trace.error} if trace.error is not None else {}),
    }


class JsonOutput(Output):
    """Writes the whole trace as one JSON document when it is finished; several traces
    (several targets) as one array."""

    list_start = "[\n"
    list_separator = ",\n"
    list_end = "\n]\n"

    def finish(self, trace: Trace) -> None:
        json.dump(trace_to_dict(trace), self.target.stream, indent=2, ensure_ascii=False)
        if not self.target.several:
            self.target.stream.write("\n")
        self.target.stream.flush()


@hookimpl
def tracekit_register_outputs(register: RegisterOutput) -> None:
    register("json", JsonOutput, "JSON report (its schema: tracekit schema)", [".json"])
