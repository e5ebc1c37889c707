"""The DOT graph of real traces on the namespace network matches the topology (needs root)."""

from __future__ import annotations

import itertools
import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dot_graph import Graph, graphviz, read_graph, svg_labels
from tracekit_dot import parse_node_id

from tracekit.testing import DIAMOND, Lab

pytestmark = pytest.mark.netns


def trace_to_files(lab: Lab, tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """Trace the lab's server with ``--out x.dot --out x.json``: the graph and the report."""
    dot, report = tmp_path / "route.dot", tmp_path / "route.json"
    process = lab.tracekit(*args, "--format", "none", "--out", str(dot), "--out", str(report))
    assert process.returncode == 0, process.stderr
    return dot.read_text(), json.loads(report.read_text())


def chain_nodes(levels: list[list[str]]) -> tuple[set[str], set[tuple[str, str]]]:
    """The nodes and edges of a graph whose TTLs have the nodes in ``levels``."""
    levels = [["source"], *levels]
    edges = {
        (tail, head)
        for before, after in itertools.pairwise(levels)
        for tail, head in itertools.product(before, after)
    }
    return {node for level in levels for node in level}, edges


@pytest.mark.parametrize("version", [4, 6])
def test_the_graph_of_a_chain_is_the_topology(
    tracekit_lab: Lab, tmp_path: Path, version: int
) -> None:
    server = tracekit_lab.address("server", version)
    source, report = trace_to_files(tracekit_lab, tmp_path, server, f"-{version}")
    expected = tracekit_lab.expected_hops(version)  # r1, None (r2 is silent), r3, server
    levels = [[f"{ttl} {address or '*'}"] for ttl, address in enumerate(expected, start=1)]
    nodes, edges = chain_nodes(levels)
    graph = read_graph(source)
    assert set(graph.nodes) == nodes
    assert set(graph.edges) == edges
    # Edges into and out of the silent hop are dashed; the others are solid.
    assert {edge for edge, style in graph.edges.items() if style == "dashed"} == {
        ("1 " + str(expected[0]), "2 *"),
        ("2 *", "3 " + str(expected[2])),
    }
    assert highlighted(graph) == {f"4 {server}"}
    labels = svg_labels(source)
    assert labels["source"] == ["source", tracekit_lab.address("client", version)]
    assert labels["2 *"] == ["2 *"]
    for hop in report["hops"]:
        address = hop["hosts"][0]["address"] if hop["hosts"] else None
        if address is None:
            continue
        name, line_address, rtts, *replies = labels[f"{hop['ttl']} {address}"]
        assert name == f"{hop['ttl']} {hop['hosts'][0]['name']}"
        assert line_address == address
        assert rtts == " ".join(f"{p['rtt_ms']:.3f}" for p in hop["probes"]) + " ms"
        assert replies == ([] if address != server else ["echo-reply"])


def highlighted(graph: Graph) -> set[str]:
    return {name for name, node in graph.nodes.items() if node.get("peripheries") == "2"}


def test_format_dot_on_standard_output_renders_to_svg(tracekit_lab: Lab, tmp_path: Path) -> None:
    process = tracekit_lab.tracekit(tracekit_lab.address("server"), "-n", "--format", "dot")
    assert process.returncode == 0, process.stderr
    svg = graphviz("-Tsvg", source=process.stdout)
    root = ET.fromstring(svg)  # well-formed SVG
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    labels = svg_labels(process.stdout)
    assert labels["1 10.0.1.2"][0] == "1"  # -n: no names
    # The system's Graphviz writes a file too, the usual way.
    out = tmp_path / "route.svg"
    subprocess.run(["dot", "-Tsvg", "-o", str(out)], input=process.stdout, text=True, check=True)
    assert out.read_bytes().startswith(b"<?xml")


@pytest.mark.parametrize("version", [4, 6])
def test_a_load_balancer_s_branches_are_parallel_nodes(
    tracekit_lab_factory: Callable[..., Lab], tmp_path: Path, version: int
) -> None:
    # r1 spreads traffic over r2a and r2b, hashing on ports: classic UDP probes (a new port
    # each) see both branches; ten probes all on one branch in three runs: 1 in 10^8.
    lab = tracekit_lab_factory(topology=DIAMOND, multipath_hash=1)
    server = lab.address("server", version)
    choices = lab.hop_choices(version)
    for _ in range(3):
        source, report = trace_to_files(
            lab, tmp_path, server, f"-{version}", "-n", "--probe", "udp", "-q", "10"
        )
        seen = [{h["address"] for h in hop["hosts"]} for hop in report["hops"]]
        if len(seen[1]) == 2:
            break
    assert seen == choices  # every TTL shows what the topology allows, TTL 2 both branches
    levels = [sorted(f"{ttl} {address}" for address in level) for ttl, level in
              enumerate(seen, start=1)]  # fmt: skip
    nodes, edges = chain_nodes(levels)
    graph = read_graph(source)
    assert set(graph.nodes) == nodes
    assert set(graph.edges) == edges  # r1 -> both branches -> r3
    assert highlighted(graph) == {f"4 {server}"}
    assert {parse_node_id(n) for n in nodes if n.startswith("2 ")} == {(2, a) for a in seen[1]}


@pytest.mark.parametrize("version", [4, 6])
def test_multipath_discovery_draws_the_diamond_as_it_is(
    tracekit_lab_factory: Callable[..., Lab], tmp_path: Path, version: int
) -> None:
    lab = tracekit_lab_factory(topology=DIAMOND, multipath_hash=1)
    server = lab.address("server", version)
    for _ in range(3):  # multipath discovery misses a branch with its stated chance (5 %)
        source, report = trace_to_files(lab, tmp_path, server, f"-{version}", "-n", "--mda")
        if len(report["links"]) == 6:
            break
    links = {(f"{k['ttl']} {k['from']}", f"{k['ttl'] + 1} {k['to']}") for k in report["links"]}
    first = {("source", f"1 {lab.address('r1', version)}")}
    graph = read_graph(source)
    assert set(graph.edges) == first | links
    # each branch to its own interface of r3: two paths, no crossing
    assert len(links) == 6 and len({tail for tail, _ in links}) == 5
