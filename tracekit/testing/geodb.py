"""Small City and ASN databases (MaxMind DB format) that place a lab's addresses in real
cities, for tests and for ``tracekit demo``. Writing them needs ``mmdb-writer`` (the ``test``
extra); reading them needs only geoip2.

    python -m tracekit.testing.geodb DIRECTORY   # the demo's databases
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tracekit.testing.netlab import Lab


@dataclass(frozen=True)
class Place:
    """Where a node is, and who runs it."""

    city: str
    country: str
    country_code: str
    latitude: float
    longitude: float
    asn: int
    organization: str
    accuracy_radius: int = 20


#: Where the default lab's nodes are: a route from Lisbon to Warsaw.
PLACES = {
    "client": Place("Lisbon", "Portugal", "PT", 38.72, -9.14, 64500, "Tracekit Test Access"),
    "r1": Place("Madrid", "Spain", "ES", 40.42, -3.70, 64500, "Tracekit Test Access"),
    "r2": Place("Paris", "France", "FR", 48.86, 2.35, 64501, "Tracekit Test Transit"),
    "r3": Place("Frankfurt am Main", "Germany", "DE", 50.11, 8.68, 64501, "Tracekit Test Transit"),
    "r4": Place("Prague", "Czechia", "CZ", 50.08, 14.44, 64501, "Tracekit Test Transit"),
    "r5": Place("Vienna", "Austria", "AT", 48.21, 16.37, 64501, "Tracekit Test Transit"),
    "server": Place("Warsaw", "Poland", "PL", 52.23, 21.01, 64502, "Tracekit Test Hosting"),
}


#: The database types of the test databases. They say that these are no one's real data, and
#: what geoip2 needs to read them ("City"; "GeoLite2-ASN", as DB-IP's ASN files say too).
TEST_TYPES = ("Tracekit-Test-City", "Tracekit-Test-ASN (compat=GeoLite2-ASN)")
#: The database types of DB-IP's free City Lite and ASN Lite files, for tests that stand in
#: for them.
DBIP_TYPES = ("DBIP-City-Lite", "DBIP-ASN-Lite (compat=GeoLite2-ASN)")


def write_databases(
    lab: Lab,
    directory: Path,
    places: dict[str, Place] | None = None,
    types: tuple[str, str] = TEST_TYPES,
) -> tuple[Path, Path]:
    """Write ``city.mmdb`` and ``asn.mmdb`` for every address of ``lab``'s nodes that has a
    place (``places``, by node name; :data:`PLACES` by default), with the database
    ``types`` (City, ASN). Returns both paths."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    places = PLACES if places is None else places
    city = MMDBWriter(6, types[0], ["en"], "tracekit test places", ipv4_compatible=True)
    asn = MMDBWriter(6, types[1], ["en"], "tracekit test networks", ipv4_compatible=True)
    for node in lab.nodes:
        place = places.get(node)
        if place is None:
            continue
        addresses = IPSet(
            link.address(node, version) for link in lab.links_of(node) for version in (4, 6)
        )
        city.insert_network(
            addresses,
            {
                "city": {"names": {"en": place.city}},
                "country": {"iso_code": place.country_code, "names": {"en": place.country}},
                "location": {
                    "latitude": place.latitude,
                    "longitude": place.longitude,
                    "accuracy_radius": place.accuracy_radius,
                },
            },
        )
        asn.insert_network(
            addresses,
            {
                "autonomous_system_number": place.asn,
                "autonomous_system_organization": place.organization,
            },
        )
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "city.mmdb", directory / "asn.mmdb"
    city.to_db_file(str(paths[0]))
    asn.to_db_file(str(paths[1]))
    return paths


if __name__ == "__main__":
    # The demo network is the default chain of three routers; its addresses do not depend on
    # the namespaces' names.
    for path in write_databases(Lab(routers=3), Path(sys.argv[1])):
        print(path)
