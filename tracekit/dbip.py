"""Downloading DB-IP's free "IP to City Lite" and "IP to ASN Lite" databases
(``tracekit geoip download``).

DB-IP publishes both monthly, under CC BY 4.0 and without an account, as
``https://download.db-ip.com/free/dbip-city-lite-YYYY-MM.mmdb.gz`` (and ``dbip-asn-lite-...``).
Each file is streamed to a temporary file next to its destination, uncompressed on the way,
checked (a MaxMind DB of the right type that answers a lookup), and only then moved into place
in one step: a failed or interrupted download leaves the previous file as it was, and no
temporary file behind.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, Any

from tracekit.enrich.geoip import open_database
from tracekit.errors import BadInput, CannotDownload

BASE_URL = "https://download.db-ip.com/free"
#: Replaces :data:`BASE_URL` (a mirror, or a local server in tests).
URL_ENV = "TRACEKIT_DBIP_URL"
ATTRIBUTION = "IP geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
#: The name of each kind of file: published as ``NAME-YYYY-MM.mmdb.gz``, installed as
#: ``NAME.mmdb``, a name :mod:`tracekit.enrich.geoip` looks for.
NAMES = {"city": "dbip-city-lite", "asn": "dbip-asn-lite"}
#: A word the database type of each kind contains.
TYPE_WORDS = {"city": "City", "asn": "ASN"}
#: Looked up in a new file before it is installed (in the file: nothing is sent).
TRIAL_ADDRESS = "1.1.1.1"
TIMEOUT = 30.0
CHUNK = 64 * 1024


class NotPublished(CannotDownload):
    """The server has no file for that month (HTTP 404)."""


@dataclass(frozen=True)
class Installed:
    """A database put in place."""

    path: Path
    url: str
    database_type: str
    built: str
    size: int


def parse_month(text: str) -> str:
    """``YYYY-MM``, checked."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise BadInput(f"{text!r} is not a month as YYYY-MM")
    return text


def months_to_try(month: str | None, today: date | None = None) -> list[str]:
    """The month asked for; or else this month (UTC) and the one before, since DB-IP
    publishes a month's files some time into it."""
    if month is not None:
        return [month]
    today = today or datetime.now(timezone.utc).date()
    year, previous = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return [f"{today.year:04d}-{today.month:02d}", f"{year:04d}-{previous:02d}"]


def url_for(kind: str, month: str) -> str:
    """Where DB-IP (or ``$TRACEKIT_DBIP_URL``) publishes the ``kind`` file of ``month``."""
    base = os.environ.get(URL_ENV) or BASE_URL
    return f"{base.rstrip('/')}/{NAMES[kind]}-{month}.mmdb.gz"


def human_size(size: int) -> str:
    """``size`` bytes for people."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


class Progress:
    """One download's progress on standard error: a line updated in place on a terminal,
    otherwise a line at the start and one at the end."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.name = ""
        self.total: int | None = None
        self._shown = 0.0
        self._started = 0.0
        self._open = False

    def start(self, url: str, total: int | None) -> None:
        self.name, self.total = url.rsplit("/", 1)[-1], total
        self._started = time.monotonic()
        if self.tty:
            self._show(0)
        else:
            size = human_size(total) if total is not None else "size unknown"
            self._write(f"downloading {url} ({size})\n")

    def update(self, received: int) -> None:
        if self.tty and time.monotonic() - self._shown >= 0.1:
            self._show(received)

    def finish(self, received: int) -> None:
        seconds = time.monotonic() - self._started
        if self.tty:
            self._show(received)
            self.close()
        else:
            self._write(f"downloaded {self.name}: {human_size(received)} in {seconds:.1f} s\n")

    def note(self, text: str) -> None:
        """A line about the download that is not an error."""
        self.close()
        self._write(f"{text}\n")

    def close(self) -> None:
        """End a line left open on the terminal (before an error message)."""
        if self._open:
            self._write("\n")
            self._open = False

    def _show(self, received: int) -> None:
        text = f"{self.name}: {human_size(received)}"
        if self.total:
            text += f" / {human_size(self.total)} ({100 * received // self.total}%)"
        self._write(f"\r{text:<72}")
        self._open = True
        self._shown = time.monotonic()

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def download(kind: str, directory: Path, months: list[str], progress: Progress) -> Installed:
    """Download the ``kind`` database of the first of ``months`` that is published, check
    it and install it in ``directory`` as ``NAME.mmdb``."""
    urls = [url_for(kind, month) for month in months]
    for url, later in zip(urls, [*months[1:], None], strict=True):
        try:
            response = _open(url)
        except NotPublished:
            if later is not None:
                progress.note(f"{url} is not published yet (HTTP 404); trying {later}")
            continue
        with response:
            return _install(kind, url, response, directory, progress)
    raise CannotDownload(f"cannot download {' or '.join(urls)}: HTTP 404 Not Found")


