"""The DOT graph of hand-made traces: shape, highlighting, and names from strangers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
import tracekit_dot
from dot_graph import read_graph, svg_labels
from tracekit_dot import DotOutput, parse_node_id, quote, render

from tracekit.model import Hop, Host, ProbeInfo, ProbeResult, Trace
from tracekit.outputs import OutputTarget
from tracekit.plugins import Registry, get_plugin_manager
from tracekit.sanitize import printable

HOSTILE = [
    'evil" -> "pwned',  # closing the quoted string to add an edge
    'x"] ; "injected" [shape=box',  # adding a node
    "back\\slash \\N \\G \\n",  # Graphviz's own escapes
    "line\nbreak\rreturn",
    "<b>html</b> <<table>>",
    "&lt;entity&gt; &amp; &#65;",
    "\x1b[31mred\x1b[0m \u202eevil",
]


def hop(ttl: int, *answers: tuple[str | None, str], names: dict[str, str] | None = None) -> Hop:
    """A hop from ``(address, reply)`` pairs; ``(None, "")`` is a lost probe."""
    names = names or {}
    probes = [
        ProbeResult(address, 0.25 + ttl / 10, reply) if address else ProbeResult()
        for address, reply in answers
    ]
    hosts = {
        p.address: Host(p.address, names.get(p.address)) for p in probes if p.address is not None
    }
    return Hop(ttl, probes, hosts)


def trace(*hops: Hop, reached: bool = True) -> Trace:
    return Trace(
        target="server.example",
        address="192.0.2.9",
        ip_version=4,
        probe=ProbeInfo("icmp"),
        source="192.0.2.1",
        hops=list(hops),
        reached=reached,
        end="reached" if reached else "max-ttl",
    )


def test_quote_escapes_what_dot_would_read_as_syntax() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote("one", "two") == '"one\\ntwo"'
    assert quote("x\ny") == '"x\\\\x0ay"'  # a newline in a name is shown, not obeyed
    assert quote("<&>") == '"&lt;&amp;&gt;"'


def test_silent_hops_are_dashed_stars_in_the_chain() -> None:
    t = trace(
        hop(1, ("192.0.2.2", "time-exceeded")),
        hop(2, (None, ""), (None, "")),
        hop(3, ("192.0.2.9", "echo-reply")),
    )
    graph = read_graph(render(t))
    assert set(graph.nodes) == {"source", "1 192.0.2.2", "2 *", "3 192.0.2.9"}
    assert graph.edges == {
        ("source", "1 192.0.2.2"): "solid",
        ("1 192.0.2.2", "2 *"): "dashed",
        ("2 *", "3 192.0.2.9"): "dashed",
    }
    assert graph.nodes["2 *"]["style"] == "dashed"
    assert parse_node_id("2 *") == (2, None)
    assert parse_node_id("3 192.0.2.9") == (3, "192.0.2.9")


def test_several_addresses_at_one_ttl_are_parallel_nodes() -> None:
    t = trace(
        hop(1, ("192.0.2.2", "time-exceeded")),
        hop(2, ("192.0.2.3", "time-exceeded"), ("192.0.2.4", "time-exceeded")),
        hop(3, ("192.0.2.5", "time-exceeded"), ("192.0.2.6", "time-exceeded")),
        hop(4, ("192.0.2.9", "echo-reply")),
    )
    graph = read_graph(render(t))
    assert set(graph.edges) == {
        ("source", "1 192.0.2.2"),
        ("1 192.0.2.2", "2 192.0.2.3"),
        ("1 192.0.2.2", "2 192.0.2.4"),
        *((f"2 192.0.2.{a}", f"3 192.0.2.{b}") for a in (3, 4) for b in (5, 6)),
        ("3 192.0.2.5", "4 192.0.2.9"),
        ("3 192.0.2.6", "4 192.0.2.9"),
    }


def test_only_the_destination_is_highlighted_and_labels_say_ttl_name_address_rtt() -> None:
    t = trace(
        hop(1, ("192.0.2.2", "time-exceeded"), names={"192.0.2.2": "gw.example"}),
        hop(2, ("192.0.2.9", "echo-reply"), ("192.0.2.9", "echo-reply")),
    )
    graph = read_graph(render(t))
    highlighted = {name for name, node in graph.nodes.items() if node.get("peripheries") == "2"}
    assert highlighted == {"2 192.0.2.9"}
    labels = svg_labels(render(t))
    assert labels["source"] == ["source", "192.0.2.1"]
    assert labels["1 192.0.2.2"] == ["1 gw.example", "192.0.2.2", "0.350 ms"]
    assert labels["2 192.0.2.9"] == ["2", "192.0.2.9", "0.450 0.450 ms", "echo-reply"]
    numeric = svg_labels(render(t, numeric=True))
    assert numeric["1 192.0.2.2"] == ["1", "192.0.2.2", "0.350 ms"]


def test_a_trace_that_did_not_arrive_highlights_nothing() -> None:
    t = trace(hop(1, ("192.0.2.2", "time-exceeded")), hop(2, (None, "")), reached=False)
    graph = read_graph(render(t))
    assert not any(node.get("peripheries") for node in graph.nodes.values())
    assert "not reached (max-ttl)" in graph.label


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_shown_as_text_and_change_nothing_else(name: str) -> None:
    t = trace(
        hop(1, ("192.0.2.2", "time-exceeded"), names={"192.0.2.2": name}),
        hop(2, ("192.0.2.9", "echo-reply"), names={"192.0.2.9": name}),
    )
    t.target = name
    source = render(t)
    graph = read_graph(source)
    assert set(graph.nodes) == {"source", "1 192.0.2.2", "2 192.0.2.9"}
    assert set(graph.edges) == {("source", "1 192.0.2.2"), ("1 192.0.2.2", "2 192.0.2.9")}
    assert set(graph.nodes["1 192.0.2.2"]) <= {"_gvid", "name", "label", "fontname", "shape",
                                               "height", "width", "pos"}  # fmt: skip
    shown = printable(name)
    assert shown.isprintable()
    labels = svg_labels(source)  # what a reader of the SVG sees
    assert labels["1 192.0.2.2"][0] == " ".join(f"1 {shown}".split())
    assert labels["2 192.0.2.9"][0] == " ".join(f"2 {shown}".split())


def test_the_output_writes_the_graph_when_the_trace_is_over() -> None:
    stream = io.StringIO()
    output = DotOutput(OutputTarget(stream))
    t = trace(hop(1, ("192.0.2.9", "echo-reply")))
    output.start(t)
    output.hop(t, t.hops[0])
    assert stream.getvalue() == ""
    output.finish(t)
    assert stream.getvalue() == render(t)


def test_the_format_is_registered_by_name_and_suffix() -> None:
    pm = get_plugin_manager(autoload=False)
    pm.register(tracekit_dot, name="dot")
    registry = Registry.collect(pm)
    assert registry.output("dot").factory is DotOutput
    assert registry.output_for_path("route.DOT").name == "dot"
    assert registry.output_for_path("route.gv").name == "dot"


def test_tracekit_plugins_lists_the_dot_plugin() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "tracekit", "plugins", "--format", "json"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "TRACEKIT_DISABLE_PLUGIN_AUTOLOAD"},
    )
    dot = next(p for p in json.loads(process.stdout) if p["name"] == "dot")
    assert dot["distribution"] == "tracekit-dot" and dot["version"] == "0.1.0"
    assert [o["name"] for o in dot["outputs"]] == ["dot"]
    assert dot["outputs"][0]["suffixes"] == [".dot", ".gv"]
    assert dot["hooks"] == ["tracekit_register_outputs"]
