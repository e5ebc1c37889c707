"""Vendor the map's offline assets into tracekit/outputs/mapassets/.

    npm pack leaflet@1.9.4 world-atlas@2.0.2      # from the npm registry
    python scripts/build-map-assets.py leaflet-1.9.4.tgz world-atlas-2.0.2.tgz

Copies Leaflet's JS and CSS, and turns world-atlas's land-110m TopoJSON (Natural Earth,
public domain) into GeoJSON with coordinates rounded to 0.1 degree, to keep the HTML small.
"""

from __future__ import annotations

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
        "geometry": {"type": "MultiPolygon", "coordinates": polygons},
    }


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


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
