"""The HTML map, rendered in a real headless Chromium with no network: markers, the route,
and hostile names shown as text without ever running."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tracekit.model import Hop, Host, ProbeInfo, Trace
from tracekit.outputs.map import (
    HEAVY_LOSS_COLOUR,
    LOSS_STEPS,
    NO_LOSS_COLOUR,
    loss_colour,
    map_data,
)
from tracekit.sanitize import printable
from tracekit.stats import HopStats, RttStats
from tracekit.testing import Lab
from tracekit.testing.geodb import PLACES, Place, write_databases

pytestmark = pytest.mark.netns

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# Reverse DNS names (from the client's hosts file) and database strings written by strangers.
HOSTILE_NAMES = {
    "r1": "<svg/onload=document.title='pwned-svg'>",
    "r3": "${document.title='pwned-template'}`+alert(1)+`\\",
    "server": "</script><script>document.title='pwned-script'</script>\"'",
}
HOSTILE_ORG = "Evil\x1b[31m\u202e Org ${document.title='pwned-org'} <img src=x onerror=alert(1)>"
# Braces: folium renders the page with Jinja, which must never read the data as a template.
HOSTILE_CITY = "`${document.title='pwned-city'}` {{ 7*7 }} {% raw %} {#"

# Runs after the page: records script errors and the text of every popup and tooltip.
HARNESS = """
<script>
window.__errors = [];
window.alert = function (m) { window.__errors.push('alert ran: ' + m); };
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });
</script>
"""
COLLECT = """
<script>
function tracekitTestMap() {
  return Object.keys(window).map(function (k) { return window[k]; })
    .filter(function (v) { return v instanceof L.Map; })[0];
}
function tracekitTestView(map) {
  var c = map.getCenter();
  return [map.getZoom(), c.lat.toFixed(4), c.lng.toFixed(4)].join(' ');
}
function tracekitTestColours(selector) {  // [text colour, background] of every text in it
  var out = [];
  document.querySelectorAll(selector).forEach(function (root) {
    var background = getComputedStyle(root).backgroundColor;
    [root].concat(Array.prototype.slice.call(root.querySelectorAll('*'))).forEach(function (el) {
      var text = Array.prototype.some.call(el.childNodes, function (n) {
        return n.nodeType === 3 && n.textContent.trim();
      });
      if (text) { out.push([getComputedStyle(el).color, background]); }
    });
  });
  return out;
}
window.addEventListener('load', function () {
  document.documentElement.setAttribute('data-view-at-load', tracekitTestView(tracekitTestMap()));
  setTimeout(function () {
  var map = tracekitTestMap();
  var popups = [], tooltips = [];
  map.eachLayer(function (layer) {
    if (layer.getPopup && layer.getPopup()) {
      layer.openPopup(); popups.push(layer.getPopup().getElement().textContent);
    }
    if (layer.getTooltip && layer.getTooltip()) {
      layer.openTooltip(); tooltips.push(layer.getTooltip().getElement().textContent);
    }
  });
  var root = document.documentElement;
  root.setAttribute('data-popups', JSON.stringify(popups));
  root.setAttribute('data-tooltips', JSON.stringify(tooltips));
  root.setAttribute('data-errors', JSON.stringify(window.__errors));
  root.setAttribute('data-view', tracekitTestView(map));
  root.setAttribute('data-markers', JSON.stringify(Array.prototype.map.call(
    document.querySelectorAll('.tracekit-marker'), function (m) { return m.textContent; })));
  root.setAttribute('data-marker-fills', JSON.stringify(Array.prototype.map.call(
    document.querySelectorAll('.tracekit-marker'),
    function (m) { return getComputedStyle(m).backgroundColor; })));
  root.setAttribute('data-attribution',
    document.querySelector('.leaflet-control-attribution').textContent);
  var panel = document.getElementById('tracekit-panel');
  root.setAttribute('data-panel', JSON.stringify({client: panel.clientHeight,
    scroll: panel.scrollHeight, window: window.innerHeight}));
  root.setAttribute('data-colours', JSON.stringify(
    tracekitTestColours('#tracekit-panel, #tracekit-title')));
}, 1000); });
</script>
"""


class Dom(HTMLParser):
    """What the test needs from the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.attributes: dict[str, str] = {}
        self.classes: list[str] = []
        self.handlers: list[tuple[str, str]] = []
        self.panel_text: list[str] = []
        #: ``(classes, fill colour)`` of every marker drawn (SVG paths).
        self.markers: list[tuple[list[str], str]] = []
        self._in_title = False
        self._panel_depth = 0
        #: The text of the title box (top left).
        self.box_text: list[str] = []
        self._box_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.attributes = values
        self._in_title = tag == "title"
        self.classes += values.get("class", "").split()
        self.handlers += [(tag, k) for k in values if k.startswith("on")]
        if tag == "path" and "fill" in values:
            self.markers.append((values.get("class", "").split(), values["fill"]))
        if values.get("id") == "tracekit-panel" or self._panel_depth:
            self._panel_depth += 1
        if values.get("id") == "tracekit-title" or self._box_depth:
            self._box_depth += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False
        if self._panel_depth:
            self._panel_depth -= 1
        if self._box_depth:
            self._box_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._panel_depth:
            self.panel_text.append(data)
        if self._box_depth:
            self.box_text.append(data)


