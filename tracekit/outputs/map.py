"""An HTML map of the route (``--out FILE.html``), drawn with folium and Leaflet.

The page works offline: Leaflet is inlined, and a world outline (Natural Earth land) lies under
the route, so it reads as a map even when no tiles can be fetched. Text from the network
(reverse DNS names, ASN organisations, database strings) never reaches the page as markup:
it travels as JSON data, escaped for a ``<script>`` block, and is put into the page with
``textContent`` only.

In continuous mode (``-c``) each hop is coloured by its forwarding loss (:func:`loss_colour`)
and the popups and the side panel show its statistics (Loss%, Snt, Lim%, round trips,
jitter), and those of each responder where a hop has several.
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

from tracekit import hookimpl
from tracekit.outputs import Output
from tracekit.sanitize import printable

if TYPE_CHECKING:
    from tracekit.hookspecs import AddOption, RegisterOutput
    from tracekit.model import Credit, Host, Location, Trace
    from tracekit.stats import HopStats, RttStats

TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
TILES_CREDIT = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
NO_LOCATIONS = (
    "No hop could be located: no GeoIP database was found, or it does not know these "
    "addresses. Run 'tracekit geoip download' or pass --geoip-db FILE."
)
GEO_OFF = "Locations are off (--no-geo): the route is listed, not placed."
#: Continuous mode: a hop's colour by its forwarding loss: green with no loss at all, then
#: the first ``(under, colour)`` step whose bound (percent) the loss is under, else red.
NO_LOSS_COLOUR = "#2e9e44"  # green
LOSS_STEPS = [(5.0, "#f0a81c"), (20.0, "#f06a1c")]  # amber, orange
HEAVY_LOSS_COLOUR = "#d62728"  # red
NO_ANSWER_COLOUR = "#777777"
_SHAPES = (
    "Open circle: start; ringed: destination. Solid line: a measured link; dashed grey: "
    "hops between left out (silent, or without a location)."
)
RTT_LEGEND = "Numbers: TTL. Colour: round-trip time, green (fastest) to red (slowest). " + _SHAPES
LOSS_LEGEND = (
    "Numbers: TTL. Colour: forwarding loss of the hop: green none, amber under 5 %, orange "
    "under 20 %, red 20 % or more. Answers withheld by a rate limit (Lim%) are not loss. " + _SHAPES
)


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element (no ``</script>``,
    ``<!--``, or line separators can appear)."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _rtt_colour(rtt: float | None, slowest: float) -> str:
    """Green for the fastest answers through yellow to red for the slowest."""
    if rtt is None or slowest <= 0:
        return "#777777"
    share = min(1.0, rtt / slowest)
    red = int(255 * min(1.0, 2 * share))
    green = int(200 * min(1.0, 2 * (1 - share)))
    return f"#{red:02x}{green:02x}30"


def _text(value: str | None) -> str | None:
    """Text from strangers, with control and bidi characters shown as escapes."""
    return None if value is None else printable(value)


def _host_info(host: Host) -> dict[str, Any]:
    asn, location = host.asn, host.location
    return {
        "address": host.address,
        "name": _text(host.name),
        "asn": f"AS{asn.number}" if asn is not None and asn.number else None,
        "org": _text(asn.organization) if asn is not None else None,
        "place": _text(_place(location)) or None,
        "lat": location.latitude if location is not None else None,
        "lon": location.longitude if location is not None else None,
    }


def _place(location: Location | None) -> str:
    if location is None:
        return ""
    return ", ".join(p for p in (location.city, location.country) if p)


def loss_colour(stats: HopStats | None) -> str:
    """The colour of a hop in continuous mode, by its forwarding loss (:data:`LOSS_STEPS`);
    grey for a hop that never answered (its loss cannot be told). Answers withheld by a rate
    limit are not loss."""
    loss = stats.loss_pct if stats is not None else None
    if loss is None:
        return NO_ANSWER_COLOUR
    if loss == 0:
        return NO_LOSS_COLOUR
    return next((colour for under, colour in LOSS_STEPS if loss < under), HEAVY_LOSS_COLOUR)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _rtt_line(stats: RttStats) -> str:
    return (
        f"Avg {_ms(stats.avg_ms)}, Best {_ms(stats.best_ms)}, Wrst {_ms(stats.worst_ms)}, "
        f"StDev {_ms(stats.stdev_ms)} ms"
    )


def _jitter_line(stats: RttStats) -> str:
    return f"Jitter avg {_ms(stats.javg_ms)}, max {_ms(stats.jmax_ms)} ms"


def hop_summary(stats: HopStats | None) -> list[str]:
    """A hop's statistics in continuous mode, as the popups and the panel show them."""
    if stats is None or not stats.received:
        sent = stats.sent if stats is not None else 0
        return [f"Loss% ---, Snt {sent} (no answer: its loss cannot be told)"]
    loss, limited = stats.loss_pct or 0.0, stats.rate_limited_pct or 0.0
    return [
        f"Loss% {loss:.1f}, Snt {stats.sent}, Lim% {limited:.1f}",
        _rtt_line(stats),
        _jitter_line(stats),
    ]


