"""The HTML map of several targets and of multipath traces, in a real headless Chromium with
no network: a line of its own colour per route, a shared router drawn once and naming every
route it is on, failed targets listed, hostile text shown as text; every interface of a
multipath trace a marker, and every link it found a line."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_map import (
    ARTIFACTS,
    COLLECT,
    HOSTILE_CITY,
    HOSTILE_ORG,
    Dom,
    _hex,
    contrast,
    render,
)

from tracekit.model import Hop, Host, Link, Location, ProbeInfo, Trace
from tracekit.outputs.map import MapOutput, map_data, route_record
from tracekit.sanitize import printable
from tracekit.testing import DIAMOND, Lab
from tracekit.testing.geodb import PLACES, Place, write_databases
from tracekit.testing.pytest_plugin import _require_root

pytestmark = pytest.mark.netns

#: Reverse DNS names of the shared routers' addresses, from the client's hosts file (one
#: word each; "#" would start a comment).
HOSTILE = {
    ("r1", 4): "<img/src=x/onerror=document.title='pwned-r1'>",
    ("r1", 6): "{{7*7}}{%raw%}</script><script>document.title='pwned-r1-6'</script>",
    ("r3", 4): "${document.title='pwned-r3'}`+alert(1)+`<svg/onload=document.title='pwned-svg'>",
}
#: Targets that fail (their names do not resolve): the panel lists them, the second one's
#: name (and error, which quotes it) as text.
FAILING = "no-such-host.invalid"
HOSTILE_TARGET = "<img src=x onerror=\"document.title='pwned-target'\">.invalid"
#: A prefix that router r3 owns: a target of it ends at r3, at no address of the databases.
OWNED = "10.9.3.0/24"

# Runs after the page: every marker, start marker, line and route row, as data.
SEVERAL = """
<script>
window.addEventListener('load', function () { setTimeout(function () {
  var map = tracekitTestMap();
  var lines = function (el) {
    return Array.prototype.map.call(el.children, function (c) { return c.textContent; });
  };
  var out = {markers: [], origins: [], lines: [], routes: [], title: document.title};
  map.eachLayer(function (layer) {
    var at = layer.getLatLng ? layer.getLatLng() : null;
    if (layer instanceof L.Marker) {
      var label = layer.options.icon.options.html, style = getComputedStyle(label);
      var box = label.getBoundingClientRect();
      out.markers.push({tooltip: layer.getTooltip().getContent().textContent,
        popup: lines(layer.getPopup().getContent()), label: label.textContent,
        classes: label.className.split(' '), colour: style.color,
        fill: style.backgroundColor, at: [at.lat, at.lng],
        centre: [box.left + box.width / 2, box.top + box.height / 2]});
    } else if (layer instanceof L.CircleMarker) {
      out.origins.push({tooltip: lines(layer.getTooltip().getContent()), at: [at.lat, at.lng]});
    } else if (layer instanceof L.Polyline && /tracekit-/.test(layer.options.className)) {
      out.lines.push({classes: layer.options.className.split(' '), colour: layer.options.color,
        points: layer.getLatLngs().map(function (p) { return [p.lat, p.lng]; })});
    }
  });
  document.querySelectorAll('#tracekit-panel .route').forEach(function (row) {
    out.routes.push({name: row.childNodes[1].textContent, status: row.childNodes[2].textContent,
      swatch: getComputedStyle(row.querySelector('.tracekit-swatch')).backgroundColor});
  });
  document.documentElement.setAttribute('data-several', JSON.stringify(out));
}, 1000); });
</script>
"""


def drawn(page: Path, screenshot: Path) -> tuple[Dom, dict[str, Any]]:
    """The page in Chromium: its DOM, and what :data:`SEVERAL` recorded."""
    ARTIFACTS.mkdir(exist_ok=True)
    dom = render(page, screenshot, COLLECT + SEVERAL)
    assert json.loads(dom.attributes["data-errors"]) == []
    assert dom.handlers == []  # no element got an event handler from the data
    return dom, json.loads(dom.attributes["data-several"])


def apart(markers: list[dict[str, Any]]) -> None:
    """No marker hides another: addresses at one place are spread around it."""
    for a, b in itertools.combinations(markers, 2):
        assert math.dist(a["centre"], b["centre"]) >= 14, (a["tooltip"], b["tooltip"])


def node_at(places: dict[str, Place]) -> dict[tuple[float, float], str]:
    """Which node is at a place, by its coordinates."""
    return {(p.latitude, p.longitude): node for node, p in places.items()}


def addresses(lab: Lab) -> dict[str, str]:
    """The node of each of ``lab``'s addresses."""
    return {
        link.address(node, version): node
        for link in lab.links
        for node in (link.a, link.b)
        for version in (4, 6)
    }


