"""The command line: one-line errors, documented exit codes, fast help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tracekit.testing import Lab


def tracekit(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, **kwargs
    )


def assert_one_line_error(
    process: subprocess.CompletedProcess[str], code: int, *words: str
) -> None:
    assert process.returncode == code, (process.returncode, process.stderr)
    lines = process.stderr.splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith("tracekit: ")
    assert "Traceback" not in process.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_help_and_version_stay_light() -> None:
    check = (
        "import sys\n"
        "from tracekit.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('scapy', 'folium', 'geoip2', 'maxminddb', 'urllib.request', 'http.client')\n"
        "print([m for m in heavy if m in sys.modules], file=sys.stderr)\n"
    )
    for args in (
        ["--help"], ["--version"], ["trace", "--help"], ["plugins"],
        ["geoip"], ["geoip", "status", "--help"], ["geoip", "download", "--help"],
    ):  # fmt: skip
        process = subprocess.run(
            [sys.executable, "-c", check, *args], capture_output=True, text=True
        )
        assert process.stderr.strip().splitlines()[-1] == "[]", (args, process.stderr)


def test_version_matches_the_package() -> None:
    from tracekit import __version__

    assert tracekit("--version").stdout.strip() == f"tracekit, version {__version__}"


def test_host_alone_means_trace() -> None:
    short = tracekit("--help")
    assert "tracekit HOST is short for tracekit trace HOST" in " ".join(short.stdout.split())
    # options before the host reach the trace command too
    assert_one_line_error(tracekit("-q", "0", "10.0.4.2"), 2, "-q")


@pytest.mark.parametrize(
    "args,words",
    [
        (["-q", "0", "h"], ["--queries", "0"]),
        (["-m", "300", "h"], ["--max-ttl", "300"]),
        (["-f", "9", "-m", "5", "h"], ["--first-ttl", "--max-ttl"]),
        (["-w", "soon", "h"], ["MAX[,HERE[,NEAR]]"]),
        (["-w", "0", "h"], ["MAX must be > 0"]),
        (["--probe", "carrier-pigeon", "10.0.4.2"], ["unknown probe", "icmp"]),
        (["--format", "yaml", "10.0.4.2"], ["unknown format", "json", "text"]),
        (["--out", "trace.docx", "10.0.4.2"], ["no output format", ".json"]),
        (["--no-such-option", "h"], ["No such option"]),
        ([], ["Missing argument 'HOST'"]),
        (["-4", "2001:db8::1"], ["IPv6 address", "-4"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], words: list[str]) -> None:
    assert_one_line_error(tracekit(*args), 2, *words)


def test_plugins_lists_the_built_ins_with_what_they_provide() -> None:
    listing = json.loads(tracekit("plugins", "--format", "json").stdout)
    by_name = {p["name"]: p for p in listing}
    assert {"icmp", "text", "json", "rdns"} <= set(by_name)
    assert by_name["icmp"]["probes"] == [
        {"name": "icmp", "description": "ICMP echo requests (like traceroute -I)"}
    ]
    assert by_name["json"]["outputs"] == [
        {"name": "json", "description": "JSON report (its schema: tracekit schema)",
         "suffixes": [".json"]}
    ]  # fmt: skip
    assert by_name["rdns"]["hooks"] == [
        "tracekit_enrich_hop",
        "tracekit_probe_answered",
        "tracekit_trace_finished",
        "tracekit_trace_started",
    ]
    for plugin in by_name.values():
        assert plugin["distribution"] == "tracekit" and plugin["version"]
    text = tracekit("plugins").stdout.splitlines()
    assert text[text.index(f"icmp  (tracekit {by_name['icmp']['version']})") + 1] == (
        "    probe: icmp: ICMP echo requests (like traceroute -I)"
    )
    assert "    output: map (.html): HTML map of the route, works offline (folium)" in text
    assert "    output: text (.txt): traceroute-style text, streamed hop by hop" in text


def test_trace_help_lists_the_built_in_choices() -> None:
    from tracekit.cli import BUILTIN_FORMATS, BUILTIN_PROBES, BUILTIN_SUFFIXES

    help_text = " ".join(tracekit("trace", "--help").stdout.split())
    assert "Probe method: icmp, udp, tcp, or one a plugin adds" in help_text
    formats = "text, json, jsonl, atlas, map, junit, markdown"
    assert f"Format on standard output: {formats}, one a plugin adds" in help_text
    assert "or none for nothing" in help_text
    suffixes = ".txt, .json, .jsonl, .atlas.json, .html (the map), .xml (JUnit), .md (Markdown)"
    assert f"names: {suffixes}, or one a plugin adds" in help_text
    # and those are what the built-in plugins register
    listing = json.loads(tracekit("plugins", "--format", "json").stdout)
    builtin = [p for p in listing if p["distribution"] == "tracekit"]
    assert {p["name"] for b in builtin for p in b["probes"]} == set(BUILTIN_PROBES)
    outputs = [o for b in builtin for o in b["outputs"]]
    assert {o["name"] for o in outputs} == set(BUILTIN_FORMATS)
    assert {s for o in outputs for s in o["suffixes"]} == set(BUILTIN_SUFFIXES)


# -- errors that need the namespace network (a place where probing is safe) ---------------


@pytest.mark.netns
def test_unknown_host_is_bad_input(tracekit_lab: Lab) -> None:
    process = tracekit_lab.tracekit("no-such-host.tracekit.test")
    assert_one_line_error(process, 2, "cannot resolve", "no-such-host.tracekit.test")


@pytest.mark.netns
def test_no_route_cannot_probe(tracekit_lab: Lab) -> None:
    # The lab's client has routes only to the lab: 192.0.2.0/24 (TEST-NET-1) is nowhere.
    assert_one_line_error(tracekit_lab.tracekit("192.0.2.1"), 3, "no route to 192.0.2.1")


@pytest.mark.netns
def test_no_such_interface_cannot_probe(tracekit_lab: Lab) -> None:
    process = tracekit_lab.tracekit(tracekit_lab.address("server"), "-I", "nosuch0")
    assert_one_line_error(process, 3, "no such interface: nosuch0")


@pytest.mark.netns
@pytest.mark.parametrize(
    ("source", "code", "message"),
    [
        ("192.0.2.99", 3, "tracekit: 192.0.2.99 is not an address of this host"),
        ("nonsense", 2, "tracekit: --source 'nonsense' is not an IP address"),
        ("2001:db8:1::1", 2,
         "tracekit: --source 2001:db8:1::1 is an IPv6 address, but the trace is over IPv4"),
    ],
)  # fmt: skip
def test_a_source_address_that_cannot_be_used_is_one_line(
    tracekit_lab: Lab, source: str, code: int, message: str
) -> None:
    process = tracekit_lab.tracekit(tracekit_lab.address("server"), "-s", source)
    assert (process.returncode, process.stderr) == (code, message + "\n")


@pytest.mark.netns
def test_missing_raw_socket_privilege_says_how_to_get_it(tracekit_lab: Lab) -> None:
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to drop CAP_NET_RAW")
    command = [
        "setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw",
        sys.executable, "-m", "tracekit", tracekit_lab.address("server"),
    ]  # fmt: skip
    process = tracekit_lab.exec("client", command, check=False)
    assert_one_line_error(process, 3, "root", "CAP_NET_RAW", "setcap cap_net_raw+ep")
    assert os.path.realpath(sys.executable) in process.stderr


@pytest.mark.netns
def test_unwritable_output_is_bad_input(tracekit_lab: Lab, tmp_path: Path) -> None:
    target = tmp_path / "missing-directory" / "trace.json"
    process = tracekit_lab.tracekit(tracekit_lab.address("server"), "--out", str(target))
    assert_one_line_error(process, 2, "cannot write", str(target))


@pytest.mark.netns
def test_out_files_by_suffix_and_format_none(
    tracekit_lab: Lab, tmp_path: Path, trace_schema: dict[str, Any]
) -> None:
    import jsonschema

    json_path, text_path = tmp_path / "t.json", tmp_path / "t.txt"
    process = tracekit_lab.tracekit(
        tracekit_lab.address("server"), "-n", "--format", "none",
        "--out", str(json_path), "--out", str(text_path),
    )  # fmt: skip
    assert process.returncode == 0 and process.stdout == ""
    report = json.loads(json_path.read_text())
    jsonschema.validate(report, trace_schema, format_checker=jsonschema.FormatChecker())
    assert report["reached"] is True
    lines = text_path.read_text().splitlines()
    assert lines[0].startswith("tracekit to 10.0.4.2") and lines[2] == " 2  * * *"


def test_the_help_shows_the_bulk_rate_the_run_uses() -> None:
    from tracekit.cli import BULK_RATE
    from tracekit.pacing import BULK_RATE as USED

    assert BULK_RATE == USED
