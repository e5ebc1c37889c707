"""An HTML map of the route (``--out FILE.html``), drawn with folium and Leaflet.

The page works offline: Leaflet is inlined, and a world outline (Natural Earth land) lies under
the route, so it reads as a map even when no tiles can be fetched. Text from the network
(reverse DNS names, ASN organisations, database strings) never reaches the page as markup:
it travels as JSON data, escaped for a ``<script>`` block, and is put into the page with
``textContent`` only. Nor is it ever read as a template: folium (Jinja) renders the page
first, and the data is put into it after.

In continuous mode (``-c``) each hop is coloured by its forwarding loss (:func:`loss_colour`)
and the popups and the side panel show its statistics (Loss%, Snt, Lim%, round trips,
jitter), and those of each responder where a hop has several.

Several targets (``tracekit A B C --out map.html``) make one page with a route each, framed
as every output's list of traces is (:class:`tracekit.outputs.Output`): ``list_start`` is
the page up to the routes (Leaflet, styles, the drawing code, the title box and panel), each
trace's record is a ``<script type="application/json" class="tracekit-route">`` block of its
:func:`map_data`, and ``list_end`` is the script that reads every block and draws them all
(:func:`several_page`), so the traces may come in any order. Each route has a colour of its
own; an address on several routes (a shared router) is one marker, whose popup lists the
routes and TTLs it is on; a target that failed is listed in the panel as failed.

A multipath trace (``--mda``) is drawn as its graph: a marker for every interface of every
hop, and a line for every link found between two interfaces (:func:`link_segments`), instead
of one line through the hops.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterator
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
MULTIPATH_LEGEND = (
    "Multipath (--mda): a marker for every interface of a hop, a line for every link found."
)
SEVERAL_LEGEND = (
    "Numbers: TTL. Each route has its colour (above), its line and its markers; a white "
    "marker is on several routes (its popup lists them). Open circle: start; ringed: "
    "destination. Solid line: a measured link; dashed grey: hops between left out (silent, "
    "or without a location). Multipath traces (--mda): a marker for every interface, a line "
    "for every link found."
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


def _hops_and_points(trace: Trace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every hop as the panel lists it, and every located address of every hop (each
    interface of a multipath hop) as a marker shows it, in TTL order."""
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
    return hops, points


def _origin(trace: Trace) -> dict[str, Any] | None:
    """The start marker: ``--origin``, or where the database places our own address."""
    if trace.settings.get("origin"):
        lat, lon = trace.settings["origin"]
        return {"lat": lat, "lon": lon, "label": f"start: {trace.source} (--origin)"}
    if trace.source_host is not None and trace.source_host.location is not None:
        location = trace.source_host.location
        return {
            "lat": location.latitude,
            "lon": location.longitude,
            "label": printable(f"start: {trace.source} ({_place(location)})"),
        }
    return None


def _segment(a: tuple[int, float, float], b: tuple[int, float, float]) -> dict[str, Any]:
    """The line from stop ``a`` to stop ``b`` (``(ttl, lat, lon)``; the start is TTL 0):
    ``bridged`` when hops between them (silent, or without a location) are left out."""
    return {"from": [a[1], a[2]], "to": [b[1], b[2]], "bridged": b[0] - a[0] > 1}


def chain_segments(origin: dict[str, Any] | None, points: list[dict[str, Any]]) -> list[Any]:
    """A route without multipath discovery: one line from the start through the located
    addresses in TTL order (several at one TTL in the order they first answered)."""
    stops = ([(0, origin["lat"], origin["lon"])] if origin else []) + [
        (p["ttl"], p["lat"], p["lon"]) for p in points
    ]
    return [_segment(a, b) for a, b in itertools.pairwise(stops)]


#: An interface of a multipath trace: ``(ttl, address)``; ``None`` is the start.
_Node = tuple[int, str] | None