def tooltip_address(marker: dict[str, Any]) -> str:
    """``TTL 1/3: 10.0.1.2`` -> ``10.0.1.2``."""
    ttls, address = marker["tooltip"].split(": ", 1)
    assert ttls.startswith("TTL ")
    return str(address)


def route_lines(
    seen: dict[str, Any], index: int, at: dict[tuple[float, float], str]
) -> list[tuple[str, str, str]]:
    """The lines of route ``index``: ``(kind, from node, to node)``, kind ``link`` or
    ``bridge``, the nodes by the places ``at``; a link's colour is the route's swatch in the
    panel (several routes)."""
    out = []
    for line in seen["lines"]:
        if f"tracekit-route-{index}" not in line["classes"]:
            continue
        kind = "link" if "tracekit-link" in line["classes"] else "bridge"
        if kind == "link" and seen["routes"]:
            assert line["colour"] == _hex(seen["routes"][index]["swatch"])
        start, end = (at[tuple(p)] for p in line["points"])
        out.append((kind, start, end))
    return out


#: The diamond's second branch.
MILAN = Place("Milan", "Italy", "IT", 45.46, 9.19, 64501, "Tracekit Test Transit")


@pytest.fixture(scope="module")
def routed() -> Iterator[Lab]:
    """The chain of three routers (r2 silent), r3 owning a prefix; the shared routers have
    hostile names."""
    _require_root()
    with Lab(routers=3, silent=[2], ratelimit=0) as lab:
        lab.own_prefix("r3", OWNED)
        hosts = Path("/etc/netns") / lab.netns("client") / "hosts"
        lines = [f"{lab.address(node, v)} {name}" for (node, v), name in HOSTILE.items()]
        hosts.write_text("\n".join(lines) + "\n" + hosts.read_text())
        yield lab


@dataclass
class Run:
    """``tracekit A B C... --out routes.html`` on :func:`routed`, and the page in Chromium."""

    lab: Lab
    #: Each target as given, and the address it was traced to (``None``: it failed).
    targets: dict[str, str | None]
    process: subprocess.CompletedProcess[str]
    dom: Dom
    seen: dict[str, Any]
    #: The node at each place of the databases.
    at: dict[tuple[float, float], str]

    def row(self, target: str) -> dict[str, Any]:
        """The panel's line of ``target``: ``target (address)`` where they differ."""
        address = self.targets[target]
        name = target if address in (None, target) else f"{target} ({address})"
        return next(row for row in self.seen["routes"] if row["name"] == name)

    def lines(self, target: str) -> list[tuple[str, str, str]]:
        """The lines of the route to ``target``, the nodes at their ends."""
        return route_lines(self.seen, self.seen["routes"].index(self.row(target)), self.at)

    def hops(self, target: str) -> list[tuple[int, str]]:
        """``(ttl, address)`` of each answering hop of the trace to ``target``."""
        address = self.targets[target]
        assert address is not None
        version = 6 if ":" in address else 4
        node = addresses(self.lab).get(address, "r3")  # OWNED: at r3
        hops = self.lab.expected_hops(version, dst=node)
        hops[-1] = address
        return [(ttl, a) for ttl, a in enumerate(hops, start=1) if a is not None]

    @property
    def traced(self) -> list[str]:
        return [t for t, address in self.targets.items() if address is not None]


