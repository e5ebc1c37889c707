"""Reading a DOT graph back through Graphviz itself, for the tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from tracekit.testing.pytest_plugin import require

SVG = "{http://www.w3.org/2000/svg}"


def graphviz(*args: str, source: str) -> str:
    """Run Graphviz's ``dot`` on ``source``; skip without it, but fail in CI (``CI`` set)."""
    require(shutil.which("dot") is not None, "Graphviz (dot) is not installed")
    process = subprocess.run(["dot", *args], input=source, capture_output=True, text=True)
    assert process.returncode == 0 and not process.stderr, process.stderr
    return process.stdout


@dataclass
class Graph:
    """Nodes (by name, with their attributes) and edges (tail name, head name, style)."""

    label: str = ""
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: dict[tuple[str, str], str] = field(default_factory=dict)


def read_graph(source: str) -> Graph:
    """The graph as Graphviz parsed it (``dot -Tjson0``: no layout needed)."""
    parsed = json.loads(graphviz("-Tjson0", source=source))
    graph = Graph(label=parsed.get("label", ""))
    names = {}
    for node in parsed.get("objects", []):
        names[node["_gvid"]] = node["name"]
        graph.nodes[node["name"]] = node
    for edge in parsed.get("edges", []):
        graph.edges[(names[edge["tail"]], names[edge["head"]])] = edge.get("style", "")
    return graph


def svg_labels(source: str) -> dict[str, list[str]]:
    """Render ``source`` to SVG and return each node's label lines as a reader sees them."""
    root = ET.fromstring(graphviz("-Tsvg", source=source))
    labels = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") != "node":
            continue
        title = group.find(f"{SVG}title")
        assert title is not None and title.text is not None
        texts = [t.text or "" for t in group.iter(f"{SVG}text")]
        labels[title.text] = [" ".join(t.replace("\xa0", " ").split()) for t in texts]
    return labels
