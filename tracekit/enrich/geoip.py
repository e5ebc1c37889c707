"""Locations and autonomous systems of each hop's addresses, from MaxMind DB files.

Reads City databases (GeoLite2/GeoIP2 City, DB-IP City Lite) and ASN databases (GeoLite2
ASN, DB-IP ASN Lite) with geoip2. Where the files are found, in this order:

1. ``--geoip-db FILE`` / ``--asn-db FILE``;
2. the environment variables ``TRACEKIT_GEOIP_DB`` / ``TRACEKIT_ASN_DB``;
3. the places ``geoipupdate`` and distributions use: ``/usr/share/GeoIP``,
   ``/var/lib/GeoIP``, ``/usr/local/share/GeoIP``;
4. tracekit's own data directory (``$XDG_DATA_HOME/tracekit``, by default
   ``~/.local/share/tracekit``), where ``tracekit geoip download`` puts them.

A place that cannot be read (a home directory closed to this user, as under ``sudo -E`` or
``su`` without ``-``) is skipped, as if it had no file. Without a database the trace runs as
usual, without locations. Addresses a database does not
know (private ones, usually) get no annotation but stay in the trace.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracekit import hookimpl
from tracekit.errors import BadInput

if TYPE_CHECKING:
    import click

    from tracekit.hookspecs import AddOption
    from tracekit.model import AutonomousSystem, Credit, Hop, Host, Location, Trace

# The model's dataclasses are imported where they are made: tracekit --help loads this module.
from tracekit.stash import StashKey

SYSTEM_DIRS = (Path("/usr/share/GeoIP"), Path("/var/lib/GeoIP"), Path("/usr/local/share/GeoIP"))
#: Where ``tracekit geoip download --system`` installs: a standard directory, searched by
#: every user's traces (root's under sudo too), that no distribution package writes to.
SHARED_DIR = SYSTEM_DIRS[2]
CITY_NAMES = ("GeoIP2-City.mmdb", "GeoLite2-City.mmdb", "dbip-city-lite.mmdb")
ASN_NAMES = ("GeoIP2-ISP.mmdb", "GeoLite2-ASN.mmdb", "dbip-asn-lite.mmdb")
ENV = {"city": "TRACEKIT_GEOIP_DB", "asn": "TRACEKIT_ASN_DB"}
#: The settings (command-line options) that name each kind of database.
SETTING = {"city": "geoip_db", "asn": "asn_db"}


def data_dir() -> Path:
    """tracekit's own data directory."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "tracekit"


#: The options of ``tracekit trace`` that name each kind of database.
OPTION = {"city": "--geoip-db", "asn": "--asn-db"}


@dataclass(frozen=True)
class Place:
    """One place where a database is looked for."""

    #: ``"option"``, ``"environment"``, ``"standard"`` (a distribution's directory) or
    #: ``"data"`` (tracekit's data directory).
    source: str
    #: The option or environment variable, or the directory.
    label: str
    #: The file; ``None`` for an option or environment variable that is not set.
    path: Path | None

    @property
    def explicit(self) -> bool:
        """Named by the user: used whether or not the file exists (and then an error)."""
        return self.source in ("option", "environment")


def candidates(kind: str) -> list[Path]:
    """The files a database of ``kind`` (``"city"`` or ``"asn"``) is looked for in, in order,
    when neither the option nor the environment names one."""
    names = CITY_NAMES if kind == "city" else ASN_NAMES
    out = []
    for directory in (*SYSTEM_DIRS, data_dir()):
        out += [directory / name for name in names]
    return out


def search_places(kind: str, given: str | None = None) -> list[Place]:
    """Every place where a ``kind`` database is looked for, in discovery order."""
    env = os.environ.get(ENV[kind])
    places = [
        Place("option", OPTION[kind], Path(given).expanduser() if given else None),
        Place("environment", ENV[kind], Path(env).expanduser() if env else None),
    ]
    data = data_dir()
    for path in candidates(kind):
        source = "data" if path.parent == data else "standard"
        places.append(Place(source, str(path.parent), path))
    return places


def look(path: Path) -> str | None:
    """Whether ``path`` is a file: ``"file"``, ``None`` if there is none, else why it cannot
    be known (``"Permission denied"``: a directory on the way cannot be searched)."""
    try:
        return "file" if path.is_file() else None
    except OSError as exc:  # is_file() answers False for a missing file, but raises on EACCES
        return exc.strerror or type(exc).__name__


def chosen_place(places: list[Place]) -> Place | None:
    """The place whose file is used: the first one set explicitly, or the first file that
    exists (places that cannot be read are skipped)."""
    for place in places:
        if place.path is not None and (place.explicit or look(place.path) == "file"):
            return place
    return None


def find_database(kind: str, given: str | None = None) -> Path | None:
    """The database file to use for ``kind``, if any (``given``: the trace's option)."""
    place = chosen_place(search_places(kind, given))
    return None if place is None else place.path