def _successors(trace: Trace) -> dict[_Node, list[tuple[int, str]]]:
    """Who follows whom in a multipath trace: its links; the start before every interface of
    the first hop that answered; and, over silent hops (where no link can be seen), every
    interface of the hop before to every interface of the next that answered."""
    after: dict[_Node, list[tuple[int, str]]] = {}
    for link in trace.links or []:
        after.setdefault((link.ttl, link.source), []).append((link.ttl + 1, link.target))
    answered = [hop for hop in trace.hops if hop.hosts]
    if answered:
        after[None] = [(answered[0].ttl, address) for address in answered[0].hosts]
    for hop, following in itertools.pairwise(answered):
        if following.ttl > hop.ttl + 1:
            nexts = [(following.ttl, address) for address in following.hosts]
            for address in hop.hosts:
                after.setdefault((hop.ttl, address), []).extend(nexts)
    return after


def _reached(
    start: _Node, after: dict[_Node, list[tuple[int, str]]], located: set[tuple[int, str]]
) -> Iterator[tuple[int, str]]:
    """The located interfaces that follow ``start``, passing through unlocated ones."""
    todo, seen = list(after.get(start, [])), set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        if node in located:
            yield node
        else:
            todo.extend(after.get(node, []))


def link_segments(trace: Trace, origin: dict[str, Any] | None, points: list[Any]) -> list[Any]:
    """A multipath trace: a line for every link between two located interfaces, and from
    the start to the first hop's; a dashed bridge where unlocated interfaces or silent hops
    lie between two located ones."""
    where: dict[_Node, tuple[int, float, float]] = {
        (p["ttl"], p["address"]): (p["ttl"], p["lat"], p["lon"]) for p in points
    }
    if origin is not None:
        where[None] = (0, origin["lat"], origin["lon"])
    after = _successors(trace)
    located = {node for node in where if node is not None}
    return [
        _segment(stop, where[node])
        for start, stop in where.items()
        for node in sorted(_reached(start, after, located))
    ]


def _status(trace: Trace) -> str:
    if trace.end == "error" and trace.address is None:
        return "failed"
    return {"reached": "reached", "unreachable": "unreachable"}.get(trace.end or "", "not reached")


def _subtitle(trace: Trace) -> str:
    started = trace.started.strftime("%Y-%m-%d %H:%M:%S UTC") if trace.started else ""
    subtitle = f"{trace.probe.method} probes, {started}, {_status(trace)}"
    if trace.links is not None:
        subtitle += f", multipath: {len(trace.links)} links"
    if trace.continuous:
        rounds = "1 round" if trace.rounds == 1 else f"{trace.rounds} rounds"
        subtitle += f", {rounds} every {trace.interval:g} s"
    return subtitle


def _legend(trace: Trace) -> str:
    legend = LOSS_LEGEND if trace.continuous else RTT_LEGEND
    return legend + (" " + MULTIPATH_LEGEND if trace.links is not None else "")