def host_summary(stats: RttStats | None) -> list[str]:
    """One responder's own answers in continuous mode."""
    if stats is None or not stats.received:
        return []
    answers = "1 answer" if stats.received == 1 else f"{stats.received} answers"
    return [f"{answers}: {_rtt_line(stats)}", _jitter_line(stats)]


def map_data(trace: Trace) -> dict[str, Any]:
    """Everything the page shows, as plain data."""
    rtts = [p.rtt_ms for h in trace.hops for p in h.probes if p.rtt_ms is not None]
    slowest = max(rtts, default=0.0)
    continuous = trace.continuous
    hops, points = [], []
    for hop in trace.hops:
        hosts = []
        summary = hop_summary(hop.stats) if continuous else []
        for host in hop.hosts.values():
            info = _host_info(host)
            if continuous:
                info["rtts"] = []
                # A responder's own answers, where it shares its hop with others.
                info["stats"] = host_summary(host.stats) if len(hop.hosts) > 1 else []
                info["colour"] = loss_colour(hop.stats)
            else:
                mine = [p.rtt_ms for p in hop.probes if p.address == host.address and p.rtt_ms]
                info["rtts"] = [round(r, 3) for r in mine]
                info["stats"] = []
                info["colour"] = _rtt_colour(min(mine, default=None), slowest)
            hosts.append(info)
            if info["lat"] is not None:
                role = "destination" if host.address == trace.address else "hop"
                points.append({**info, "ttl": hop.ttl, "role": role, "hop": summary})
        hops.append({"ttl": hop.ttl, "hosts": hosts, "stats": summary})
    origin = None
    if trace.settings.get("origin"):
        lat, lon = trace.settings["origin"]
        origin = {"lat": lat, "lon": lon, "label": f"start: {trace.source} (--origin)"}
    elif trace.source_host is not None and trace.source_host.location is not None:
        location = trace.source_host.location
        origin = {
            "lat": location.latitude,
            "lon": location.longitude,
            "label": printable(f"start: {trace.source} ({_place(location)})"),
        }
    databases = [d for d in (trace.annotations.get("geoip") or {}).values() if d]
    stops = ([(0, origin["lat"], origin["lon"])] if origin else []) + [
        (p["ttl"], p["lat"], p["lon"]) for p in points
    ]
    segments = [
        {"from": [a[1], a[2]], "to": [b[1], b[2]], "bridged": b[0] - a[0] > 1}
        for a, b in itertools.pairwise(stops)
    ]
    started = trace.started.strftime("%Y-%m-%d %H:%M:%S UTC") if trace.started else ""
    status = {"reached": "reached", "unreachable": "unreachable"}.get(
        trace.end or "", "not reached"
    )
    subtitle = f"{trace.probe.method} probes, {started}, {status}"
    if continuous:
        rounds = "1 round" if trace.rounds == 1 else f"{trace.rounds} rounds"
        subtitle += f", {rounds} every {trace.interval:g} s"
    return {
        "title": f"tracekit: {printable(trace.target)} ({trace.address})",
        "subtitle": subtitle,
        "continuous": continuous,
        "legend": LOSS_LEGEND if continuous else RTT_LEGEND,
        "hops": hops,
        "points": points,
        "origin": origin,
        #: The route between the start and the located hops, in TTL order: a segment is
        #: ``bridged`` when hops between its ends (silent, or without a location) are left out.
        "segments": segments,
        "databases": [printable(f"{d['type']}: {d['description']}") for d in databases],
        "message": None if points else _no_locations(trace),
    }


