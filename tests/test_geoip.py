"""Locations and ASNs from GeoIP databases, on the namespace network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tracekit.testing import Lab
from tracekit.testing.geodb import PLACES

pytestmark = pytest.mark.netns


def trace(lab: Lab, *args: str, **kwargs: Any) -> tuple[int, dict[str, Any], str]:
    process = lab.tracekit(lab.address("server"), "-n", "--format", "json", *args, **kwargs)
    return process.returncode, json.loads(process.stdout or "null"), process.stderr


def test_hops_carry_location_and_asn(
    tracekit_lab: Lab, tracekit_geodb: tuple[Path, Path], trace_schema: dict[str, Any]
) -> None:
    city, asn = tracekit_geodb
    code, report, _ = trace(tracekit_lab, "--geoip-db", str(city), "--asn-db", str(asn))
    assert code == 0
    jsonschema.validate(report, trace_schema, format_checker=jsonschema.FormatChecker())
    nodes = ["r1", None, "r3", "server"]  # r2 is silent: no host, nothing to locate
    for hop, node in zip(report["hops"], nodes, strict=True):
        if node is None:
            assert hop["hosts"] == []
            continue
        place = PLACES[node]
        (host,) = hop["hosts"]
        assert host["location"] == {
            "city": place.city,
            "country": place.country,
            "country_code": place.country_code,
            "latitude": place.latitude,
            "longitude": place.longitude,
            "accuracy_radius_km": place.accuracy_radius,
        }
        assert host["asn"] == {"number": place.asn, "organization": place.organization}


def test_text_shows_asn_and_a_short_location(
    tracekit_lab: Lab, tracekit_geodb: tuple[Path, Path]
) -> None:
    city, asn = tracekit_geodb
    args = [tracekit_lab.address("server"), "--geoip-db", str(city), "--asn-db", str(asn)]
    lines = tracekit_lab.tracekit(*args).stdout.splitlines()
    assert lines[1].startswith(" 1  r1.tracekit.test (10.0.1.2) [AS64500 Madrid, ES]  ")
    assert lines[3].startswith(" 3  r3.tracekit.test (10.0.3.2) [AS64501 Frankfurt am Main, DE]")
    classic = tracekit_lab.tracekit(*args, "--no-geo", "-n").stdout.splitlines()
    assert classic[1].startswith(" 1  10.0.1.2  ") and "[" not in "".join(classic)


def test_databases_from_the_environment(
    tracekit_lab: Lab, tracekit_geodb: tuple[Path, Path]
) -> None:
    import os

    city, asn = tracekit_geodb
    env = {**os.environ, "TRACEKIT_GEOIP_DB": str(city), "TRACEKIT_ASN_DB": str(asn)}
    _, report, _ = trace(tracekit_lab, env=env)
    assert report["hops"][0]["hosts"][0]["location"]["city"] == "Madrid"


def test_without_databases_the_trace_runs_unannotated(tracekit_lab: Lab, tmp_path: Path) -> None:
    import os

    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    env.pop("TRACEKIT_GEOIP_DB", None)
    env.pop("TRACEKIT_ASN_DB", None)
    code, report, stderr = trace(tracekit_lab, env=env)
    assert code == 0 and stderr == ""
    assert all(
        set(h) == {"address", "name", "stats"} for hop in report["hops"] for h in hop["hosts"]
    )


def test_private_addresses_unknown_to_the_database_stay_listed(
    tracekit_lab: Lab, tmp_path: Path
) -> None:
    from tracekit.testing.geodb import write_databases

    city, asn = write_databases(tracekit_lab, tmp_path, {"server": PLACES["server"]})
    _, report, _ = trace(tracekit_lab, "--geoip-db", str(city), "--asn-db", str(asn))
    hosts = [hop["hosts"] for hop in report["hops"]]
    assert [h[0]["address"] if h else None for h in hosts] == tracekit_lab.expected_hops()
    assert "location" not in hosts[0][0] and "asn" not in hosts[0][0]
    assert hosts[-1][0]["location"]["city"] == "Warsaw"


@pytest.mark.parametrize("which", ["--geoip-db", "--asn-db"])
def test_a_corrupt_database_is_a_one_line_error_naming_the_file(
    tracekit_lab: Lab, tmp_path: Path, which: str
) -> None:
    bad = tmp_path / "broken.mmdb"
    bad.write_bytes(b"\x00not a database\x00" * 64)
    code, _, stderr = trace(tracekit_lab, which, str(bad))
    assert code == 2
    assert len(stderr.splitlines()) == 1 and str(bad) in stderr and "mmdb" in stderr


def test_a_database_of_the_wrong_kind_is_refused(
    tracekit_lab: Lab, tracekit_geodb: tuple[Path, Path]
) -> None:
    _, asn = tracekit_geodb
    code, _, stderr = trace(tracekit_lab, "--geoip-db", str(asn))
    assert code == 2
    assert stderr.strip() == (
        f"tracekit: {asn} is a Tracekit-Test-ASN (compat=GeoLite2-ASN) database, "
        "not a City database"
    )


def test_every_trace_of_a_run_gets_locations_and_names(
    tracekit_lab: Lab, tracekit_geodb: tuple[Path, Path]
) -> None:
    """Several targets in one process: each trace opens its own databases and resolver
    (``trace.stash``), so the second trace is enriched as the first is."""
    city, asn = tracekit_geodb
    targets = [tracekit_lab.address("server"), tracekit_lab.address("r3")]
    process = tracekit_lab.tracekit(
        *targets, "--format", "json", "--geoip-db", str(city), "--asn-db", str(asn)
    )
    assert process.returncode == 0, process.stderr
    by_address = {r["address"]: r for r in json.loads(process.stdout)}
    assert sorted(by_address) == sorted(targets)  # in the order they finished
    for target, last in zip(targets, ["server", "r3"], strict=True):
        report = by_address[target]
        host = report["hops"][-1]["hosts"][0]
        assert host["location"]["city"] == PLACES[last].city
        assert host["asn"]["number"] == PLACES[last].asn
        assert report["hops"][0]["hosts"][0]["name"] == "r1.tracekit.test"
        assert report["annotations"]["source"]["location"]["city"] == PLACES["client"].city
