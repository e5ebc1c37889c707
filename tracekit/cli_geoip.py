"""``tracekit geoip``: which GeoIP databases a trace uses, and getting DB-IP's free ones.

Only click is imported here; the commands import what they need when they run.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import click

from tracekit.errors import EXIT_BAD_INPUT, EXIT_NOT_REACHED

#: The kinds of database, as ``tracekit.enrich.geoip`` names them, and for people.
KINDS = {"city": "City", "asn": "ASN"}
SOURCES = {
    "environment": "environment",
    "standard": "standard directory",
    "data": "tracekit's data directory",
}
NEXT_STEP = "run 'tracekit geoip download' (DB-IP, free) or give a trace --geoip-db FILE"


@click.group(invoke_without_command=True)
@click.pass_context
def geoip(ctx: click.Context) -> int:
    """GeoIP databases: which ones a trace uses, and downloading DB-IP's free ones."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
    return 0


@geoip.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")  # fmt: skip
def status(fmt: str) -> int:
    """Show where City and ASN databases are looked for and which files a trace uses.

    Exit status 0 if a usable City database is found, 1 if none is, 2 if a database found
    cannot be used (damaged, wrong type, missing file named by an environment variable).
    """
    from tracekit.enrich.geoip import database_status

    report = {kind: database_status(kind) for kind in KINDS}
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo("\n".join(_status_text(report)))
    errors = [s["error"] for s in report.values() if s["error"]]
    if errors:
        click.echo(f"tracekit: {errors[0]}", err=True)
        return EXIT_BAD_INPUT
    if report["city"]["path"] is None:
        click.echo(f"tracekit: no City database found: {NEXT_STEP}", err=True)
        return EXIT_NOT_REACHED
    return 0


def _status_text(report: dict[str, dict[str, Any]]) -> list[str]:
    from tracekit.dbip import human_size
    from tracekit.enrich.geoip import OPTION

    lines: list[str] = []
    for kind, found in report.items():
        name, option = KINDS[kind], OPTION[kind]
        if lines:
            lines.append("")
        if found["path"] is None:
            lines.append(f"{name} database: none found")
        else:
            lines.append(f"{name} database: {found['path']} ({SOURCES[found['source']]})")
        if found["error"]:
            lines.append(f"  unusable: {found['error']}")
        elif found["path"] is not None:
            lines.append(f"  type: {found['type']}")
            lines.append(f"  built: {found['built']}")
            lines.append(f"  size: {human_size(found['size'])}")
        lines.append(f"  searched, in order (a trace's {option} FILE comes before all):")
        for place in found["searched"]:
            lines.append("    " + _place_text(place, found["path"]))
    return lines


def _place_text(place: dict[str, Any], used: str | None) -> str:
    if place["source"] == "environment":
        where = place["label"] if place["path"] is None else f"{place['label']}={place['path']}"
        mark = "not set" if place["path"] is None else "set"
    else:
        where = place["path"]
        mark = "found" if place["exists"] else "-"
        if place.get("error"):
            mark = f"skipped: cannot be read ({place['error']})"
    if place["path"] is not None and place["path"] == used:
        mark = "used" if place["exists"] else "used, but there is no such file"
    return f"{where:<60} {mark}"


def _check_month(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from tracekit.dbip import parse_month
    from tracekit.errors import BadInput

    if value is None:
        return None
    try:
        return parse_month(value)
    except BadInput as exc:
        raise click.BadParameter(str(exc)) from None


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@geoip.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), metavar="DIR",
              help="Install there instead of tracekit's data directory "
              "($XDG_DATA_HOME/tracekit, by default ~/.local/share/tracekit).")  # fmt: skip
@click.option("--system", is_flag=True,
              help="Install into /usr/local/share/GeoIP, which every user's traces search, "
              "root's under sudo too (needs root).")  # fmt: skip
@click.option("--month", callback=_check_month, metavar="YYYY-MM",
              help="The month of the files (default: this month, or the one before if "
              "this month's are not out yet).")  # fmt: skip
def download(directory: str | None, system: bool, month: str | None) -> int:
    """Download DB-IP's free City Lite and ASN Lite databases (CC BY 4.0, no account).

    The files replace the previous ones only once they are complete and checked. The
    server can be changed with the environment variable TRACEKIT_DBIP_URL.
    """
    from tracekit import dbip
    from tracekit.enrich.geoip import OPTION, SHARED_DIR, chosen_place, data_dir, search_places

    if system and directory:
        raise click.UsageError("--system and --dir cannot be given together")
    signal.signal(signal.SIGTERM, _terminate)  # clean up as for Ctrl-C
    target = Path(directory).expanduser().absolute() if directory else data_dir()
    if system:
        target = SHARED_DIR
    months = dbip.months_to_try(month)
    for kind in KINDS:
        installed = dbip.download(kind, target, months, dbip.Progress())
        click.echo(
            f"installed {installed.path}: {installed.database_type}, built {installed.built}, "
            f"{dbip.human_size(installed.size)}"
        )
        used = chosen_place(search_places(kind))
        if used is None or used.path is None or used.path.resolve() != installed.path.resolve():
            instead = "no file" if used is None else used.path
            option = OPTION[kind]
            click.echo(
                f"tracekit: warning: traces use {instead}, not {installed.path} "
                f"(see 'tracekit geoip status'); pass {option} {installed.path} to use it",
                err=True,
            )
    click.echo(dbip.ATTRIBUTION)
    return 0
