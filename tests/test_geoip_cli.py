"""``tracekit geoip status`` and ``tracekit geoip download``, against a DB-IP stand-in: an HTTP
server on 127.0.0.1 in the test, serving small databases with DB-IP's database types (nothing
here touches the internet)."""

from __future__ import annotations

import gzip
import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tracekit.testing import Lab
from tracekit.testing.geodb import DBIP_TYPES, PLACES, write_databases

ATTRIBUTION = "IP geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
NAMES = {"city": "dbip-city-lite", "asn": "dbip-asn-lite"}
STANDARD_DIRS = ("/usr/share/GeoIP", "/var/lib/GeoIP", "/usr/local/share/GeoIP")


def this_month() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m")


def last_month() -> str:
    first = datetime.now(timezone.utc).replace(day=1)
    return (first - timedelta(days=1)).strftime("%Y-%m")


class DbipStandIn(ThreadingHTTPServer):
    """Serves ``files`` (URL path: body, or an HTTP status to answer with); 404 otherwise.
    Paths in ``stall`` get half their body, then the connection hangs until ``release``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes | int] = {}
        self.requests: list[str] = []
        self.stall: set[str] = set()
        self.stalled = threading.Event()
        self.release = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/free"

    def publish(self, kind: str, month: str, body: bytes | int) -> str:
        path = f"/free/{NAMES[kind]}-{month}.mmdb.gz"
        self.files[path] = body
        return path


class Handler(BaseHTTPRequestHandler):
    server: DbipStandIn

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path, 404)
        if isinstance(body, int):
            self.send_error(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.server.stall:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.server.stalled.set()
            self.server.release.wait(30)
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """City and ASN databases with DB-IP's types, placing the default lab's addresses (the
    lab need not exist to know them)."""
    directory = tmp_path_factory.mktemp("dbip")
    city, asn = write_databases(Lab(routers=3), directory, types=DBIP_TYPES)
    return {"city": city.read_bytes(), "asn": asn.read_bytes()}


@pytest.fixture
def dbip() -> Iterator[DbipStandIn]:
    server = DbipStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_standard_databases() -> None:
    """Databases in the standard directories come before tracekit's own: these tests need
    a machine without them."""
    for directory in STANDARD_DIRS:
        if Path(directory).is_dir() and any(Path(directory).glob("*.mmdb")):
            pytest.skip(f"{directory} holds GeoIP databases, which traces would use first")


def environment(tmp_path: Path, dbip: DbipStandIn | None = None) -> dict[str, str]:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "no_proxy": "*"}
    for name in ("TRACEKIT_GEOIP_DB", "TRACEKIT_ASN_DB", "TRACEKIT_DBIP_URL"):
        env.pop(name, None)
    if dbip is not None:
        env["TRACEKIT_DBIP_URL"] = dbip.base
    return env


def tracekit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tracekit", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tracekit"


def built_date(database: bytes, tmp_path: Path) -> str:
    import maxminddb

    path = tmp_path / "built.mmdb"
    path.write_bytes(database)
    with maxminddb.open_database(str(path)) as reader:
        epoch = reader.metadata().build_epoch
    return datetime.fromtimestamp(epoch, timezone.utc).date().isoformat()


def one_error_line(stderr: str) -> str:
    """The error line, checking that there is exactly one and that it comes last."""
    errors = [line for line in stderr.splitlines() if line.startswith("tracekit: ")]
    assert len(errors) == 1 and stderr.splitlines()[-1] == errors[0], stderr
    assert "Traceback" not in stderr
    return errors[0]


# -- download ---------------------------------------------------------------------------------


def test_download_installs_both_databases_where_traces_find_them(
    dbip: DbipStandIn, databases: dict[str, bytes], tmp_path: Path, no_standard_databases: None
) -> None:
    month = this_month()
    for kind in NAMES:
        dbip.publish(kind, month, gzip.compress(databases[kind]))
    env = environment(tmp_path, dbip)

    process = tracekit("geoip", "download", env=env)

    assert process.returncode == 0, process.stderr
    installed = data_dir(tmp_path)
    city, asn = installed / "dbip-city-lite.mmdb", installed / "dbip-asn-lite.mmdb"
    assert city.read_bytes() == databases["city"] and asn.read_bytes() == databases["asn"]
    assert sorted(p.name for p in installed.iterdir()) == sorted([city.name, asn.name])
    lines = process.stdout.splitlines()
    assert lines[0].startswith(f"installed {city}: DBIP-City-Lite, built ")
    assert lines[1].startswith(f"installed {asn}: DBIP-ASN-Lite (compat=GeoLite2-ASN), built ")
    assert lines[-1] == ATTRIBUTION
    assert dbip.requests == [f"/free/{NAMES[kind]}-{month}.mmdb.gz" for kind in NAMES]
    # not a terminal: one line when each download starts and one when it ends
    url = f"{dbip.base}/dbip-city-lite-{month}.mmdb.gz"
    assert "\r" not in process.stderr
    assert re.match(
        rf"downloading {re.escape(url)} \(\d+\.\d kB\)$", process.stderr.splitlines()[0]
    )
    assert process.stderr.splitlines()[1].startswith(f"downloaded dbip-city-lite-{month}.mmdb.gz:")

    status = tracekit("geoip", "status", "--format", "json", env=env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    for kind, path in (("city", city), ("asn", asn)):
        assert report[kind]["path"] == str(path) and report[kind]["source"] == "data"
        assert report[kind]["error"] is None
        assert report[kind]["size"] == len(databases[kind])
        assert report[kind]["built"] == built_date(databases[kind], tmp_path)
        assert report[kind]["searched"][-1] == {
            "source": "data",
            "label": str(installed),
            "path": str(path),
            "exists": True,
            "error": None,
        }
    assert report["city"]["type"] == "DBIP-City-Lite"
    assert report["asn"]["type"] == "DBIP-ASN-Lite (compat=GeoLite2-ASN)"

    text = tracekit("geoip", "status", env=env)
    assert text.returncode == 0 and text.stderr == ""
    assert f"City database: {city} (tracekit's data directory)" in text.stdout
    assert "  type: DBIP-City-Lite" in text.stdout
    assert re.search(rf"^    {re.escape(str(asn))} +used$", text.stdout, re.MULTILINE)


def test_download_falls_back_to_last_month_when_this_one_is_not_out(
    dbip: DbipStandIn, databases: dict[str, bytes], tmp_path: Path
) -> None:
    for kind in NAMES:
        dbip.publish(kind, last_month(), gzip.compress(databases[kind]))

    process = tracekit("geoip", "download", env=environment(tmp_path, dbip))

    assert process.returncode == 0, process.stderr
    assert dbip.requests == [
        f"/free/{NAMES[kind]}-{month}.mmdb.gz"
        for kind in NAMES
        for month in (this_month(), last_month())
    ]
    for kind in NAMES:
        assert (data_dir(tmp_path) / f"{NAMES[kind]}.mmdb").read_bytes() == databases[kind]
    url = f"{dbip.base}/dbip-city-lite-{this_month()}.mmdb.gz"
    assert f"{url} is not published yet (HTTP 404); trying {last_month()}" in process.stderr


def test_month_and_dir_options(
    dbip: DbipStandIn, databases: dict[str, bytes], tmp_path: Path, no_standard_databases: None
) -> None:
    for kind in NAMES:
        dbip.publish(kind, "2024-02", gzip.compress(databases[kind]))
    elsewhere = tmp_path / "elsewhere"
    env = environment(tmp_path, dbip)

    process = tracekit("geoip", "download", "--month", "2024-02", "--dir", str(elsewhere), env=env)

    assert process.returncode == 0, process.stderr
    assert dbip.requests == [f"/free/{NAMES[kind]}-2024-02.mmdb.gz" for kind in NAMES]
    assert (elsewhere / "dbip-city-lite.mmdb").read_bytes() == databases["city"]
    # traces do not look there: the user is told how to use the files
    warnings = [line for line in process.stderr.splitlines() if "warning" in line]
    assert warnings[0] == (
        f"tracekit: warning: traces use no file, not {elsewhere}/dbip-city-lite.mmdb "
        f"(see 'tracekit geoip status'); pass --geoip-db {elsewhere}/dbip-city-lite.mmdb to use it"
    )
    assert not data_dir(tmp_path).exists()


def test_system_installs_where_every_user_finds_them(
    dbip: DbipStandIn, databases: dict[str, bytes], tmp_path: Path, no_standard_databases: None
) -> None:
    from tracekit.testing.pytest_plugin import require

    require(os.geteuid() == 0 and shutil.which("unshare") is not None, "needs root and unshare")
    for kind in NAMES:
        dbip.publish(kind, this_month(), gzip.compress(databases[kind]))
    # In a mount namespace of its own, over an empty /usr/local/share: the machine's own
    # directory is never written.
    script = (
        'mount -t tmpfs tracekit-test /usr/local/share && "$0" -m tracekit geoip download '
        '--system && echo --- && "$0" -m tracekit geoip status --format json'
    )
    process = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, sys.executable],
        capture_output=True, text=True, env=environment(tmp_path, dbip), timeout=60,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    download, status = process.stdout.split("---\n")
    assert download.startswith("installed /usr/local/share/GeoIP/dbip-city-lite.mmdb: ")
    assert "warning" not in process.stderr
    report = json.loads(status)
    for kind in NAMES:
        assert report[kind]["path"] == f"/usr/local/share/GeoIP/{NAMES[kind]}.mmdb"
        assert report[kind]["source"] == "standard"
    assert not data_dir(tmp_path).exists()


def test_system_and_dir_together_are_refused(tmp_path: Path) -> None:
    process = tracekit("geoip", "download", "--system", "--dir", str(tmp_path),
                       env=environment(tmp_path))  # fmt: skip
    assert process.returncode == 2
    assert one_error_line(process.stderr) == (
        "tracekit: --system and --dir cannot be given together "
        "(see 'tracekit geoip download --help')"
    )


@pytest.mark.parametrize("month", ["2024-13", "24-01", "2024-1", "May"])
def test_a_bad_month_is_refused(month: str, tmp_path: Path) -> None:
    process = tracekit("geoip", "download", "--month", month, env=environment(tmp_path))
    assert process.returncode == 2
    assert one_error_line(process.stderr) == (
        f"tracekit: Invalid value for '--month': {month!r} is not a month as YYYY-MM "
        "(see 'tracekit geoip download --help')"
    )


def test_nothing_published_is_a_network_failure(dbip: DbipStandIn, tmp_path: Path) -> None:
    process = tracekit("geoip", "download", env=environment(tmp_path, dbip))
    assert process.returncode == 3
    urls = [f"{dbip.base}/dbip-city-lite-{m}.mmdb.gz" for m in (this_month(), last_month())]
    assert one_error_line(process.stderr) == (
        f"tracekit: cannot download {urls[0]} or {urls[1]}: HTTP 404 Not Found"
    )
    assert not data_dir(tmp_path).exists()


def test_an_unreachable_server_or_a_server_error_is_a_network_failure(
    dbip: DbipStandIn, tmp_path: Path
) -> None:
    dbip.publish("city", this_month(), 500)
    process = tracekit("geoip", "download", env=environment(tmp_path, dbip))
    assert process.returncode == 3
    url = f"{dbip.base}/dbip-city-lite-{this_month()}.mmdb.gz"
    assert one_error_line(process.stderr) == (
        f"tracekit: cannot download {url}: HTTP 500 Internal Server Error"
    )

    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    env = {**environment(tmp_path), "TRACEKIT_DBIP_URL": f"http://127.0.0.1:{port}/free"}
    process = tracekit("geoip", "download", env=env)
    assert process.returncode == 3
    url = f"http://127.0.0.1:{port}/free/dbip-city-lite-{this_month()}.mmdb.gz"
    assert one_error_line(process.stderr) == (
        f"tracekit: cannot download {url}: [Errno 111] Connection refused"
    )
    assert not data_dir(tmp_path).exists()


def installed_before(tmp_path: Path, databases: dict[str, bytes]) -> Path:
    """A City database installed by an earlier download."""
    previous = data_dir(tmp_path) / "dbip-city-lite.mmdb"
    previous.parent.mkdir(parents=True)
    previous.write_bytes(databases["city"])
    return previous


@pytest.mark.parametrize(
    "served, reason",
    [
        ("not gzip", "not a gzip file"),
        ("not mmdb", "not a MaxMind DB (mmdb) file"),
        ("ASN database", "it is a DBIP-ASN-Lite (compat=GeoLite2-ASN) database, not a City"),
        ("truncated gzip", "the gzip data ends early"),
        ("damaged mmdb", "the database is damaged"),
    ],
)
def test_a_bad_download_leaves_the_previous_database_alone(
    dbip: DbipStandIn, databases: dict[str, bytes], tmp_path: Path, served: str, reason: str
) -> None:
    previous = installed_before(tmp_path, databases)
    city = databases["city"]
    body = {
        "not gzip": b"<html>Please log in</html>" * 50,
        "not mmdb": gzip.compress(b"not a database\n" * 1000),
        "ASN database": gzip.compress(databases["asn"]),
        "truncated gzip": gzip.compress(city)[: len(gzip.compress(city)) // 2],
        # the search tree points far outside the file; the metadata at the end is intact
        "damaged mmdb": gzip.compress(b"\xff" * (len(city) // 2) + city[len(city) // 2 :]),
    }[served]
    dbip.publish("city", this_month(), body)

    process = tracekit("geoip", "download", env=environment(tmp_path, dbip))

    assert process.returncode == 3
    url = f"{dbip.base}/dbip-city-lite-{this_month()}.mmdb.gz"
    line = one_error_line(process.stderr)
    assert line.startswith(f"tracekit: cannot install {url}: {reason}")
    assert ".part" not in line
    assert previous.read_bytes() == databases["city"]
    assert [p.name for p in previous.parent.iterdir()] == [previous.name]  # no temporary file


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_download_leaves_the_previous_database_alone(
    dbip: DbipStandIn, databases: dict[str, bytes], tmp_path: Path, signum: int, code: int
) -> None:
    previous = installed_before(tmp_path, databases)
    path = dbip.publish("city", this_month(), gzip.compress(databases["city"]) * 4)
    dbip.stall.add(path)
    command = [sys.executable, "-m", "tracekit", "geoip", "download"]
    env = environment(tmp_path, dbip)
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as process:
        assert dbip.stalled.wait(30), "the download never started"
        deadline = time.monotonic() + 10
        while not list(previous.parent.glob(".*.part")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(previous.parent.glob(".*.part")), "no temporary file while downloading"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    if signum == signal.SIGINT:
        assert one_error_line(stderr) == "tracekit: interrupted"
    assert previous.read_bytes() == databases["city"]
    assert [p.name for p in previous.parent.iterdir()] == [previous.name]


def test_progress_on_a_terminal_is_one_line_updated_in_place(
    dbip: DbipStandIn, databases: dict[str, bytes], tmp_path: Path
) -> None:
    for kind in NAMES:
        dbip.publish(kind, this_month(), gzip.compress(databases[kind]))
    main, terminal = pty.openpty()
    command = [sys.executable, "-m", "tracekit", "geoip", "download"]
    env = environment(tmp_path, dbip)
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=terminal) as process:
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            seen += chunk
    os.close(main)
    assert process.returncode == 0
    text = seen.decode()
    size = len(gzip.compress(databases["city"]))
    assert f"\rdbip-city-lite-{this_month()}.mmdb.gz: " in text
    assert re.search(rf"/ {size / 1000:.1f} kB \(100%\) *\r?\n", text), text
    assert "downloading" not in text  # the lines for logs are not written to a terminal


def test_without_a_month_this_month_then_the_one_before() -> None:
    from datetime import date

    from tracekit.dbip import months_to_try

    assert months_to_try(None, date(2025, 1, 3)) == ["2025-01", "2024-12"]
    assert months_to_try(None, date(2025, 10, 31)) == ["2025-10", "2025-09"]
    assert months_to_try("2023-07", date(2025, 10, 31)) == ["2023-07"]


def test_the_geoip_plugin_credits_db_ip_by_database_type_or_file_name() -> None:
    from tracekit.enrich.geoip import credit, credits, is_dbip

    assert is_dbip("DBIP-City-Lite", "city.mmdb")
    assert is_dbip("GeoIP2-City", "dbip-city-lite-2025-01.mmdb")
    assert is_dbip(None, "DB-IP city.mmdb")
    assert not is_dbip("GeoLite2-City", "GeoLite2-City.mmdb")
    assert not is_dbip(None, None)
    dbip = {"type": "DBIP-City-Lite", "file": "dbip-city-lite.mmdb"}
    assert credits([dbip, {**dbip, "type": "DBIP-ASN-Lite"}]) == [credit("dbip")]
    assert credits([{"type": "Tracekit-Test-City", "file": "city.mmdb"}]) == []


def test_the_map_shows_the_credits_of_the_trace_escaped() -> None:
    from tracekit.enrich.geoip import credit
    from tracekit.model import Credit
    from tracekit.outputs.map import credit_html

    assert credit_html(credit("dbip")) == (
        '<a href="https://db-ip.com">IP Geolocation by DB-IP</a> '
        '(<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>)'
    )
    odd = Credit(text="<b>x</b>", url="javascript:alert(1)", licence="L&L")
    assert credit_html(odd) == "&lt;b&gt;x&lt;/b&gt; (L&amp;L)"


# -- status -----------------------------------------------------------------------------------


def test_status_without_databases_says_what_to_do(
    tmp_path: Path, no_standard_databases: None
) -> None:
    process = tracekit("geoip", "status", env=environment(tmp_path))
    assert process.returncode == 1
    assert one_error_line(process.stderr) == (
        "tracekit: no City database found: run 'tracekit geoip download' (DB-IP, free) "
        "or give a trace --geoip-db FILE"
    )
    assert "City database: none found" in process.stdout
    assert "ASN database: none found" in process.stdout
    # every place searched, in order: the environment, then the standard directories, then
    # tracekit's own
    places = re.findall(r"^    (\S+)", process.stdout, re.MULTILINE)
    city = places[: len(places) // 2]
    assert city[0] == "TRACEKIT_GEOIP_DB"
    assert city[1] == "/usr/share/GeoIP/GeoIP2-City.mmdb"
    assert city[-1] == str(data_dir(tmp_path) / "dbip-city-lite.mmdb")

    report = json.loads(
        tracekit("geoip", "status", "--format", "json", env=environment(tmp_path)).stdout
    )
    assert report["city"]["path"] is None and report["asn"]["path"] is None
    assert [p["path"] for p in report["city"]["searched"]][1:] == city[1:]


def test_status_names_an_unusable_database(
    databases: dict[str, bytes], tmp_path: Path, no_standard_databases: None
) -> None:
    broken = data_dir(tmp_path) / "dbip-city-lite.mmdb"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x00not a database\x00" * 64)
    process = tracekit("geoip", "status", env=environment(tmp_path))
    assert process.returncode == 2
    line = one_error_line(process.stderr)
    assert line.startswith(f"tracekit: {broken} is not a MaxMind DB (mmdb) file")
    assert f"  unusable: {line.removeprefix('tracekit: ')}" in process.stdout


def test_status_names_a_database_of_the_wrong_kind_from_the_environment(
    databases: dict[str, bytes], tmp_path: Path
) -> None:
    asn = tmp_path / "asn.mmdb"
    asn.write_bytes(databases["asn"])
    env = {**environment(tmp_path), "TRACEKIT_GEOIP_DB": str(asn)}
    process = tracekit("geoip", "status", "--format", "json", env=env)
    assert process.returncode == 2
    error = f"{asn} is a DBIP-ASN-Lite (compat=GeoLite2-ASN) database, not a City database"
    assert one_error_line(process.stderr) == f"tracekit: {error}"
    report = json.loads(process.stdout)
    assert report["city"]["error"] == error and report["city"]["source"] == "environment"

    missing = tmp_path / "missing.mmdb"
    env["TRACEKIT_GEOIP_DB"] = str(missing)
    process = tracekit("geoip", "status", env=env)
    assert process.returncode == 2
    assert one_error_line(process.stderr) == f"tracekit: GeoIP database {missing} does not exist"
    assert f"TRACEKIT_GEOIP_DB={missing}" in process.stdout


def test_status_accepts_a_geoip2_isp_database_for_autonomous_systems(
    tmp_path: Path, no_standard_databases: None
) -> None:
    _, isp = write_databases(Lab(routers=3), tmp_path, types=(DBIP_TYPES[0], "GeoIP2-ISP"))
    env = {**environment(tmp_path), "TRACEKIT_ASN_DB": str(isp)}
    process = tracekit("geoip", "status", "--format", "json", env=env)
    assert process.returncode == 1  # no City database; the ISP one is fine
    report = json.loads(process.stdout)
    assert report["asn"]["error"] is None and report["asn"]["type"] == "GeoIP2-ISP"


# -- on the namespace network -----------------------------------------------------------------


@pytest.mark.netns
def test_a_trace_locates_its_hops_with_the_downloaded_databases(
    tracekit_lab: Lab,
    dbip: DbipStandIn,
    databases: dict[str, bytes],
    tmp_path: Path,
    no_standard_databases: None,
) -> None:
    for kind in NAMES:
        dbip.publish(kind, this_month(), gzip.compress(databases[kind]))
    env = environment(tmp_path, dbip)
    assert tracekit("geoip", "download", env=env).returncode == 0
    page, report_file = tmp_path / "map.html", tmp_path / "trace.json"

    process = tracekit_lab.tracekit(
        tracekit_lab.address("server"), "-n", "--out", str(page), "--out", str(report_file),
        env=env,
    )  # fmt: skip

    assert process.returncode == 0, process.stderr
    report = json.loads(report_file.read_text())
    assert report["annotations"]["geoip"]["city"]["type"] == "DBIP-City-Lite"
    assert report["annotations"]["geoip"]["city"]["file"] == "dbip-city-lite.mmdb"
    located = {
        host["address"]: (host["location"]["city"], host["asn"]["number"])
        for hop in report["hops"]
        for host in hop["hosts"]
    }
    assert located == {
        tracekit_lab.address(node): (PLACES[node].city, PLACES[node].asn)
        for node in ("r1", "r3", "server")  # r2 is silent
    }
    html = page.read_text()
    data = json.loads(re.search(r"var tracekitData = (.*);\n", html).group(1))  # type: ignore[union-attr]
    assert [p["place"] for p in data["points"]] == [
        "Madrid, Spain",
        "Frankfurt am Main, Germany",
        "Warsaw, Poland",
    ]
    assert data["message"] is None
    credits = json.loads(re.search(r"var tracekitCredits = (.*);\n", html).group(1))  # type: ignore[union-attr]
    assert len(credits) == 1
    assert 'href="https://db-ip.com"' in credits[0] and "IP Geolocation by DB-IP" in credits[0]


@pytest.mark.netns
def test_a_trace_takes_autonomous_systems_from_a_geoip2_isp_database(
    tracekit_lab: Lab, tmp_path: Path
) -> None:
    _, isp = write_databases(tracekit_lab, tmp_path, types=(DBIP_TYPES[0], "GeoIP2-ISP"))
    process = tracekit_lab.tracekit(
        tracekit_lab.address("server"), "-n", "--format", "json", "--asn-db", str(isp)
    )
    assert process.returncode == 0, process.stderr
    hosts = [host for hop in json.loads(process.stdout)["hops"] for host in hop["hosts"]]
    assert [host["asn"]["number"] for host in hosts] == [
        PLACES[node].asn for node in ("r1", "r3", "server")
    ]


# -- a home directory that cannot be read -----------------------------------------------------


def as_user_who_cannot_read(home: Path) -> list[str]:
    """A command prefix (setpriv) that runs as someone for whom ``home`` cannot be read, as
    under ``sudo -E`` or ``su`` without ``-``; ``HOME`` is set to it.

    The nobody user (65534) is used when it can run this Python (a system or /opt Python,
    a venv under /tmp or the checkout); where it cannot (a Python under a private /root),
    root without the capabilities that let it read any directory stands in for it.
    """
    from tracekit.testing.pytest_plugin import require

    require(os.geteuid() == 0 and shutil.which("setpriv") is not None, "needs root and setpriv")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    home.mkdir(mode=0o700)
    (home / ".local" / "share" / "tracekit").mkdir(parents=True)
    # (through env: setpriv itself still has root's capabilities when it starts the command)
    runs = subprocess.run([*nobody, "env", sys.executable, "-c", "import tracekit.cli"],
                          cwd="/", capture_output=True)  # fmt: skip
    if runs.returncode == 0:
        prefix = nobody  # root's own 0700 directory: nobody cannot enter it
    else:
        os.chown(home, 65534, 65534)  # nobody's 0700 directory: root cannot enter it without
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]  # these
    return [*prefix, "env", "-u", "XDG_DATA_HOME", f"HOME={home}"]


def test_status_skips_a_home_directory_that_cannot_be_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prefix = as_user_who_cannot_read(home)
    command = [*prefix, sys.executable, "-m", "tracekit", "geoip", "status"]
    env = environment(tmp_path)
    process = subprocess.run(command, capture_output=True, text=True, env=env, cwd="/")
    standard = [p for d in STANDARD_DIRS for p in Path(d).glob("*.mmdb")]
    assert process.returncode == (0 if standard else 1), process.stderr
    assert "internal error" not in process.stderr
    own = f"{home}/.local/share/tracekit/dbip-city-lite.mmdb"
    assert f"    {own:<60} skipped: cannot be read (Permission denied)" in process.stdout

    process = subprocess.run([*command, "--format", "json"], capture_output=True, text=True,
                             env=env, cwd="/")  # fmt: skip
    searched = json.loads(process.stdout)["city"]["searched"]
    assert searched[-1] == {
        "source": "data", "label": str(Path(own).parent), "path": own, "exists": False,
        "error": "Permission denied",
    }  # fmt: skip


@pytest.mark.netns
def test_a_trace_does_not_warn_about_a_home_directory_that_cannot_be_read(
    tracekit_lab: Lab, tmp_path: Path
) -> None:
    prefix = as_user_who_cannot_read(tmp_path / "home")
    command = [*prefix, sys.executable, "-m", "tracekit", tracekit_lab.address("server"), "-n"]
    process = tracekit_lab.exec("client", command, check=False, cwd="/",
                                env=environment(tmp_path))  # fmt: skip
    assert "warning" not in process.stderr
    if prefix[1].startswith("--reuid"):  # nobody cannot open raw sockets: that alone is said
        assert process.returncode == 3
        assert process.stderr.startswith("tracekit: raw sockets need privilege")
    else:
        assert (process.returncode, process.stderr) == (0, "")