@pytest.fixture(scope="module")
def several(routed: Lab, tmp_path_factory: pytest.TempPathFactory) -> Run:
    lab, tmp_path = routed, tmp_path_factory.mktemp("several")
    places = dict(PLACES)
    places["r3"] = Place(HOSTILE_CITY, "Germany", "DE", 50.11, 8.68, 64501, HOSTILE_ORG)
    city, asn = write_databases(lab, tmp_path / "db", places)
    r3 = HOSTILE[("r3", 4)]  # by its name in the hosts file
    targets: dict[str, str | None] = {
        lab.address("server", 4): lab.address("server", 4),
        lab.address("r1", 6): lab.address("r1", 6),
        FAILING: None,
        r3: lab.address("r3", 4),
        lab.address("server", 6): lab.address("server", 6),
        "10.9.3.7": "10.9.3.7",
        HOSTILE_TARGET: None,
    }
    page = tmp_path / "routes.html"
    process = lab.tracekit(
        *targets, "--geoip-db", str(city), "--asn-db", str(asn), "-w", "1,3,10",
        "--out", str(page),
    )  # fmt: skip
    assert process.returncode == 1, process.stderr  # some targets failed
    assert page.read_text().count('class="tracekit-route"') == len(targets)
    dom, seen = drawn(page, ARTIFACTS / "map-several.png")
    return Run(lab, targets, process, dom, seen, node_at(places))


def test_the_panel_lists_every_target_and_the_failed_as_failed(several: Run) -> None:
    assert several.seen["title"] == several.dom.title == "tracekit: 7 targets"
    assert len(several.seen["routes"]) == len(several.targets)
    errors = several.process.stderr.splitlines()
    assert len(errors) == 2, errors
    for target, address in several.targets.items():
        status = several.row(target)["status"]
        if address is None:
            assert f"tracekit: {target}: {status.removeprefix('failed: ')}" in errors
            assert several.lines(target) == []  # nothing drawn
        else:
            ttl = several.hops(target)[-1][0]
            assert status == f"reached, {ttl} hop{'s' if ttl > 1 else ''}"
    assert several.row(FAILING)["status"].startswith("failed: cannot resolve")
    swatches = [several.row(target)["swatch"] for target in several.traced]
    assert len(set(swatches)) == len(swatches)  # a colour each (none for the failed)
    assert several.row(FAILING)["swatch"] == "rgba(0, 0, 0, 0)"
    panel = "".join(several.dom.panel_text)
    assert "10.9.3.7" in panel and "not located" in panel  # r3 answers for it, unplaced
    for colour, background in json.loads(several.dom.attributes["data-colours"]):
        assert contrast(colour, background) >= 4.5, (colour, background)  # readable


def test_each_route_is_one_line_of_its_colour(several: Run) -> None:
    node = addresses(several.lab)
    for target in several.traced:
        # from the start through the located hops; a dashed bridge over the silent r2
        stops = [(0, "client")] + [(ttl, node[a]) for ttl, a in several.hops(target) if a in node]
        expected = [
            ("bridge" if b[0] - a[0] > 1 else "link", a[1], b[1])
            for a, b in itertools.pairwise(stops)
        ]
        assert sorted(several.lines(target)) == sorted(expected), target
    # one start marker: both of the client's addresses are in Lisbon
    assert len(several.seen["origins"]) == 1
    assert set(several.seen["origins"][0]["tooltip"]) == {
        f"start: {several.lab.address('client', v)} (Lisbon, Portugal)" for v in (4, 6)
    }