def _open(url: str) -> Any:
    """The response to a GET of ``url``; one-line errors."""
    import http.client
    import urllib.error
    import urllib.request

    from tracekit import __version__

    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"tracekit/{__version__}"})
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            raise NotPublished(f"cannot download {url}: HTTP 404") from None
        raise CannotDownload(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise CannotDownload(f"cannot download {url}: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise CannotDownload(f"cannot download {url}: {exc or type(exc).__name__}") from None
    except ValueError as exc:  # not a URL: $TRACEKIT_DBIP_URL is wrong
        raise BadInput(f"cannot download {url}: {exc} (check ${URL_ENV})") from None


def _install(kind: str, url: str, response: Any, directory: Path, progress: Progress) -> Installed:
    """Stream ``response`` into a temporary file in ``directory``, check it, and move it to
    its name there; the temporary file never stays behind."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{NAMES[kind]}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise BadInput(f"cannot write to {directory}: {exc.strerror or exc}") from None
    temporary = Path(name)
    target = directory / f"{NAMES[kind]}.mmdb"
    try:
        with os.fdopen(handle, "wb") as out:
            _gunzip(url, response, out, progress)
        database_type, built = _check(temporary, kind, url)
        size = temporary.stat().st_size
        os.replace(temporary, target)
    except OSError as exc:
        raise BadInput(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        progress.close()
        temporary.unlink(missing_ok=True)
    return Installed(target, url, database_type, built, size)


def _gunzip(url: str, response: Any, out: IO[bytes], progress: Progress) -> None:
    """Copy the gzip-compressed body of ``response`` to ``out``, uncompressed."""
    import http.client

    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    progress.start(url, total)
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip header and trailer
    received = 0
    while True:
        try:
            chunk = response.read(CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            raise CannotDownload(f"cannot download {url}: {exc or type(exc).__name__}") from None
        if not chunk:
            break
        received += len(chunk)
        try:
            out.write(decompressor.decompress(chunk))
        except zlib.error as exc:
            raise CannotDownload(f"cannot install {url}: not a gzip file ({exc})") from None
        progress.update(received)
    if total is not None and received < total:
        raise CannotDownload(
            f"cannot download {url}: the connection closed after {received} of {total} bytes"
        )
    if not decompressor.eof:
        raise CannotDownload(f"cannot install {url}: the gzip data ends early")
    out.write(decompressor.flush())
    progress.finish(received)


def _check(path: Path, kind: str, url: str) -> tuple[str, str]:
    """That ``path`` is a ``kind`` MaxMind DB that tracekit can read; its type and build
    date (ISO)."""
    import maxminddb

    try:
        reader = maxminddb.open_database(str(path))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError):
        raise CannotDownload(f"cannot install {url}: not a MaxMind DB (mmdb) file") from None
    try:
        metadata = reader.metadata()
        database_type = str(metadata.database_type)
        if TYPE_WORDS[kind] not in database_type:
            raise CannotDownload(
                f"cannot install {url}: it is a {database_type} database, "
                f"not {'an ASN' if kind == 'asn' else 'a City'} database"
            )
        reader.get(TRIAL_ADDRESS)
    except (ValueError, maxminddb.InvalidDatabaseError) as exc:
        reason = str(exc).replace(str(path), "")
        raise CannotDownload(f"cannot install {url}: the database is damaged: {reason}") from None
    finally:
        reader.close()
    try:  # geoip2 reads it as a trace will
        open_database(path, kind).close()
    except BadInput:
        raise CannotDownload(
            f"cannot install {url}: geoip2 cannot read a {database_type} database"
        ) from None
    built = datetime.fromtimestamp(metadata.build_epoch, timezone.utc).date().isoformat()
    return database_type, built
