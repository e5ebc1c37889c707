"""Vendor the map's offline assets into tracekit/outputs/mapassets/.

    npm pack leaflet@1.9.4 world-atlas@2.0.2      # from the npm registry
    python scripts/build-map-assets.py leaflet-1.9.4.tgz world-atlas-2.0.2.tgz

Copies Leaflet's JS and CSS, and turns world-atlas's land-110m TopoJSON (Natural Earth,
public domain) into GeoJSON with coordinates rounded to 0.1 degree, to keep the HTML small.
TopoJSON rings are spherical; Leaflet draws planar ones, so rings that cross the
antimeridian (Russia, Fiji, Antarctica) are cut there, else they streak across the map.

    python scripts/build-map-assets.py --fix-antimeridian   # cut the rings of the vendored file
"""

from __future__ import annotations

import itertools
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "tracekit" / "outputs" / "mapassets"


def member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        extracted = tar.extractfile(f"package/{name}")
        assert extracted is not None
        return extracted.read()


def topojson_to_geojson(topology: dict[str, Any], name: str) -> dict[str, Any]:
    sx, sy = topology["transform"]["scale"]
    tx, ty = topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append([round(x * sx + tx, 1), round(y * sy + ty, 1)])
        arcs.append(points)

    def ring(indexes: list[int]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in indexes:
            points = arcs[i] if i >= 0 else arcs[~i][::-1]
            out.extend(points if not out else points[1:])
        return out

    polygons = []
    for geometry in topology["objects"][name]["geometries"]:
        shapes = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for shape in shapes:
            rings = [ring(r) for r in shape]
            if len({tuple(p) for p in rings[0]}) >= 3:
                polygons.append(rings)
    return {
        "type": "Feature",
        "properties": {"name": name},
        "geometry": {"type": "MultiPolygon", "coordinates": split_at_antimeridian(polygons)},
    }


Ring = list[list[float]]


def _clip(ring: Ring, limit: float, keep_below: bool) -> Ring:
    """Sutherland-Hodgman: the part of ``ring`` on one side of the meridian ``limit``."""

    def inside(p: list[float]) -> bool:
        return p[0] <= limit if keep_below else p[0] >= limit

    out: Ring = []
    for a, b in zip(ring, ring[1:] + ring[:1], strict=True):
        if inside(b):
            if not inside(a):
                out.append(_crossing(a, b, limit))
            out.append(b)
        elif inside(a):
            out.append(_crossing(a, b, limit))
    return out


def _crossing(a: list[float], b: list[float], lon: float) -> list[float]:
    t = (lon - a[0]) / (b[0] - a[0])
    return [lon, round(a[1] + t * (b[1] - a[1]), 1)]


def split_at_antimeridian(polygons: list[list[Ring]]) -> list[list[Ring]]:
    """Cut polygons whose outer ring jumps across +-180 degrees into planar pieces."""
    out: list[list[Ring]] = []
    for rings in polygons:
        outer = rings[0]
        if all(abs(a[0] - b[0]) <= 180 for a, b in itertools.pairwise(outer)):
            out.append(rings)
            continue
        unwrapped = [list(outer[0])]
        for point in outer[1:]:
            lon = point[0]
            while lon - unwrapped[-1][0] > 180:
                lon -= 360
            while lon - unwrapped[-1][0] < -180:
                lon += 360
            unwrapped.append([lon, point[1]])
        if abs(unwrapped[-1][0] - unwrapped[0][0]) > 180:  # goes round a pole: close over it
            pole = -90.0 if sum(p[1] for p in unwrapped) < 0 else 90.0
            unwrapped += [[unwrapped[-1][0], pole], [unwrapped[0][0], pole]]
        for shift in (-360, 0, 360):
            piece = [[round(p[0] + shift, 1), p[1]] for p in unwrapped]
            piece = _clip(_clip(piece, 180, keep_below=True), -180, keep_below=False)
            if len({tuple(p) for p in piece}) >= 3:
                out.append([[*piece, piece[0]]])  # holes of such rings: none in land-110m
    return out


def main(leaflet: Path, atlas: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "leaflet.js").write_bytes(member(leaflet, "dist/leaflet.js"))
    (OUT / "leaflet.css").write_bytes(member(leaflet, "dist/leaflet.css"))
    land = topojson_to_geojson(json.loads(member(atlas, "land-110m.json")), "land")
    (OUT / "land-110m.geojson").write_text(json.dumps(land, separators=(",", ":")))
    notices = [
        "# Third-party assets in this directory\n",
        "## leaflet.js, leaflet.css: Leaflet 1.9.4 (BSD 2-Clause)\n",
        member(leaflet, "LICENSE").decode(),
        "\n## land-110m.geojson: world-atlas 2.0.2 (ISC), from Natural Earth (public domain)\n",
        member(atlas, "LICENSE").decode(),
        "\nNatural Earth data is in the public domain: https://www.naturalearthdata.com/\n",
    ]
    (OUT / "LICENSES.md").write_text("\n".join(notices))
    for path in sorted(OUT.iterdir()):
        print(f"{path.stat().st_size:8d}  {path.name}")


def fix_antimeridian() -> None:
    path = OUT / "land-110m.geojson"
    land = json.loads(path.read_text())
    geometry = land["geometry"]
    geometry["coordinates"] = split_at_antimeridian(geometry["coordinates"])
    path.write_text(json.dumps(land, separators=(",", ":")))


if __name__ == "__main__":
    if sys.argv[1:] == ["--fix-antimeridian"]:
        fix_antimeridian()
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]))