def _link(text: str, url: str | None) -> str:
    """``text`` escaped, linked to ``url`` if it is an http(s) address."""
    import html  # here: tracekit --help loads this module

    escaped = html.escape(text)
    if url is None or not url.startswith(("https://", "http://")):
        return escaped
    return f'<a href="{html.escape(url, quote=True)}">{escaped}</a>'


def credit_html(credit: Credit) -> str:
    """One credit as the map's attribution shows it: plain text from the enrichment that
    added it, escaped, with its links."""
    out = _link(credit.text, credit.url)
    if credit.licence:
        out += f" ({_link(credit.licence, credit.licence_url)})"
    return out


def _credits(trace: Trace) -> list[str]:
    """Attribution for the data on the map: what the enrichment that used it asked for
    (``trace.credits``: DB-IP's licence requires it for their databases)."""
    return [credit_html(credit) for credit in trace.credits]


def render(trace: Trace) -> str:
    """The map page as one self-contained HTML document."""
    import folium
    from branca.element import Element, MacroElement
    from jinja2 import Template

    page = folium.Map(location=[30, 10], zoom_start=2, tiles=None, control_scale=True)
    page.default_js = []  # Leaflet is inlined below; nothing comes from a CDN
    page.default_css = []
    root: Any = page.get_root()  # a branca Figure
    header = root.header
    from importlib.resources import files  # here: tracekit --help loads this module

    assets = files("tracekit.outputs") / "mapassets"
    header.add_child(Element(f"<style>{(assets / 'leaflet.css').read_text()}</style>"))
    header.add_child(Element(f"<script>{(assets / 'leaflet.js').read_text()}</script>"))
    header.add_child(Element(f"<style>{STYLE}</style>"))
    root.html.add_child(Element('<div id="tracekit-title"></div><div id="tracekit-panel"></div>'))
    route = MacroElement()  # type: ignore[no-untyped-call]
    route._name = "TracekitRoute"
    route._template = Template(
        "{% macro script(this, kwargs) %}"
        "var tracekitData = " + script_json(map_data(trace)) + ";\n"
        "var tracekitLand = " + (assets / "land-110m.geojson").read_text() + ";\n"
        "var tracekitCredits = " + script_json(_credits(trace)) + ";\n"
        "var tracekitTiles = " + script_json({"url": TILES, "credit": TILES_CREDIT}) + ";\n"
        "tracekitDraw({{ this._parent.get_name() }}, tracekitData, tracekitLand,"
        " tracekitCredits, tracekitTiles);\n"
        "{% endmacro %}"
    )
    page.add_child(route)
    header.add_child(Element(f"<script>{SCRIPT}</script>"))
    html: str = root.render()
    return html


class MapOutput(Output):
    """Writes the map when the trace is finished."""

    several_traces = False  # one route per map, for now

    def finish(self, trace: Trace) -> None:
        self.target.stream.write(render(trace))
        self.target.stream.flush()