def map_data(trace: Trace) -> dict[str, Any]:
    """Everything the page shows of one trace, as plain data."""
    hops, points = _hops_and_points(trace)
    origin = _origin(trace)
    if trace.links is not None:
        segments = link_segments(trace, origin, points)
    else:
        segments = chain_segments(origin, points)
    databases = [d for d in (trace.annotations.get("geoip") or {}).values() if d]
    return {
        "title": f"tracekit: {printable(trace.target)} ({trace.address})",
        "subtitle": _subtitle(trace),
        "target": printable(trace.target),
        "address": trace.address,
        "method": trace.probe.method,
        "started": trace.started.isoformat() if trace.started else None,
        #: ``reached``, ``unreachable``, ``not reached``, or ``failed`` (before probing).
        "status": _status(trace),
        "error": _text(trace.error),
        "continuous": trace.continuous,
        "legend": _legend(trace),
        "hops": hops,
        "points": points,
        "origin": origin,
        #: Multipath discovery: how many links were found; ``None`` for other traces.
        "links": len(trace.links) if trace.links is not None else None,
        #: The lines between the start and the located hops: ``bridged`` when hops between
        #: its ends (silent, or without a location) are left out.
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


#: Where the records of several traces go in the several-trace page (:func:`several_page`).
ROUTES_MARK = "<!-- tracekit: the routes -->"
#: Where the drawing goes in the page's script, once folium has rendered it (:func:`_page`).
DRAWING_MARK = "/* tracekit: the drawing */"


def _page(drawing: Callable[[str], str], routes: bool = False) -> str:
    """The map page as one self-contained HTML document: Leaflet, the styles and the
    drawing code, the title box and the panel, and a map that ``drawing(name)`` (JavaScript;
    ``name`` is the map's variable) draws once the page is parsed. ``routes``: with
    :data:`ROUTES_MARK` in the body, where records of traces may go."""
    import folium
    from branca.element import Element, MacroElement
    from jinja2 import Template

    page = folium.Map(location=[30, 10], zoom_start=2, tiles=None, control_scale=True)
    page.default_js = []  # Leaflet is inlined below; nothing comes from a CDN
    page.default_css = []
    root: Any = page.get_root()  # a branca Figure
    header = root.header
    assets = _assets()
    header.add_child(Element(f"<style>{(assets / 'leaflet.css').read_text()}</style>"))
    header.add_child(Element(f"<script>{(assets / 'leaflet.js').read_text()}</script>"))
    header.add_child(Element(f"<style>{STYLE}</style>"))
    skeleton = '<div id="tracekit-title"></div><div id="tracekit-panel"></div>'
    root.html.add_child(Element(skeleton + (f"\n{ROUTES_MARK}\n" if routes else "")))
    script = MacroElement()  # type: ignore[no-untyped-call]
    script._name = "TracekitRoute"
    script._template = Template(
        "{% macro script(this, kwargs) %}" + DRAWING_MARK + "{% endmacro %}"
    )
    page.add_child(script)
    header.add_child(Element(f"<script>{SCRIPT}</script>"))
    html: str = root.render()
    # The drawing, with the data, only now: branca reads what a script macro gives as a
    # template again, and text from the network ("{{", "{#") is never Jinja's to read.
    return html.replace(DRAWING_MARK, drawing(page.get_name()), 1)


def _assets() -> Any:
    from importlib.resources import files  # here: tracekit --help loads this module

    return files("tracekit.outputs") / "mapassets"


def _land() -> str:
    """The world's land (Natural Earth), GeoJSON."""
    land: str = (_assets() / "land-110m.geojson").read_text()
    return land


def render(trace: Trace) -> str:
    """The map page of one trace, as one self-contained HTML document."""
    data, credits = script_json(map_data(trace)), script_json(_credits(trace))
    tiles = script_json({"url": TILES, "credit": TILES_CREDIT})

    def drawing(name: str) -> str:
        return (
            f"var tracekitData = {data};\nvar tracekitLand = {_land()};\n"
            f"var tracekitCredits = {credits};\nvar tracekitTiles = {tiles};\n"
            f"tracekitDraw({name}, tracekitData, tracekitLand, tracekitCredits, tracekitTiles);\n"
        )

    return _page(drawing)


@functools.cache
def several_page() -> tuple[str, str]:
    """The page of several traces, around their records (:func:`route_record`): what
    comes before them (the head, the title box and the panel) and after them (the script
    that reads every record and draws them all, then the end of the page)."""
    tiles = script_json({"url": TILES, "credit": TILES_CREDIT})
    legend = script_json(SEVERAL_LEGEND)
    html = _page(
        lambda name: f"tracekitDrawSeveral({name}, {_land()}, {tiles}, {legend});\n",
        routes=True,
    )
    start, end = html.split(ROUTES_MARK)
    return start, end


def route_record(trace: Trace) -> str:
    """One trace of several: its :func:`map_data` and credits, in a JSON script block."""
    data = script_json({**map_data(trace), "credits": _credits(trace)})
    return f'<script type="application/json" class="tracekit-route">{data}</script>\n'


class _PagePart:
    """``list_start`` or ``list_end`` of :class:`MapOutput`: a part of :func:`several_page`,
    made when first read (the module loads for ``tracekit --help``, folium only for a
    map)."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __get__(self, instance: object, owner: type | None = None) -> str:
        return several_page()[self.index]


class MapOutput(Output):
    """Writes the map when the trace is finished; several traces (several targets) as one
    page with a route each."""

    several_traces = True
    list_start = _PagePart(0)
    list_end = _PagePart(1)

    def finish(self, trace: Trace) -> None:
        several = self.target.several
        self.target.stream.write(route_record(trace) if several else render(trace))
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
.tracekit-marker.tracekit-own { color: #fff; }
.tracekit-marker.tracekit-shared { background: #fff; color: #000; }
.tracekit-swatch { display: inline-block; width: 10px; height: 10px; margin-right: 5px;
  border-radius: 2px; vertical-align: baseline; box-sizing: border-box; }
.tracekit-swatch.tracekit-none { border: 1px solid #777; }
#tracekit-panel .route { padding: 4px 0; border-bottom: 1px solid #ddd; }
#tracekit-panel .route .failed { color: #a40000; }
#tracekit-panel summary { cursor: pointer; color: #333; }
#tracekit-panel details .hop { padding-left: 4px; }
.leaflet-container { background: #cfe3f2; }
"""

SCRIPT = r"""
// Route colours, dark enough for white text on a marker (contrast 4.5:1 or more).
var TRACEKIT_COLOURS = ['#1f4fbf', '#b3400b', '#1a7a3c', '#8e2c8e', '#a8123e', '#006d77',
  '#6b4c1e', '#4b5a00'];
function tracekitColour(index) {
  if (index < TRACEKIT_COLOURS.length) { return TRACEKIT_COLOURS[index]; }
  return 'hsl(' + Math.round(index * 137.508) % 360 + ', 65%, 26%)';  // golden angle
}
function tracekitLine(parent, text, className) {
  var div = document.createElement('div');
  div.textContent = text;
  if (className) { div.className = className; }
  parent.appendChild(div);
  return div;
}
function tracekitSwatch(parent, colour) {  // no colour: a route with nothing to draw
  var swatch = document.createElement('span');
  swatch.className = 'tracekit-swatch' + (colour ? '' : ' tracekit-none');
  if (colour) { swatch.style.background = colour; }
  parent.appendChild(swatch);
}
function tracekitRtts(rtts) {
  return 'RTT ' + rtts.map(function (r) { return r.toFixed(3); }).join(' / ') + ' ms';
}
function tracekitDescribe(host, noRtts) {
  var lines = [];
  var named = host.name && host.name !== host.address;
  lines.push(host.address + (named ? ' (' + host.name + ')' : ''));
  if (host.asn) { lines.push(host.asn + (host.org ? ' ' + host.org : '')); }
  if (host.place) { lines.push(host.place); }
  if (!noRtts && host.rtts && host.rtts.length) { lines.push(tracekitRtts(host.rtts)); }
  return lines.concat(host.stats || []);
}
function tracekitUnique(values) {
  return values.filter(function (value, i) { return values.indexOf(value) === i; });
}
// One address on the map, with every route and TTL it was seen on (a shared router).
function tracekitPlaces(routes) {
  var byAddress = Object.create(null), places = [];
  routes.forEach(function (route) {
    route.data.points.forEach(function (point) {
      var place = byAddress[point.address];
      if (!place) {
        place = byAddress[point.address] = {point: point, visits: []};
        places.push(place);
      }
      place.visits.push({route: route, point: point});
    });
  });
  return places;
}
function tracekitVisit(div, visit) {  // several routes: a popup's line for one of them
  var point = visit.point;
  var line = tracekitLine(div, '', 'visit');
  tracekitSwatch(line, visit.route.colour);
  var text = 'TTL ' + point.ttl + (point.role === 'destination' ? ': destination ' : ' to ');
  text += visit.route.name;
  if (point.rtts && point.rtts.length) { text += ', ' + tracekitRtts(point.rtts); }
  line.appendChild(document.createTextNode(text));
}
function tracekitPopup(place, several) {
  var div = document.createElement('div');
  div.className = 'tracekit-popup';
  var visits = place.visits, many = visits.length > 1;
  if (several) {
    visits.forEach(function (visit) { tracekitVisit(div, visit); });
  } else {
    var destination = visits.some(function (v) { return v.point.role === 'destination'; });
    var ttls = visits.map(function (v) { return v.point.ttl; }).join(', ');
    tracekitLine(div, (destination ? 'destination, ' : '') + 'TTL ' + ttls);
  }
  tracekitDescribe(place.point, several || many).forEach(function (line) {
    tracekitLine(div, line);
  });
  visits.forEach(function (visit) {
    var point = visit.point;
    if (!several && many && point.rtts && point.rtts.length) {
      tracekitLine(div, 'TTL ' + point.ttl + ': ' + tracekitRtts(point.rtts));
    }
    (point.hop || []).forEach(function (line) { tracekitLine(div, line, 'stats'); });
  });
  return div;
}
// ``offset``: pixels from its place, where several addresses share one (the same city).
function tracekitMarker(map, place, several, offset) {
  var visits = place.visits, point = place.point;
  var destination = visits.some(function (v) { return v.point.role === 'destination'; });
  var ttls = tracekitUnique(visits.map(function (v) { return v.point.ttl; })).join('/');
  var routes = tracekitUnique(visits.map(function (v) { return v.route; }));
  var tip = document.createElement('div');
  tracekitLine(tip, 'TTL ' + ttls + ': ' + point.address);
  var label = document.createElement('div');  // the TTL, on the marker
  label.className = 'tracekit-marker ' + (destination ? 'tracekit-destination' : 'tracekit-hop');
  if (!several) {
    label.style.background = point.colour;
  } else if (routes.length > 1) {  // a shared router
    label.className += ' tracekit-shared';
  } else {
    label.className += ' tracekit-own';
    label.style.background = routes[0].colour;
  }
  label.textContent = ttls;
  var size = (destination ? 28 : 22) + (ttls.length > 2 ? 6 : 0);
  var icon = L.divIcon({html: label, className: 'tracekit-icon', iconSize: [size, size],
    iconAnchor: [size / 2 - offset[0], size / 2 - offset[1]], popupAnchor: offset,
    tooltipAnchor: offset});
  L.marker([point.lat, point.lon], {icon: icon, keyboard: false, riseOnHover: true})
    .bindPopup(tracekitPopup(place, several)).bindTooltip(tip).addTo(map);
  return [point.lat, point.lon];
}
function tracekitOrigins(map, routes) {  // one start marker per place
  var byPlace = Object.create(null), origins = [];
  routes.forEach(function (route) {
    var origin = route.data.origin;
    if (!origin) { return; }
    var key = origin.lat + ',' + origin.lon;
    if (!byPlace[key]) { byPlace[key] = {lat: origin.lat, lon: origin.lon, labels: []}; }
    if (byPlace[key].labels.indexOf(origin.label) < 0) { byPlace[key].labels.push(origin.label); }
  });
  Object.keys(byPlace).forEach(function (key) {
    var origin = byPlace[key], start = document.createElement('div');
    origin.labels.forEach(function (label) { tracekitLine(start, label); });
    L.circleMarker([origin.lat, origin.lon], {radius: 9, color: '#1f4fbf',
      weight: 3, fillColor: '#ffffff', fillOpacity: 1, className: 'tracekit-origin'})
      .bindPopup(start).bindTooltip(start.cloneNode(true)).addTo(map);
    origins.push([origin.lat, origin.lon]);
  });
  return origins;
}
function tracekitKey(segment) {  // the same line, whichever way
  return [segment.from.join(','), segment.to.join(',')].sort().join(' ');
}
// Solid lines first, each route in its colour: where several routes share a line, the
// earlier ones are drawn wider underneath, so every colour shows. Then the dashed bridges.
function tracekitSegments(map, routes) {
  var on = Object.create(null);  // the routes on each solid line
  routes.forEach(function (route) {
    route.data.segments.forEach(function (segment) {
      var key = tracekitKey(segment);
      on[key] = on[key] || [];
      if (!segment.bridged && on[key].indexOf(route.index) < 0) { on[key].push(route.index); }
    });
  });
  [false, true].forEach(function (bridged) {
    routes.forEach(function (route) {
      route.data.segments.forEach(function (segment) {
        if (segment.bridged !== bridged) { return; }
        var sharing = on[tracekitKey(segment)], routeClass = ' tracekit-route-' + route.index;
        var under = sharing.length - 1 - sharing.indexOf(route.index);
        L.polyline([segment.from, segment.to], bridged
          ? {color: '#555555', weight: 2, opacity: 0.9, dashArray: '4 6',
            className: 'tracekit-bridge' + routeClass}
          : {color: route.colour, weight: 3 + 3 * under, opacity: 0.9,
            className: 'tracekit-link' + routeClass}).addTo(map);
      });
    });
  });
}
function tracekitRoutes(map, routes, several) {  // under the markers: the lines
  var bounds = tracekitOrigins(map, routes);
  tracekitSegments(map, routes);
  var places = tracekitPlaces(routes), together = Object.create(null);
  places.forEach(function (place) {
    var key = place.point.lat + ',' + place.point.lon;
    (together[key] = together[key] || []).push(place);
  });
  places.forEach(function (place) {  // those at one place around it, on a small circle
    var group = together[place.point.lat + ',' + place.point.lon], n = group.length;
    var angle = 2 * Math.PI * group.indexOf(place) / n - Math.PI / 2;
    var radius = n > 1 ? 10 + 3 * n : 0;
    var offset = [Math.round(radius * Math.cos(angle)), Math.round(radius * Math.sin(angle))];
    bounds.push(tracekitMarker(map, place, several, offset));
  });
  if (bounds.length) {  // at once, no animation: the page shows its final view when it loads
    map.fitBounds(L.latLngBounds(bounds).pad(0.2), {maxZoom: 6, animate: false,
      paddingTopLeft: [20, 70], paddingBottomRight: [360, 20]});
  }
}
function tracekitBase(map, land, credits, tiles) {
  map.createPane('land');
  map.getPane('land').style.zIndex = 150;  // under the tiles: seen when there are none
  L.geoJSON(land, {pane: 'land', interactive: false,
    style: {color: '#8a9a8a', weight: 0.6, fillColor: '#eef0e6', fillOpacity: 1}}).addTo(map);
  tracekitUnique(credits).forEach(function (credit) {
    map.attributionControl.addAttribution(credit);
  });
  // OpenStreetMap is credited once one of its tiles is shown: not on a page seen offline.
  var tileLayer = L.tileLayer(tiles.url, {maxZoom: 19});
  tileLayer.once('tileload', function () {
    map.attributionControl.addAttribution(tiles.credit);
  });
  tileLayer.addTo(map);
}
function tracekitTitle(title, subtitle, message) {
  document.title = title;
  var box = document.getElementById('tracekit-title');
  tracekitLine(box, title);
  tracekitLine(box, subtitle, 'sub');
  if (message) { tracekitLine(box, message, 'note'); }
}
function tracekitHops(parent, hops) {
  hops.forEach(function (hop) {
    var row = tracekitLine(parent, '', 'hop');
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
}
function tracekitFooter(panel, legend, databases) {
  tracekitLine(panel, legend, 'dim');
  databases = tracekitUnique(databases);
  if (databases.length) {
    tracekitLine(panel, 'Locations from ' + databases.join('; '), 'dim');
  }
}
function tracekitRoute(data, index, colour) {
  var named = data.address && data.address !== data.target;
  return {data: data, index: index, colour: colour,
    name: data.target + (named ? ' (' + data.address + ')' : '')};
}
function tracekitDraw(map, data, land, credits, tiles) {  // one trace
  tracekitTitle(data.title, data.subtitle, data.message);
  tracekitBase(map, land, credits, tiles);
  tracekitRoutes(map, [tracekitRoute(data, 0, tracekitColour(0))], false);
  var panel = document.getElementById('tracekit-panel');
  tracekitLine(panel, 'Hops', 'sub');
  tracekitHops(panel, data.hops);
  tracekitFooter(panel, data.legend, data.databases);
}
function tracekitStatus(data) {
  if (data.status === 'failed') { return 'failed: ' + data.error; }
  var text = data.status + ', ' + data.hops.length + (data.hops.length === 1 ? ' hop' : ' hops');
  if (data.links !== null) { text += ', multipath: ' + data.links + ' links'; }
  if (data.hops.length && !data.points.length) { text += ', none located'; }
  return text;
}
function tracekitRouteRow(panel, route) {
  var row = tracekitLine(panel, '', 'route');
  tracekitSwatch(row, route.colour);
  row.appendChild(document.createTextNode(route.name));
  var failed = route.data.status === 'failed';
  tracekitLine(row, tracekitStatus(route.data), failed ? 'failed' : 'dim');
  if (route.data.hops.length) {
    var details = document.createElement('details');
    var summary = document.createElement('summary');
    summary.textContent = 'Hops';
    details.appendChild(summary);
    tracekitHops(details, route.data.hops);
    row.appendChild(details);
  }
}
function tracekitCount(routes, status) {
  return routes.filter(function (r) { return r.data.status === status; }).length;
}
function tracekitSeveralTitle(routes) {
  var n = routes.length;
  var parts = ['reached', 'unreachable', 'not reached', 'failed'].map(function (status) {
    var count = tracekitCount(routes, status);
    return count ? count + ' ' + status : '';
  }).filter(Boolean);
  var traced = routes.filter(function (r) { return r.data.status !== 'failed'; });
  var methods = tracekitUnique(traced.map(function (r) { return r.data.method + ' probes'; }));
  var located = routes.some(function (r) { return r.data.points.length; });
  var message = null;  // why nothing is on the map
  if (!n) { message = 'No target was traced.'; }
  else if (!traced.length) { message = 'No target could be traced.'; }
  else if (!located) { message = traced[0].data.message; }
  tracekitTitle('tracekit: ' + n + (n === 1 ? ' target' : ' targets'),
    methods.concat(parts).join(', '), message);
}
function tracekitDrawSeveral(map, land, tiles, legend) {  // every trace of the page
  var blocks = document.querySelectorAll('script.tracekit-route');
  var records = Array.prototype.map.call(blocks, function (block) {
    return JSON.parse(block.textContent);
  });
  records.sort(function (a, b) {  // they were written in the order they finished
    return (a.started || '').localeCompare(b.started || '') || a.target.localeCompare(b.target);
  });
  var colours = 0;  // a colour for each route traced; none for those that failed
  var routes = records.map(function (data, index) {
    var failed = data.status === 'failed';
    return tracekitRoute(data, index, failed ? null : tracekitColour(colours++));
  });
  tracekitSeveralTitle(routes);
  var credits = [], databases = [];
  routes.forEach(function (r) {
    credits = credits.concat(r.data.credits);
    databases = databases.concat(r.data.databases);
  });
  tracekitBase(map, land, credits, tiles);
  tracekitRoutes(map, routes, true);
  var panel = document.getElementById('tracekit-panel');
  tracekitLine(panel, 'Routes', 'sub');
  routes.forEach(function (route) { tracekitRouteRow(panel, route); });
  tracekitFooter(panel, legend, databases);
}
"""


def _no_locations(trace: Trace) -> str:
    """Why the map has no located hop."""
    return GEO_OFF if trace.settings.get("no_geo") else NO_LOCATIONS
