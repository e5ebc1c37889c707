"""Markdown: a hop table and the ``--expect`` rules' results, written when the trace is over,
for a CI job's summary (GitHub's ``$GITHUB_STEP_SUMMARY``)::

    ### tracekit to 10.0.4.2 (10.0.4.2): reached at hop 4

    | Hop | Host | AS | Loss | Sent | Avg ms | Best ms | Worst ms |
    |---:|---|---|---:|---:|---:|---:|---:|
    | 1 | r1.tracekit.test (10.0.1.2) | AS64500 | 0.0% | 3 | 0.051 | 0.032 | 0.081 |
    | 2 | * |  |  | 3 |  |  |  |
    ...

    | Rule | Result | Seen |
    |---|---|---|
    | `hops<=3` | ❌ failed | 4 hops |

Names and places come from the network: they are escaped, so they cannot add Markdown or
HTML of their own.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tracekit import hookimpl
from tracekit.outputs import Output
from tracekit.sanitize import printable

if TYPE_CHECKING:
    from tracekit.hookspecs import RegisterOutput
    from tracekit.model import Hop, Host, Trace
    from tracekit.stats import HopStats

_SPECIAL = re.compile(r"([\\`*_{}\[\]|~])")


def escape(text: str) -> str:
    """``text`` as literal Markdown: no markup, no HTML, on one line."""
    text = printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def _host(host: Host, numeric: bool) -> str:
    if numeric or not host.name:
        return escape(host.address)
    return f"{escape(host.name)} ({escape(host.address)})"


def _asn(host: Host) -> str:
    return f"AS{host.asn.number}" if host.asn is not None else ""


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def hop_row(hop: Hop, numeric: bool) -> str:
    from tracekit.stats import fold  # (tracekit --help loads this module)

    stats: HopStats = hop.stats or fold(hop.probes)
    hosts = list(hop.hosts.values())
    names = "<br>".join(_host(h, numeric) for h in hosts) or "\\*"
    ases = "<br>".join(_asn(h) for h in hosts) if any(_asn(h) for h in hosts) else ""
    loss = stats.loss_pct
    cells = [
        str(hop.ttl),
        names,
        ases,
        "" if loss is None else f"{loss:.1f}%",
        str(stats.sent),
        _ms(stats.avg_ms),
        _ms(stats.best_ms),
        _ms(stats.worst_ms),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown(trace: Trace, numeric: bool = False) -> str:
    """The Markdown summary of a finished trace."""
    from tracekit.expect import destination, not_reached

    dest = destination(trace)
    state = f"reached at hop {dest.ttl}" if dest is not None else not_reached(trace)
    title = f"tracekit to {escape(trace.target)} ({escape(trace.address or '-')}): {state}"
    if trace.continuous:
        title += f", {trace.rounds} rounds"
    lines = [f"### {title}", ""]
    lines.append("| Hop | Host | AS | Loss | Sent | Avg ms | Best ms | Worst ms |")
    lines.append("|---:|---|---|---:|---:|---:|---:|---:|")
    lines.extend(hop_row(hop, numeric) for hop in trace.hops)
    if trace.expectations is not None:
        failed = sum(not e.passed for e in trace.expectations)
        verdict = f"{failed} of {len(trace.expectations)} failed" if failed else "all passed"
        lines += ["", f"**Expectations: {verdict}**", ""]
        lines += ["| Rule | Result | Seen |", "|---|---|---|"]
        for e in trace.expectations:
            result = "✅ passed" if e.passed else "❌ failed"
            rule = "`" + e.rule.replace("`", "'").replace("|", "\\|") + "`"
            lines.append(f"| {rule} | {result} | {escape(e.seen)} |")
    return "\n".join(lines) + "\n"


class MarkdownOutput(Output):
    """Writes the Markdown summary when the trace is over."""

    def finish(self, trace: Trace) -> None:
        self.target.stream.write(markdown(trace, self.target.numeric))
        self.target.stream.flush()


@hookimpl
def tracekit_register_outputs(register: RegisterOutput) -> None:
    register("markdown", MarkdownOutput, "Markdown: hop table and rules (CI summaries)", [".md"])