@hookimpl
def tracekit_register_outputs(register: RegisterOutput) -> None:
    register("map", MapOutput, "HTML map of the route, works offline (folium)", [".html"])


@hookimpl
def tracekit_add_options(add: AddOption) -> None:
    add("--origin", callback=parse_origin, metavar="LAT,LON",
        help="Where this machine is, for the map's start marker.")  # fmt: skip


def parse_origin(ctx: Any, param: Any, value: str | None) -> tuple[float, float] | None:
    """``--origin LAT,LON`` in degrees (a click callback)."""
    if value is None:
        return None
    import click

    try:
        lat, lon = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not LAT,LON (degrees)") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise click.BadParameter(f"{value!r}: latitude -90..90, longitude -180..180")
    return lat, lon


STYLE = """
#tracekit-title { position: absolute; top: 8px; left: 56px; z-index: 1000; background: #fff;
  color: #111; padding: 6px 10px; border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.35);
  font: 14px/1.3 system-ui, sans-serif; max-width: 60%; }
#tracekit-title .sub { color: #444; font-size: 12px; }
#tracekit-title .note { color: #a40000; font-size: 12px; margin-top: 4px; }
#tracekit-panel { position: absolute; top: 8px; right: 8px; z-index: 1000;
  max-height: calc(100% - 40px); box-sizing: border-box; min-width: 200px; max-width: 340px;
  overflow: auto; background: #fff; color: #111; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.35); font: 12px/1.35 system-ui, sans-serif;
  padding: 6px 8px; }
#tracekit-panel .hop { padding: 3px 0; border-bottom: 1px solid #ddd; }
#tracekit-panel .ttl { display: inline-block; width: 2.2em; font-weight: bold; }
#tracekit-panel .dim { color: #4a4a4a; }
#tracekit-panel .stats, .tracekit-popup .stats { font-variant-numeric: tabular-nums; }
.tracekit-popup { font: 12px/1.35 system-ui, sans-serif; }
.tracekit-popup div { white-space: nowrap; }
.tracekit-marker { display: flex; align-items: center; justify-content: center; width: 100%;
  height: 100%;
  box-sizing: border-box; border-radius: 50%; border: 1px solid #333; color: #000;
  font: bold 12px/1 system-ui, sans-serif; }
.tracekit-marker.tracekit-destination { border: 3px solid #000; }
.leaflet-container { background: #cfe3f2; }
"""

