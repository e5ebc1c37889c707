"""A tracekit output plugin: the route as a Graphviz DOT graph (``--format dot``, or
``--out FILE.dot``).

The source is the first node; then, TTL by TTL, one node per address that answered, labelled
with the TTL, the name, the address, the round-trip times and any reply other than
``time-exceeded``. A silent hop is one dashed ``*`` node, so the chain goes through it.
Every node of one TTL has an edge from every node of the TTL before (several addresses at a
TTL: a load balancer's branches, side by side); with ``tracekit --mda``, only the links it
found, so a diamond is drawn as it is. The destination has a double border.

Render it with Graphviz: ``dot -Tsvg route.dot > route.svg``.

Names come from reverse DNS, that is from strangers: every string is written as a quoted
DOT string with quotes, backslashes, ``&``, ``<`` and ``>`` escaped and invisible characters
shown as ``\\xNN``, so that no name can add nodes, attributes or markup to the graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracekit import hookimpl
from tracekit.outputs import Output
from tracekit.sanitize import printable

if TYPE_CHECKING:
    from tracekit.hookspecs import RegisterOutput
    from tracekit.model import Hop, Trace

__all__ = ["DotOutput", "quote", "render"]

SOURCE = "source"
#: Fill colour of the destination's node.
DESTINATION_FILL = "#d4f0c8"

_ESCAPES = {'"': '\\"', "\\": "\\\\", "&": "&amp;", "<": "&lt;", ">": "&gt;"}


def quote(*lines: str) -> str:
    """A quoted DOT string showing ``lines`` one below the other, exactly as given.

    Graphviz reads ``\\n`` in a label as a line break, ``\\\\`` as a backslash and ``&...;``
    as a character entity; everything from outside is escaped so it shows as itself.
    """
    escaped = ("".join(_ESCAPES.get(ch, ch) for ch in printable(line)) for line in lines)
    return '"' + "\\n".join(escaped) + '"'


#: An attribute value: one string, or the lines of a label.
Value = str | tuple[str, ...]


def _attributes(**attributes: Value) -> str:
    return "[" + ", ".join(f"{key}={_value(value)}" for key, value in attributes.items()) + "]"


def _value(value: Value) -> str:
    return quote(value) if isinstance(value, str) else quote(*value)


def _rtts(rtts: list[float]) -> str:
    if len(rtts) <= 3:
        return " ".join(f"{rtt:.3f}" for rtt in rtts) + " ms"
    return f"{min(rtts):.3f} to {max(rtts):.3f} ms ({len(rtts)} answers)"


def _linked(links: set[tuple[int, str, str]] | None, tail: str, head: str) -> bool:
    """Whether to draw ``tail -> head``: always, unless the links found say otherwise."""
    if links is None:
        return True
    before, after = parse_node_id(tail), parse_node_id(head)
    if before is None or after is None or before[1] is None or after[1] is None:
        return True  # from the source, or through a silent hop
    return (before[0], before[1], after[1]) in links


def _hop_nodes(trace: Trace, hop: Hop, numeric: bool) -> list[tuple[str, dict[str, Value]]]:
    """The nodes of one hop: ``(id, attributes)``; ids are ``"TTL ADDRESS"`` or ``"TTL *"``."""
    if hop.silent:
        return [(f"{hop.ttl} *", {"label": f"{hop.ttl}  *", "style": "dashed"})]
    nodes: list[tuple[str, dict[str, Value]]] = []
    for address, host in hop.hosts.items():
        probes = [p for p in hop.probes if p.address == address]
        lines = [f"{hop.ttl}  {host.name}" if host.name and not numeric else f"{hop.ttl}"]
        lines.append(address)
        lines.append(_rtts([p.rtt_ms for p in probes if p.rtt_ms is not None]))
        replies = sorted({p.reply for p in probes if p.reply and p.reply != "time-exceeded"})
        if replies:
            lines.append(", ".join(replies))
        attributes: dict[str, Value] = {"label": tuple(lines)}
        if address == trace.address:
            attributes.update(style="bold,filled", fillcolor=DESTINATION_FILL, peripheries="2")
        nodes.append((f"{hop.ttl} {address}", attributes))
    return nodes


def render(trace: Trace, numeric: bool = False) -> str:
    """The DOT graph of ``trace``."""
    status = "reached" if trace.reached else f"not reached ({trace.end or 'running'})"
    title = f"tracekit to {trace.target} ({trace.address}), {trace.probe.method} probes, {status}"
    lines = [
        'digraph "tracekit" {',
        f"  graph {_attributes(label=title, labelloc='t', rankdir='TB')};",
        f"  node {_attributes(shape='box', fontname='Helvetica')};",
        f"  edge {_attributes(arrowsize='0.6')};",
        f"  {quote(SOURCE)} "
        + _attributes(label=(SOURCE, trace.source or "?"), shape="ellipse")
        + ";",
    ]
    previous: list[str] = [SOURCE]
    previous_silent = False
    # Multipath discovery (tracekit --mda) knows which interface leads to which.
    found = getattr(trace, "links", None)
    links = None if found is None else {(k.ttl, k.source, k.target) for k in found}
    for index, hop in enumerate(trace.hops):
        nodes = _hop_nodes(trace, hop, numeric)
        for node_id, attributes in nodes:
            lines.append(f"  {quote(node_id)} {_attributes(**attributes)};")
        style = "dashed" if hop.silent or previous_silent else "solid"
        if index == 0 and hop.ttl > 1:
            style = "dotted"  # TTLs below --first-ttl were not probed
        for tail in previous:
            for head, _ in nodes:
                if not _linked(links, tail, head):
                    continue
                lines.append(f"  {quote(tail)} -> {quote(head)} {_attributes(style=style)};")
        previous = [node_id for node_id, _ in nodes]
        previous_silent = hop.silent
    lines.append("}")
    return "\n".join(lines) + "\n"


def parse_node_id(node_id: str) -> tuple[int, str | None] | None:
    """``(ttl, address)`` from a hop's node id (``None`` for a silent hop's address), or
    ``None`` for the source node. For tests and tools reading the graph back."""
    if node_id == SOURCE:
        return None
    ttl, address = node_id.split(" ", 1)
    return int(ttl), None if address == "*" else address


class DotOutput(Output):
    """Writes the whole graph when the trace is over (a graph is not drawn hop by hop)."""

    def finish(self, trace: Trace) -> None:
        self.target.stream.write(render(trace, self.target.numeric))
        self.target.stream.flush()


@hookimpl
def tracekit_register_outputs(register: RegisterOutput) -> None:
    register(
        "dot", DotOutput, "Graphviz DOT graph of the route (render: dot -Tsvg)", [".dot", ".gv"]
    )
