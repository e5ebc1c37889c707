"""JSON Lines for monitoring pipelines: one event a line, written and flushed as it happens.

Every line is an object with a ``type``:

- ``start``: what is traced and how (the report's header fields);
- ``hop``: one-shot traces, a hop complete (``hop``: as in the JSON report);
- ``round``: continuous mode, a round complete: its number, its probes' results, and the
  statistics of every hop so far;
- ``finish``: the whole report (``report``: the JSON report, ``docs/trace.schema.json``).

With several targets (``tracekit A B``, ``--targets``) the lines are different: one line per
trace, written when it is finished, holding the trace's JSON report itself (no ``type``).

See ``docs/json-format.md`` and ``docs/bulk.md``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from tracekit import hookimpl
from tracekit.outputs import Output
from tracekit.outputs.jsonout import SCHEMA_VERSION, hop_stats, hop_to_dict, trace_to_dict

if TYPE_CHECKING:
    from tracekit.events import Round
    from tracekit.hookspecs import RegisterOutput
    from tracekit.model import Hop, Trace


class JsonLinesOutput(Output):
    """Writes one JSON object per event, one per line; with several targets, one report
    per line."""

    def start(self, trace: Trace) -> None:
        if self.target.several:
            return
        report = trace_to_dict(trace)
        header = {k: v for k, v in report.items() if k not in ("hops", "finished", "end")}
        self._line({"type": "start", **header})

    def hop(self, trace: Trace, hop: Hop) -> None:
        if self.target.several:
            return
        self._line({"type": "hop", "hop": hop_to_dict(hop)})

    def round(self, trace: Trace, round: Round) -> None:
        started = datetime.fromtimestamp(round.started, timezone.utc).isoformat()
        self._line(
            {
                "type": "round",
                "round": round.number,
                "started": started,
                "results": [
                    {
                        "ttl": ttl,
                        "address": r.address,
                        "rtt_ms": None if r.rtt_ms is None else round_ms(r.rtt_ms),
                        "reply": r.reply,
                        "rate_limited": r.rate_limited,
                    }
                    for ttl, r in round.results
                ],
                "hops": [
                    {
                        "ttl": h.ttl,
                        "hosts": list(h.hosts),
                        "stats": hop_stats(h.stats),
                    }
                    for h in trace.hops
                    if h.stats is not None
                ],
            }
        )

    def finish(self, trace: Trace) -> None:
        if self.target.several:
            self._line(trace_to_dict(trace))
            return
        self._line({"type": "finish", "schema_version": SCHEMA_VERSION,
                    "report": trace_to_dict(trace)})  # fmt: skip

    def _line(self, obj: dict[str, Any]) -> None:
        self.target.stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.target.stream.flush()


def round_ms(value: float) -> float:
    return round(value, 3)


@hookimpl
def tracekit_register_outputs(register: RegisterOutput) -> None:
    register("jsonl", JsonLinesOutput, "JSON Lines: one event a line, as it happens", [".jsonl"])