def test_a_shared_router_is_one_marker_naming_its_routes(several: Run) -> None:
    lab, node = several.lab, addresses(several.lab)
    visits: dict[str, set[str]] = {}
    for target in several.traced:
        for ttl, address in several.hops(target):
            if address in node:
                end = ": destination " if address == several.targets[target] else " to "
                name = several.row(target)["name"]
                visits.setdefault(address, set()).add(f"TTL {ttl}{end}{name}")
    markers = {tooltip_address(m): m for m in several.seen["markers"]}
    assert len(markers) == len(several.seen["markers"])  # no address twice
    assert set(markers) == set(visits)
    for address, marker in markers.items():
        lines = {line.split(", RTT")[0] for line in marker["popup"] if line.startswith("TTL ")}
        assert lines == visits[address], address
        assert ("tracekit-shared" in marker["classes"]) == (len(visits[address]) > 1)
        assert contrast(marker["colour"], marker["fill"]) >= 4.5
    shared = {a for a, v in visits.items() if len(v) > 1}
    assert shared == {lab.address("r1", 4), lab.address("r1", 6), lab.address("r3", 4)}
    # r1 is on the routes to the server, to r3 and to r3's prefix
    assert len(visits[lab.address("r1", 4)]) == 3
    apart(several.seen["markers"])  # r1's and r3's IPv4 and IPv6 addresses: one place each


def test_hostile_names_on_several_routes_are_text(several: Run) -> None:
    assert "pwned" not in several.dom.title
    popups = " ".join(line for m in several.seen["markers"] for line in m["popup"])
    panel = "".join(several.dom.panel_text)
    for name in HOSTILE.values():
        assert name in popups and name in panel
    assert HOSTILE_TARGET in panel and HOSTILE_CITY in panel
    assert printable(HOSTILE_ORG) in panel and "\u202e" not in panel


@pytest.fixture(scope="module")
def diamond() -> Iterator[Lab]:
    _require_root()
    with Lab(topology=DIAMOND, multipath_hash=1, ratelimit=0) as lab:
        yield lab


@pytest.mark.parametrize("versions", [(4,), (4, 6)], ids=["one-target", "ipv4-and-ipv6"])
def test_multipath_map_draws_every_interface_and_link(
    diamond: Lab, versions: tuple[int, ...], tmp_path: Path
) -> None:
    places = {node: PLACES[node] for node in ("client", "r1", "r3", "server")}
    places["r2a"] = PLACES["r2"]
    places["r2b"] = MILAN
    at = node_at(places)
    city, asn = write_databases(diamond, tmp_path / "db", places)
    page, report = tmp_path / "mda.html", tmp_path / "mda.json"
    targets = [diamond.address("server", v) for v in versions]
    # The rule misses a branch with its stated chance (5 % a hop): three runs at most.
    for _ in range(3):
        process = diamond.tracekit(
            *targets, "-n", "--mda", "--geoip-db", str(city), "--asn-db", str(asn),
            "--out", str(page), "--out", str(report),
        )  # fmt: skip
        assert process.returncode == 0, process.stderr
        reports = json.loads(report.read_text())
        reports = reports if isinstance(reports, list) else [reports]
        if all([len(hop["hosts"]) for hop in r["hops"]] == [1, 2, 2, 1] for r in reports):
            break
    name = "map-multipath.png" if len(versions) == 1 else "map-multipath-several.png"
    dom, seen = drawn(page, ARTIFACTS / name)

    node = addresses(diamond)
    interfaces = {h["address"] for r in reports for hop in r["hops"] for h in hop["hosts"]}
    assert sorted(r["ip_version"] for r in reports) == list(versions)
    for r in reports:  # the diamond was found
        hosts = [{h["address"] for h in hop["hosts"]} for hop in r["hops"]]
        assert hosts == diamond.hop_choices(r["ip_version"]) and len(hosts[1]) == 2
    # every interface of each hop is one marker, where the database places it
    markers = Counter(tooltip_address(m) for m in seen["markers"])
    assert markers == Counter(interfaces)
    for marker in seen["markers"]:
        assert at[tuple(marker["at"])] == node[tooltip_address(marker)]
    apart(seen["markers"])  # r3's two interfaces (and IPv4 and IPv6) are in one place
    # every link found is a line between its interfaces' places, and the start reaches hop 1
    order = [row["name"] for row in seen["routes"]] or [targets[0]]
    for r in reports:
        expected = Counter(("link", node[k["from"]], node[k["to"]]) for k in r["links"])
        expected[("link", "client", "r1")] += 1
        lines = Counter(route_lines(seen, order.index(r["target"]), at))
        assert lines == expected
    assert "tracekit-bridge" not in dom.classes  # nothing silent, everything located
    panel = "".join(dom.panel_text)
    assert all(f"multipath: {len(r['links'])} links" in panel + "".join(dom.box_text)
               for r in reports)  # fmt: skip


