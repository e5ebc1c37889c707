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

from tracekit.sanitize import printable
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
HOSTILE_CITY = "`${document.title='pwned-city'}`"

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
        self._in_title = False
        self._panel_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.attributes = values
        self._in_title = tag == "title"
        self.classes += values.get("class", "").split()
        self.handlers += [(tag, k) for k in values if k.startswith("on")]
        if values.get("id") == "tracekit-panel" or self._panel_depth:
            self._panel_depth += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False
        if self._panel_depth:
            self._panel_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._panel_depth:
            self.panel_text.append(data)


def contrast(colour: str, background: str) -> float:
    """The WCAG contrast ratio of two CSS ``rgb()``/``rgba()`` colours (4.5: readable text)."""

    def luminance(css: str) -> float:
        values = [float(v) for v in css[css.index("(") + 1 : -1].split(",")[:3]]
        linear = [v / 255 / 12.92 if v <= 10 else ((v / 255 + 0.055) / 1.055) ** 2.4
                  for v in values]  # fmt: skip
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(colour), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def render(page: Path, screenshot: Path) -> Dom:
    """Open ``page`` in headless Chromium without any network; return the DOM after JS."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Chromium is needed to check the map (apt install chromium)")
    harnessed = page.with_name("harnessed-" + page.name)
    html = page.read_text()
    harnessed.write_text(html.replace("<head>", "<head>" + HARNESS, 1) + COLLECT)
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