def open_database(path: Path, kind: str) -> Any:
    """Open ``path`` with geoip2, checking that it is a ``kind`` database; one-line errors."""
    import geoip2.database
    import maxminddb.errors

    try:
        reader = geoip2.database.Reader(str(path))
    except FileNotFoundError:
        raise BadInput(f"GeoIP database {path} does not exist") from None
    except PermissionError:
        raise BadInput(f"cannot read GeoIP database {path}: Permission denied") from None
    except (OSError, ValueError, maxminddb.errors.InvalidDatabaseError) as exc:
        raise BadInput(f"{path} is not a MaxMind DB (mmdb) file: {exc}") from None
    import geoip2.errors

    try:  # geoip2 knows which lookups a database type allows
        asn_lookup(reader)("192.0.2.1") if kind == "asn" else reader.city("192.0.2.1")
    except TypeError:
        database_type = reader.metadata().database_type
        reader.close()
        wanted = "an ASN" if kind == "asn" else "a City"
        raise BadInput(f"{path} is a {database_type} database, not {wanted} database") from None
    except (geoip2.errors.AddressNotFoundError, ValueError):
        pass
    return reader


def asn_lookup(reader: Any) -> Any:
    """The lookup that gives autonomous systems: ``isp`` in a GeoIP2 ISP database (geoip2
    refuses ``asn`` there), ``asn`` in the others."""
    return reader.isp if "ISP" in reader.metadata().database_type else reader.asn


def database_status(kind: str) -> dict[str, Any]:
    """What ``tracekit geoip status`` says about the ``kind`` database a trace would use:
    ``path`` and ``source`` of the file (``None`` if there is none), its ``type``,
    ``built`` (ISO date), ``size`` in bytes, ``error`` (one line: why a trace could not use
    it, else ``None``), and every place ``searched``, in order (the option is left out: it
    is given to each trace), with ``exists`` and ``error`` (why the place cannot be read, or
    ``None``)."""
    from datetime import datetime, timezone

    places = search_places(kind)[1:]
    used = chosen_place(places)
    found = [None if place.path is None else look(place.path) for place in places]
    status: dict[str, Any] = {
        "path": None,
        "source": None,
        "type": None,
        "built": None,
        "size": None,
        "error": None,
        "searched": [
            {
                "source": place.source,
                "label": place.label,
                "path": None if place.path is None else str(place.path),
                "exists": seen == "file",
                "error": None if seen in (None, "file") else seen,
            }
            for place, seen in zip(places, found, strict=True)
        ],
    }
    if used is None or used.path is None:
        return status
    status.update(path=str(used.path), source=used.source)
    try:
        reader = open_database(used.path, kind)
    except BadInput as exc:
        status["error"] = str(exc)
    else:
        metadata = reader.metadata()
        built = datetime.fromtimestamp(metadata.build_epoch, timezone.utc)
        status.update(type=metadata.database_type, built=built.date().isoformat())
        reader.close()
    if look(used.path) == "file":
        status["size"] = used.path.stat().st_size
    return status


@dataclass
class GeoIp:
    """Looks addresses up in the open City and ASN databases, once per address."""

    city: Any = None
    asn: Any = None
    #: The file name of each open database, by kind.
    files: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, tuple[Location | None, AutonomousSystem | None]] = field(default_factory=dict)

    def lookup(self, address: str) -> tuple[Location | None, AutonomousSystem | None]:
        """Where ``address`` is and its autonomous system, as far as the databases know."""
        if address not in self._cache:
            self._cache[address] = (self._location(address), self._asn(address))
        return self._cache[address]

    def annotate(self, host: Host) -> None:
        """Set ``host.location`` and ``host.asn`` where they are known (and not set)."""
        location, asn = self.lookup(host.address)
        host.location = host.location or location
        host.asn = host.asn or asn

    def _location(self, address: str) -> Location | None:
        if self.city is None:
            return None
        import geoip2.errors

        from tracekit.model import Location

        try:
            found = self.city.city(address)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None
        if found.location.latitude is None or found.location.longitude is None:
            return None
        return Location(
            city=found.city.name,
            country=found.country.name,
            country_code=found.country.iso_code,
            latitude=found.location.latitude,
            longitude=found.location.longitude,
            accuracy_radius_km=found.location.accuracy_radius,
        )

    def _asn(self, address: str) -> AutonomousSystem | None:
        if self.asn is None:
            return None
        import geoip2.errors

        from tracekit.model import AutonomousSystem

        try:
            found = asn_lookup(self.asn)(address)
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None
        if found.autonomous_system_number is None:
            return None
        return AutonomousSystem(
            number=found.autonomous_system_number,
            organization=found.autonomous_system_organization,
        )

    def close(self) -> None:
        for reader in (self.city, self.asn):
            if reader is not None:
                reader.close()
        self.city = self.asn = None