def test_multipath_lines_bridge_silent_hops_and_unlocated_interfaces() -> None:
    """Hop 2 has a located interface and one without a location, hop 3 is silent: each
    located interface gets a line to every located one it leads to, dashed where hops or
    interfaces between them are left out."""
    trace = Trace("d", "10.4.0.1", 4, ProbeInfo("udp"), links=[])
    assert trace.links is not None
    places = {"10.1.0.1": (1.0, 1.0), "10.2.0.1": (2.0, 2.0), "10.4.0.1": (4.0, 4.0)}
    hops = [["10.1.0.1"], ["10.2.0.1", "10.2.0.2"], [], ["10.4.0.1"]]
    for ttl, hosts in enumerate(hops, start=1):
        hop = Hop(ttl)
        for address in hosts:
            place = places.get(address)
            location = Location(latitude=place[0], longitude=place[1]) if place else None
            hop.hosts[address] = Host(address, location=location)
        trace.hops.append(hop)
    trace.links += [Link(1, "10.1.0.1", "10.2.0.1"), Link(1, "10.1.0.1", "10.2.0.2")]
    trace.settings["origin"] = (0.0, 0.0)
    lines = {(tuple(s["from"]), tuple(s["to"]), s["bridged"]) for s in map_data(trace)["segments"]}
    assert lines == {
        ((0.0, 0.0), (1.0, 1.0), False),  # the start to hop 1
        ((1.0, 1.0), (2.0, 2.0), False),  # a link
        ((1.0, 1.0), (4.0, 4.0), True),  # through the unlocated 10.2.0.2 and the silent hop 3
        ((2.0, 2.0), (4.0, 4.0), True),  # over the silent hop 3
    }
    assert map_data(trace)["subtitle"].endswith(", multipath: 2 links")


def failed(target: str) -> Trace:
    """The record tracekit makes of a target that could not be traced."""
    trace = Trace(target, None, None, ProbeInfo("icmp"), end="error")
    trace.error = f"cannot resolve {target!r}"
    return trace


@pytest.mark.parametrize(
    ("traces", "title", "note"),
    [
        ([], "tracekit: 0 targets", "No target was traced."),
        ([failed("a.invalid"), failed("b.invalid")], "tracekit: 2 targets",
         "No target could be traced."),
    ],
)  # fmt: skip
def test_a_page_with_nothing_to_draw_says_why(
    traces: list[Trace], title: str, note: str, tmp_path: Path
) -> None:
    page = tmp_path / "none.html"  # as tracekit writes it: --targets EMPTY, or all failing
    records = MapOutput.list_separator.join(route_record(trace) for trace in traces)
    page.write_text(MapOutput.list_start + records + MapOutput.list_end)
    dom = render(page, tmp_path / "none.png")
    assert json.loads(dom.attributes["data-errors"]) == []
    assert dom.title == title
    assert "".join(dom.box_text).endswith(note)
    panel = "".join(dom.panel_text)
    assert all(f"failed: cannot resolve '{t.target}'" in panel for t in traces)