def contrast(colour: str, background: str) -> float:
    """The WCAG contrast ratio of two CSS ``rgb()``/``rgba()`` colours (4.5: readable text)."""

    def luminance(css: str) -> float:
        values = [float(v) for v in css[css.index("(") + 1 : -1].split(",")[:3]]
        linear = [v / 255 / 12.92 if v <= 10 else ((v / 255 + 0.055) / 1.055) ** 2.4
                  for v in values]  # fmt: skip
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(colour), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def render(page: Path, screenshot: Path, collect: str = COLLECT) -> Dom:
    """Open ``page`` in headless Chromium without any network; return the DOM after JS
    (``collect``: scripts run after the page's, that record what the test needs)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Chromium is needed to check the map (apt install chromium)")
    harnessed = page.with_name("harnessed-" + page.name)
    html = page.read_text()
    harnessed.write_text(html.replace("<head>", "<head>" + HARNESS, 1) + collect)
    profile = page.parent / "chromium-profile"
    base = [
        "unshare", "-n", chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--disable-sync", f"--user-data-dir={profile}", "--window-size=1400,900",
        "--virtual-time-budget=5000",
    ]  # fmt: skip
    dump = subprocess.run(
        [*base, "--dump-dom", harnessed.as_uri()], capture_output=True, text=True, timeout=60
    )
    subprocess.run(
        [*base, f"--screenshot={screenshot}", harnessed.as_uri()], capture_output=True, timeout=60
    )
    dom = Dom()
    dom.feed(dump.stdout)
    return dom


@pytest.fixture(scope="module")
def hostile_lab() -> Any:
    from tracekit.testing.pytest_plugin import _require_root

    _require_root()
    with Lab(routers=3, silent=[2]) as lab:
        hosts = Path("/etc/netns") / lab.netns("client") / "hosts"
        lines = [f"{lab.address(node)} {name}" for node, name in HOSTILE_NAMES.items()]
        hosts.write_text("\n".join(lines) + "\n" + hosts.read_text())
        yield lab


def test_map_shows_the_route_offline_and_hostile_text_never_runs(
    hostile_lab: Lab, tmp_path: Path
) -> None:
    places = dict(PLACES)
    places["r3"] = Place(HOSTILE_CITY, "Germany", "DE", 50.11, 8.68, 64501, HOSTILE_ORG)
    city, asn = write_databases(hostile_lab, tmp_path / "db", places)
    page = tmp_path / "route.html"
    process = hostile_lab.tracekit(
        hostile_lab.address("server"), "--geoip-db", str(city), "--asn-db", str(asn),
        "--out", str(page), "--out", str(tmp_path / "route.json"),
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert "cdn" not in page.read_text().lower()
    ARTIFACTS.mkdir(exist_ok=True)
    dom = render(page, ARTIFACTS / "map.png")

    assert json.loads(dom.attributes["data-errors"]) == []
    assert dom.title == "tracekit: 10.0.4.2 (10.0.4.2)"  # no hostile name changed it
    # r1, r3 and the server are located (r2 is silent); the client is the start
    assert dom.classes.count("tracekit-hop") == 2
    assert dom.classes.count("tracekit-destination") == 1
    assert dom.classes.count("tracekit-origin") == 1
    # each marker shows its TTL
    assert json.loads(dom.attributes["data-markers"]) == ["1", "3", "4"]
    # start -> r1 and r3 -> server are measured links; r1 -> r3 bridges the silent r2
    assert dom.classes.count("tracekit-link") == 2
    assert dom.classes.count("tracekit-bridge") == 1
    # no opening animation: the view when the page has loaded is the final one
    assert dom.attributes["data-view-at-load"] == dom.attributes["data-view"]
    # offline, no tile is shown, so OpenStreetMap is not credited (the data sources are)
    assert "OpenStreetMap" not in dom.attributes["data-attribution"]
    assert "Leaflet" in dom.attributes["data-attribution"]
    # the hop panel is as tall as its content, and its text is readable
    panel = json.loads(dom.attributes["data-panel"])
    assert panel["client"] == panel["scroll"] < panel["window"] - 40
    for colour, background in json.loads(dom.attributes["data-colours"]):
        assert contrast(colour, background) >= 4.5, (colour, background)
    assert dom.handlers == []  # no element got an event handler from the data

    panel = "".join(dom.panel_text)
    popups = " ".join(json.loads(dom.attributes["data-popups"]))
    for name in HOSTILE_NAMES.values():
        assert name in panel and name in popups
    assert HOSTILE_CITY in panel
    # control and bidi characters are shown as escapes, never acted on
    assert printable(HOSTILE_ORG) in panel and "\x1b" not in panel and "\u202e" not in panel
    assert "* (no answer)" in panel and "Lisbon" in popups
    tooltips = json.loads(dom.attributes["data-tooltips"])
    assert "start: 10.0.1.1 (Lisbon, Portugal)" in tooltips


def test_map_without_databases_says_how_to_get_locations(tracekit_lab: Lab, tmp_path: Path) -> None:
    page = tmp_path / "plain.html"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    process = tracekit_lab.tracekit(
        tracekit_lab.address("server"), "-n", "--out", str(page), env=env
    )
    assert process.returncode == 0, process.stderr
    dom = render(page, tmp_path / "plain.png")
    assert json.loads(dom.attributes["data-errors"]) == []
    assert dom.classes.count("tracekit-hop") == 0
    text = page.read_text()
    assert "No hop could be located" in text and "tracekit geoip download" in text
    assert "10.0.3.2" in "".join(dom.panel_text)  # unlocated hops are listed, not dropped


def test_map_with_locations_off_says_so(tracekit_lab: Lab, tmp_path: Path) -> None:
    page = tmp_path / "off.html"
    process = tracekit_lab.tracekit(
        tracekit_lab.address("server"), "-n", "--no-geo", "--out", str(page)
    )
    assert process.returncode == 0, process.stderr
    text = page.read_text()
    assert "Locations are off (--no-geo)" in text
    assert "No hop could be located" not in text


def marker_fills(dom: Dom) -> dict[str, str]:
    """The fill colour of each hop and destination marker, by the address in its tooltip
    (markers are drawn in the order of the points)."""
    fills = json.loads(dom.attributes["data-marker-fills"])
    tooltips = [t for t in json.loads(dom.attributes["data-tooltips"]) if t.startswith("TTL ")]
    assert len(fills) == len(tooltips)
    return {tip.split(": ")[1]: _hex(fill) for tip, fill in zip(tooltips, fills, strict=True)}


def _hex(css: str) -> str:
    """``rgb(46, 125, 50)`` (a computed colour) as ``#2e7d32``."""
    red, green, blue = (int(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return f"#{red:02x}{green:02x}{blue:02x}"


def test_continuous_map_shows_loss_and_statistics(
    tracekit_lab: Lab, tracekit_geodb: tuple[Path, Path], tmp_path: Path
) -> None:
    city, asn = tracekit_geodb
    page = tmp_path / "rounds.html"
    process = tracekit_lab.tracekit(
        tracekit_lab.address("server"), "-n", "--geoip-db", str(city), "--asn-db", str(asn),
        "--out", str(page), "-c", "3", "-i", "0.1",
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    dom = render(page, ARTIFACTS / "map-continuous.png")
    assert json.loads(dom.attributes["data-errors"]) == []

    located = [a for a in tracekit_lab.expected_hops() if a is not None]
    assert marker_fills(dom) == dict.fromkeys(located, NO_LOSS_COLOUR)  # no loss: all green
    panel = "".join(dom.panel_text)
    assert "".join(dom.box_text).endswith(", reached, 3 rounds every 0.1 s")
    # every answering hop: its loss, rate-limited share, round trips and jitter
    assert panel.count("Loss% 0.0, Snt 3, Lim% 0.0") == len(located)
    assert panel.count("Avg ") == len(located) and panel.count("Jitter avg ") == len(located)
    assert "Loss% ---, Snt 3 (no answer: its loss cannot be told)" in panel  # the silent r2
    assert "forwarding loss of the hop: green none, amber under 5 %" in panel
    popups = json.loads(dom.attributes["data-popups"])
    server = next(p for p in popups if p.startswith("destination, TTL 4"))
    assert "Loss% 0.0, Snt 3, Lim% 0.0" in server and "StDev " in server and "Jitter" in server
    assert "RTT " not in panel  # no per-probe round trips in continuous mode


@pytest.fixture(scope="module")
def lossy_lab() -> Any:
    """The chain of the shared lab, where the server drops every other echo request."""
    from tracekit.testing.pytest_plugin import _require_root

    _require_root()
    with Lab(routers=3, silent=[2]) as lab:
        lab.nft(
            "server",
            "table inet lossy { chain input { type filter hook input priority 0;"
            " policy accept; icmp type echo-request numgen inc mod 2 == 0 drop; }; }",
        )
        yield lab


def test_continuous_map_colours_a_lossy_hop(lossy_lab: Lab, tmp_path: Path) -> None:
    city, asn = write_databases(lossy_lab, tmp_path / "db")
    page = tmp_path / "lossy.html"
    process = lossy_lab.tracekit(
        lossy_lab.address("server"), "-n", "--geoip-db", str(city), "--asn-db", str(asn),
        "--out", str(page), "-c", "10", "-i", "0.1",
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    dom = render(page, tmp_path / "lossy.png")
    assert json.loads(dom.attributes["data-errors"]) == []
    fills = marker_fills(dom)
    server = lossy_lab.address("server")
    assert fills.pop(server) == HEAVY_LOSS_COLOUR  # about half lost: red
    assert set(fills.values()) == {NO_LOSS_COLOUR}  # the routers lose nothing
    panel = "".join(dom.panel_text)
    assert "Snt 10, Lim% 0.0" in panel and "Loss% 0.0, Snt 10" in panel


def test_loss_colour_scale() -> None:
    def hop(sent: int, received: int, withheld: int = 0) -> HopStats:
        stats = HopStats(sent=sent, unanswered=sent - received, rate_limited=withheld)
        for _ in range(received):
            stats.add(1.0)
        return stats

    amber, orange = (colour for _, colour in LOSS_STEPS)
    assert loss_colour(hop(100, 100)) == NO_LOSS_COLOUR
    assert loss_colour(hop(100, 60, withheld=40)) == NO_LOSS_COLOUR  # rate-limited, not lost
    assert loss_colour(hop(100, 99)) == amber
    assert loss_colour(hop(100, 95)) == orange
    assert loss_colour(hop(100, 80)) == HEAVY_LOSS_COLOUR
    assert loss_colour(hop(10, 0)) == loss_colour(None) == "#777777"  # silent: not told


def test_continuous_map_data_shows_each_responder() -> None:
    trace = Trace("server", "10.0.4.2", 4, ProbeInfo("icmp"), cycles=2, interval=1.0, rounds=2)
    stats = HopStats(sent=2)
    hop = Hop(1, stats=stats)
    for address, rtt in (("10.0.1.2", 1.0), ("10.0.9.2", 3.0)):
        stats.add(rtt)
        own = RttStats()
        own.add(rtt)
        hop.hosts[address] = Host(address, stats=own)
    trace.hops = [hop]
    data = map_data(trace)
    first, second = data["hops"][0]["hosts"]
    assert data["hops"][0]["stats"][0] == "Loss% 0.0, Snt 2, Lim% 0.0"
    assert first["stats"][0] == "1 answer: Avg 1.000, Best 1.000, Wrst 1.000, StDev 0.000 ms"
    assert second["stats"][0].startswith("1 answer: Avg 3.000")
    assert data["subtitle"].endswith(", 2 rounds every 1 s")