#: The run's settings key for the database files found (``{"city": Path | None, ...}``).
FOUND = "geoip_files"
#: Each trace's open databases, in ``trace.stash``.
DATABASES = StashKey[GeoIp]()


def open_databases(settings: dict[str, Any]) -> GeoIp | None:
    """The databases the settings ask for, open; ``None`` with ``--no-geo``."""
    if settings.get("no_geo"):
        return None
    geoip = GeoIp()
    found = settings.get(FOUND)
    try:
        for kind in ("city", "asn"):
            path = found[kind] if found else find_database(kind, settings.get(SETTING[kind]))
            if path is not None:
                setattr(geoip, kind, open_database(path, kind))
                geoip.files[kind] = path.name
    except BaseException:
        geoip.close()
        raise
    return geoip


@hookimpl
def tracekit_add_options(add: AddOption) -> None:
    add(
        "--geoip-db",
        type=click_path(),
        metavar="FILE",
        help="City database (mmdb) for locations; default: see 'tracekit geoip status'.",
    )
    add(
        "--asn-db",
        type=click_path(),
        metavar="FILE",
        help="ASN database (mmdb) for autonomous systems.",
    )
    add("--no-geo", is_flag=True, help="No locations or ASNs (classic output).")  # fmt: skip


def click_path() -> Any:
    import click

    return click.Path(dir_okay=False)


@hookimpl
def tracekit_register_commands(cli: click.Group) -> None:
    from tracekit.cli_geoip import geoip

    cli.add_command(geoip)


@hookimpl
def tracekit_configure(settings: dict[str, Any]) -> None:
    geoip = open_databases(settings)  # a database that cannot be read: refused up front
    if geoip is not None:
        geoip.close()
    # Found once for the run: its traces (several targets) need not search again.
    settings[FOUND] = {
        kind: find_database(kind, settings.get(SETTING[kind])) for kind in ("city", "asn")
    }


#: The credits the databases' vendors ask for (:class:`~tracekit.model.Credit`'s fields):
#: DB-IP's licence (CC BY 4.0) asks a page that shows their data to say so.
CREDITS = {
    "dbip": {
        "text": "IP Geolocation by DB-IP",
        "url": "https://db-ip.com",
        "licence": "CC BY 4.0",
        "licence_url": "https://creativecommons.org/licenses/by/4.0/",
    },
    "maxmind": {"text": "GeoLite2 data created by MaxMind", "url": "https://www.maxmind.com"},
}


def credit(vendor: str) -> Credit:
    """The credit ``vendor`` (a key of :data:`CREDITS`) asks for."""
    from tracekit.model import Credit

    return Credit(**CREDITS[vendor])


def is_dbip(database_type: str | None, file: str | None) -> bool:
    """Whether a database comes from DB-IP: its type (``DBIP-City-Lite``...) or its file
    name (``dbip-city-lite-2025-01.mmdb``...) says so."""
    names = f"{database_type or ''} {file or ''}".lower().replace("-", "")
    return "dbip" in names


def credits(databases: Iterable[dict[str, Any]]) -> list[Credit]:
    """The attribution the databases (as in ``trace.annotations["geoip"]``) ask for: DB-IP's
    known by type or file name, MaxMind's by type."""
    databases = list(databases)
    found = []
    if any(is_dbip(d.get("type"), d.get("file")) for d in databases):
        found.append(credit("dbip"))
    if any(str(d.get("type")).startswith(("GeoLite2", "GeoIP2")) for d in databases):
        found.append(credit("maxmind"))
    return found


def _describe(reader: Any, file: str | None) -> dict[str, Any] | None:
    if reader is None:
        return None
    metadata = reader.metadata()
    return {
        "type": metadata.database_type,
        "description": metadata.description.get("en", ""),
        "built": metadata.build_epoch,
        "file": file,
    }


@hookimpl
def tracekit_trace_started(trace: Trace) -> None:
    geoip = open_databases(trace.settings)  # each trace its own readers, closed at its end
    if geoip is None:
        return
    trace.stash[DATABASES] = geoip
    described = {
        kind: _describe(reader, geoip.files.get(kind))
        for kind, reader in (("city", geoip.city), ("asn", geoip.asn))
    }
    trace.annotations["geoip"] = described
    for needed in credits(d for d in described.values() if d):
        if needed not in trace.credits:
            trace.credits.append(needed)
    if trace.source is not None:
        from tracekit.model import Host

        source = trace.source_host or Host(trace.source)
        geoip.annotate(source)
        if source.location or source.asn:
            trace.source_host = source


@hookimpl
def tracekit_enrich_hop(trace: Trace, hop: Hop) -> None:
    geoip = trace.stash.get(DATABASES)
    if geoip is None:
        return
    for host in hop.hosts.values():
        geoip.annotate(host)


@hookimpl
def tracekit_trace_finished(trace: Trace) -> None:
    geoip = trace.stash.pop(DATABASES)
    if geoip is not None:
        geoip.close()