SCRIPT = r"""
function tracekitLine(parent, text, className) {
  var div = document.createElement('div');
  div.textContent = text;
  if (className) { div.className = className; }
  parent.appendChild(div);
  return div;
}
function tracekitDescribe(host) {
  var lines = [];
  var named = host.name && host.name !== host.address;
  lines.push(host.address + (named ? ' (' + host.name + ')' : ''));
  if (host.asn) { lines.push(host.asn + (host.org ? ' ' + host.org : '')); }
  if (host.place) { lines.push(host.place); }
  if (host.rtts && host.rtts.length) {
    lines.push('RTT ' + host.rtts.map(function (r) { return r.toFixed(3); }).join(' / ') + ' ms');
  }
  return lines.concat(host.stats || []);
}
function tracekitPopup(point) {
  var div = document.createElement('div');
  div.className = 'tracekit-popup';
  tracekitLine(div, (point.role === 'destination' ? 'destination, ' : '') + 'TTL ' + point.ttl);
  tracekitDescribe(point).forEach(function (line) { tracekitLine(div, line); });
  (point.hop || []).forEach(function (line) { tracekitLine(div, line, 'stats'); });
  return div;
}
function tracekitDraw(map, data, land, credits, tiles) {
  document.title = data.title;
  var title = document.getElementById('tracekit-title');
  tracekitLine(title, data.title);
  tracekitLine(title, data.subtitle, 'sub');
  if (data.message) { tracekitLine(title, data.message, 'note'); }

  map.createPane('land');
  map.getPane('land').style.zIndex = 150;  // under the tiles: seen when there are none
  L.geoJSON(land, {pane: 'land', interactive: false,
    style: {color: '#8a9a8a', weight: 0.6, fillColor: '#eef0e6', fillOpacity: 1}}).addTo(map);
  credits.forEach(function (credit) { map.attributionControl.addAttribution(credit); });
  // OpenStreetMap is credited once one of its tiles is shown: not on a page seen offline.
  var tileLayer = L.tileLayer(tiles.url, {maxZoom: 19});
  tileLayer.once('tileload', function () {
    map.attributionControl.addAttribution(tiles.credit);
  });
  tileLayer.addTo(map);

  var line = [];
  if (data.origin) {
    line.push([data.origin.lat, data.origin.lon]);
    var start = document.createElement('div');
    tracekitLine(start, data.origin.label);
    L.circleMarker([data.origin.lat, data.origin.lon], {radius: 9, color: '#1f4fbf',
      weight: 3, fillColor: '#ffffff', fillOpacity: 1, className: 'tracekit-origin'})
      .bindPopup(start).bindTooltip(start.cloneNode(true)).addTo(map);
  }
  data.segments.forEach(function (segment) {  // under the markers
    L.polyline([segment.from, segment.to], segment.bridged
      ? {color: '#555555', weight: 2, opacity: 0.9, dashArray: '4 6', className: 'tracekit-bridge'}
      : {color: '#1f4fbf', weight: 3, opacity: 0.9, className: 'tracekit-link'}).addTo(map);
  });
  data.points.forEach(function (point) {
    line.push([point.lat, point.lon]);
    var destination = point.role === 'destination';
    var tip = document.createElement('div');
    tracekitLine(tip, 'TTL ' + point.ttl + ': ' + point.address);
    var label = document.createElement('div');  // the TTL, on the marker
    label.className = 'tracekit-marker ' + (destination ? 'tracekit-destination' : 'tracekit-hop');
    label.style.background = point.colour;
    label.textContent = String(point.ttl);
    var size = destination ? 28 : 22;
    var icon = L.divIcon({html: label, className: 'tracekit-icon', iconSize: [size, size]});
    L.marker([point.lat, point.lon], {icon: icon, keyboard: false, riseOnHover: true})
      .bindPopup(tracekitPopup(point)).bindTooltip(tip).addTo(map);
  });
  if (line.length) {  // at once, no animation: the page shows its final view when it loads
    map.fitBounds(L.latLngBounds(line).pad(0.2), {maxZoom: 6, animate: false,
      paddingTopLeft: [20, 70], paddingBottomRight: [360, 20]});
  }

  var panel = document.getElementById('tracekit-panel');
  tracekitLine(panel, 'Hops', 'sub');
  data.hops.forEach(function (hop) {
    var row = tracekitLine(panel, '', 'hop');
    var ttl = document.createElement('span');
    ttl.className = 'ttl';
    ttl.textContent = hop.ttl;
    row.appendChild(ttl);
    if (!hop.hosts.length) { row.appendChild(document.createTextNode('* (no answer)')); }
    hop.hosts.forEach(function (host, i) {
      var lines = tracekitDescribe(host);
      if (host.lat === null || host.lat === undefined) { lines.push('not located'); }
      lines.forEach(function (text, j) {
        var part = tracekitLine(row, text, j ? 'dim' : '');
        part.style.display = (i === 0 && j === 0) ? 'inline' : 'block';
      });
    });
    (hop.stats || []).forEach(function (text) { tracekitLine(row, text, 'stats'); });
  });
  tracekitLine(panel, data.legend, 'dim');
  if (data.databases.length) {
    tracekitLine(panel, 'Locations from ' + data.databases.join('; '), 'dim');
  }
}
"""


def _no_locations(trace: Trace) -> str:
    """Why the map has no located hop."""
    return GEO_OFF if trace.settings.get("no_geo") else NO_LOCATIONS
