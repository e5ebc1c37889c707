"""Locations and autonomous systems of each hop's addresses, from MaxMind DB files.

Reads City databases (GeoLite2/GeoIP2 City, DB-IP City Lite) and ASN databases (GeoLite2
ASN, DB-IP ASN Lite) with geoip2. Where the files are found, in this order:

1. ``--geoip-db FILE`` / ``--asn-db FILE``;
2. the environment variables ``TRACEKIT_GEOIP_DB`` / ``TRACEKIT_ASN_DB``;
3. the places ``geoipupdate`` and distributions use: ``/usr/share/GeoIP``,
   ``/var/lib/GeoIP``, ``/usr/local/share/GeoIP``;
4. tracekit's own data directory (``$XDG_DATA_HOME/tracekit``, by default
   ``~/.local/share/tracekit``), where ``tracekit geoip download`` puts them.

Without a database the trace runs as usual, without locations. Addresses a database does not
know (private ones, usually) get no annotation but stay in the trace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracekit import hookimpl
from tracekit.errors import BadInput
from tracekit.model import Hop, Trace

SYSTEM_DIRS = (Path("/usr/share/GeoIP"), Path("/var/lib/GeoIP"), Path("/usr/local/share/GeoIP"))
CITY_NAMES = ("GeoIP2-City.mmdb", "GeoLite2-City.mmdb", "dbip-city-lite.mmdb")
ASN_NAMES = ("GeoIP2-ISP.mmdb", "GeoLite2-ASN.mmdb", "dbip-asn-lite.mmdb")
ENV = {"city": "TRACEKIT_GEOIP_DB", "asn": "TRACEKIT_ASN_DB"}
#: The settings (command-line options) that name each kind of database.
SETTING = {"city": "geoip_db", "asn": "asn_db"}


def data_dir() -> Path:
    """tracekit's own data directory."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "tracekit"


def candidates(kind: str) -> list[Path]:
    """Where a database of ``kind`` (``"city"`` or ``"asn"``) is looked for, in order."""
    names = CITY_NAMES if kind == "city" else ASN_NAMES
    out = []
    for directory in (*SYSTEM_DIRS, data_dir()):
        out += [directory / name for name in names]
    return out


def find_database(kind: str, given: str | None = None) -> tuple[Path | None, str]:
    """The database file to use for ``kind`` and where it came from."""
    if given:
        return Path(given).expanduser(), "option"
    if os.environ.get(ENV[kind]):
        return Path(os.environ[ENV[kind]]).expanduser(), ENV[kind]
    for path in candidates(kind):
        if path.is_file():
            return path, "found"
    return None, "none"


def open_database(path: Path, kind: str) -> Any:
    """Open ``path`` with geoip2, checking that it is a ``kind`` database; one-line errors."""
    import geoip2.database
    import maxminddb.errors

    try:
        reader = geoip2.database.Reader(str(path))
    except FileNotFoundError:
        raise BadInput(f"GeoIP database {path} does not exist") from None
    except (OSError, ValueError, maxminddb.errors.InvalidDatabaseError) as exc:
        raise BadInput(f"{path} is not a MaxMind DB (mmdb) file: {exc}") from None
    import geoip2.errors

    try:  # geoip2 knows which lookups a database type allows
        reader.asn("192.0.2.1") if kind == "asn" else reader.city("192.0.2.1")
    except TypeError:
        database_type = reader.metadata().database_type
        reader.close()
        wanted = "an ASN" if kind == "asn" else "a City"
        raise BadInput(f"{path} is a {database_type} database, not {wanted} database") from None
    except (geoip2.errors.AddressNotFoundError, ValueError):
        pass
    return reader


@dataclass
class GeoIp:
    """Looks addresses up in the open City and ASN databases, once per address."""

    city: Any = None
    asn: Any = None
    _cache: dict[str, dict[str, Any]] = field(default_factory=dict)

    def annotations(self, address: str) -> dict[str, Any]:
        if address not in self._cache:
            self._cache[address] = {**self._location(address), **self._asn(address)}
        return self._cache[address]

    def _location(self, address: str) -> dict[str, Any]:
        if self.city is None:
            return {}
        import geoip2.errors

        try:
            found = self.city.city(address)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return {}
        if found.location.latitude is None or found.location.longitude is None:
            return {}
        return {
            "location": {
                "city": found.city.name,
                "country": found.country.name,
                "country_code": found.country.iso_code,
                "latitude": found.location.latitude,
                "longitude": found.location.longitude,
                "accuracy_radius_km": found.location.accuracy_radius,
            }
        }

    def _asn(self, address: str) -> dict[str, Any]:
        if self.asn is None:
            return {}
        import geoip2.errors

        try:
            found = self.asn.asn(address)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return {}
        if found.autonomous_system_number is None:
            return {}
        return {
            "asn": {
                "number": found.autonomous_system_number,
                "organization": found.autonomous_system_organization,
            }
        }

    def close(self) -> None:
        for reader in (self.city, self.asn):
            if reader is not None:
                reader.close()


#: The open databases of the trace being set up and run (one trace per process at a time).
_state: dict[str, GeoIp] = {}


@hookimpl
def tracekit_configure(settings: dict[str, Any]) -> None:
    _state.pop("current", GeoIp()).close()
    if settings.get("geo") is False:
        return
    readers = {}
    for kind in ("city", "asn"):
        path, _ = find_database(kind, settings.get(SETTING[kind]))
        readers[kind] = open_database(path, kind) if path is not None else None
    _state["current"] = GeoIp(readers["city"], readers["asn"])


def _describe(reader: Any) -> dict[str, Any] | None:
    if reader is None:
        return None
    metadata = reader.metadata()
    return {
        "type": metadata.database_type,
        "description": metadata.description.get("en", ""),
        "built": metadata.build_epoch,
    }


@hookimpl
def tracekit_trace_started(trace: Trace) -> None:
    geoip = _state.get("current")
    if geoip is None:
        return
    trace.annotations["geoip"] = {"city": _describe(geoip.city), "asn": _describe(geoip.asn)}
    if trace.source is not None and geoip.annotations(trace.source):
        trace.annotations["source"] = geoip.annotations(trace.source)


@hookimpl
def tracekit_enrich_hop(trace: Trace, hop: Hop) -> None:
    geoip = _state.get("current")
    if geoip is None:
        return
    for host in hop.hosts.values():
        host.annotations.update(geoip.annotations(host.address))


@hookimpl
def tracekit_trace_finished(trace: Trace) -> None:
    geoip = _state.pop("current", None)
    if geoip is not None:
        geoip.close()
