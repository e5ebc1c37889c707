"""``tracekit demo``: a real trace on a throwaway network, and nothing left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import hop_addresses
from tracekit.testing.pytest_plugin import require

pytestmark = pytest.mark.netns


def _orphan(name: str) -> bool:
    """Whether a lab name (``tk-<pid>-...``) belongs to a process that no longer runs.

    Labs of other test runs on the machine belong to live processes and are not ours to judge.
    """
    pid = name.removeprefix("tk-").split("-")[0]
    return not (pid.isdigit() and Path(f"/proc/{pid}").exists())


def lab_leftovers() -> tuple[set[str], set[str], set[str]]:
    """Namespaces, /etc/netns entries and processes of labs whose owner has ended."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    namespaces = {line.split()[0] for line in listing.splitlines() if line.startswith("tk-")}
    etc = {p.name for p in Path("/etc/netns").glob("tk-*")}
    # a listener whose lab owner has ended is re-parented to init
    ps = subprocess.run(["ps", "-eo", "ppid=,args="], capture_output=True, text=True).stdout
    processes = {
        line.strip() for line in ps.splitlines()
        if "tracekit.testing.listener" in line and line.split()[0] == "1"
    }  # fmt: skip
    return {n for n in namespaces if _orphan(n)}, {n for n in etc if _orphan(n)}, processes


@pytest.fixture
def clean_machine(request: pytest.FixtureRequest) -> Any:
    require(os.geteuid() == 0, "the demo needs root")
    before = lab_leftovers()
    yield
    after = lab_leftovers()
    kinds = ("namespaces", "/etc/netns", "processes")
    for kind, was, now in zip(kinds, before, after, strict=True):
        assert now <= was, f"the demo left {kind} behind: {now - was}"


def demo(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracekit", "demo", *args],
        capture_output=True, text=True, timeout=120, **kwargs,
    )  # fmt: skip


def test_demo_traces_its_network_and_leaves_nothing(clean_machine: None) -> None:
    process = demo()
    assert process.returncode == 0, process.stderr
    assert process.stderr.startswith("demo network: client 10.0.1.1 -> r1 10.0.1.2 -> r2")
    lines = process.stdout.splitlines()
    assert lines[0] == "tracekit to server.tracekit.test (10.0.4.2), 30 hops max, icmp probes"
    # the packaged demo databases place the network between Madrid and Warsaw
    assert re.fullmatch(
        r" 1  r1\.tracekit\.test \(10\.0\.1\.2\) \[AS64500 Madrid, ES\](  \d+\.\d{3} ms){3}",
        lines[1],
    ), lines[1]
    assert lines[2] == " 2  * * *"
    assert lines[3].startswith(" 3  r3.tracekit.test (10.0.3.2) [AS64501 Frankfurt am Main, DE]")
    assert lines[4].startswith(" 4  server.tracekit.test (10.0.4.2) [AS64502 Warsaw, PL]")
    assert lines[5] == "AS path: AS64500 → AS64501 → AS64502"
    assert len(lines) == 6


def test_demo_draws_a_map(clean_machine: None, tmp_path: Path) -> None:
    page = tmp_path / "map.html"
    process = demo("--out", str(page), "--out", str(tmp_path / "map.json"))
    assert process.returncode == 0, process.stderr
    report = json.loads((tmp_path / "map.json").read_text())
    located = [h["hosts"][0]["location"]["city"] for h in report["hops"] if h["hosts"]]
    assert located == ["Madrid", "Frankfurt am Main", "Warsaw"]
    assert report["annotations"]["source"]["location"]["city"] == "Lisbon"
    html = page.read_text()
    assert "tracekitDraw(" in html and "Warsaw" in html


def test_demo_passes_trace_options_through(
    clean_machine: None, tmp_path: Path, trace_schema: dict[str, Any]
) -> None:
    out = tmp_path / "demo.json"
    process = demo("--routers", "4", "--silent", "3", "-6", "-n", "-q", "2", "--out", str(out))
    assert process.returncode == 0, process.stderr
    report = json.loads(out.read_text())
    jsonschema.validate(report, trace_schema, format_checker=jsonschema.FormatChecker())
    assert hop_addresses(report) == [
        "2001:db8:1::2", "2001:db8:2::2", None, "2001:db8:4::2", "2001:db8:5::2",
    ]  # fmt: skip
    assert all(len(h["probes"]) == 2 for h in report["hops"])
    assert process.stdout.splitlines()[1].startswith(" 1  2001:db8:1::2  ")


def test_demo_errors_are_one_line(clean_machine: None) -> None:
    process = demo("--silent", "5")
    assert process.returncode == 2 and len(process.stderr.splitlines()) == 1
    process = demo("--probe", "nope")
    assert process.returncode == 2
    assert process.stderr == "tracekit: unknown probe 'nope'; available: icmp, tcp, udp\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--probe", "nosuch"], 2, "unknown probe 'nosuch'; available: icmp, tcp, udp"),
        (["-p", "80"], 2, "--port does not apply to icmp probes"),
        (["--probe", "icmp", "--source-port", "4000"], 2,
         "--source-port does not apply to icmp probes"),
        (["-f", "5", "-m", "3"], 2,
         "Invalid value for '-f/--first-ttl': must not exceed --max-ttl "
         "(see 'tracekit demo --help')"),
        (["--format", "yaml"], 2,
         "unknown format 'yaml'; available: atlas, json, jsonl, junit, map, markdown, text"),
        (["--out", "x.csv"], 2, "no output format for 'x.csv': use one of the suffixes "
         ".atlas.json, .html, .json, .jsonl, .md, .txt, .xml"),
        (["--expect", "hops<12"], 2, "Invalid value for '--expect': 'hops<12' is not a rule: "
         "write hops<=N (see 'tracekit trace --help')"),
        (["--expect", "same-path"], 2,
         "--expect same-path needs --baseline FILE.json (a previous JSON report)"),
        (["-I", "eth0"], 3, "no such interface in the demo's client: eth0 (it has lo, r1)"),
        (["--geoip-db", "/nonexistent.mmdb"], 2,
         "GeoIP database /nonexistent.mmdb does not exist"),
        (["--asn-db", "tracekit/data/demo-city.mmdb"], 2,
         "tracekit/data/demo-city.mmdb is a Tracekit-Test-City database, not an ASN database"),
    ],
)  # fmt: skip
def test_demo_refuses_bad_trace_options_before_building(
    args: list[str], code: int, message: str
) -> None:
    # Without the ip command the network cannot be built (exit 3, "the ip command is
    # missing"): the trace options must be refused before that is even tried.
    env = {**os.environ, "PATH": "/nonexistent"}
    process = demo(*args, env=env, cwd=Path(__file__).resolve().parent.parent)
    assert (process.returncode, process.stderr) == (code, f"tracekit: {message}\n")


def test_demo_without_ip_cannot_build() -> None:
    process = demo(env={**os.environ, "PATH": "/nonexistent"})
    assert process.returncode == 3
    assert process.stderr == (
        "tracekit: cannot build the demo network: the ip command is missing: install iproute2\n"
    )


def test_demo_help_lists_the_trace_options() -> None:
    help_text = demo("--help").stdout
    assert "Trace options (passed on to 'tracekit trace'):" in help_text
    for option in ("--probe NAME", "-q, --queries", "--out FILE", "-6", "--geoip-db FILE"):
        assert option in help_text.split("Trace options")[1], option


def test_demo_with_one_router_and_ipv6_shows_ipv6_addresses(clean_machine: None) -> None:
    process = demo("--routers", "1", "-n6", "-q", "1")
    assert process.returncode == 0, process.stderr
    assert process.stderr == (
        "demo network: client 2001:db8:1::1 -> r1 2001:db8:1::2 -> server 2001:db8:2::2\n"
    )
    lines = process.stdout.splitlines()
    assert lines[0] == "tracekit to server.tracekit.test (2001:db8:2::2), 30 hops max, icmp probes"
    assert lines[1].startswith(" 1  2001:db8:1::2  ")
    assert lines[2].startswith(" 2  2001:db8:2::2  ")
    assert len(lines) == 3


def test_demo_cleans_up_after_ctrl_c(clean_machine: None) -> None:
    # The last router is silent and -m stops there: the trace waits 20 s for it.
    command = [sys.executable, "-m", "tracekit", "demo", "--silent", "3", "-m", "3", "-w", "20"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().startswith("tracekit to ")
    assert process.stdout.readline().startswith(" 1  ")
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C at a terminal does
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr


def start_demo(*args: str) -> subprocess.Popen[str]:
    """A demo in a process group of its own (as a shell runs it), once its trace is running:
    its first line is read."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tracekit", "demo", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().startswith("tracekit to ")
    return process


# -q 10 -N 1: the silent router costs 10 probes of 5 s each; the trace runs for a while.
SLOW = ("-q", "10", "-N", "1")


def test_two_ctrl_c_in_a_row_exit_130(clean_machine: None) -> None:
    process = start_demo(*SLOW)
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "tracekit: interrupted"
    assert "Traceback" not in stderr


def test_sigterm_to_the_demo_alone_stops_its_trace_and_exits_143(clean_machine: None) -> None:
    process = start_demo(*SLOW)
    process.send_signal(signal.SIGTERM)  # the demo's process only, not its group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr


def test_timeout_leaves_no_namespace_behind(clean_machine: None) -> None:
    # timeout sends SIGTERM to the demo, then to its whole process group: the demo gets it
    # twice, the second time while it removes the network.
    process = subprocess.run(
        ["timeout", "4", sys.executable, "-m", "tracekit", "demo", *SLOW],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert process.returncode == 124, process.stderr
    assert "Traceback" not in process.stderr


def test_piped_into_head_ends_quietly_with_status_1(clean_machine: None) -> None:
    # One probe every 0.5 s: head has gone by the time the third line is written.
    python = sys.executable
    command = f"{python} -m tracekit demo -q 1 -z 0.5 | head -2; echo status=${{PIPESTATUS[0]}}"
    process = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    lines = process.stdout.splitlines()
    assert lines[0].startswith("tracekit to server.tracekit.test")
    assert lines[1].startswith(" 1  r1.tracekit.test (10.0.1.2)")
    assert lines[2:] == ["status=1"]
    assert process.stderr.splitlines() == [
        "demo network: client 10.0.1.1 -> r1 10.0.1.2 -> r2 10.0.2.2 (silent) -> r3 10.0.3.2 "
        "-> server 10.0.4.2"
    ]


def test_a_later_lab_removes_what_a_killed_one_left(clean_machine: None) -> None:
    from tracekit.testing.netlab import NETNS_ETC, remove_stale_labs

    dead = subprocess.Popen(["true"])
    dead.wait()
    left = NETNS_ETC / f"tk-{dead.pid}-dead-client"
    left.mkdir(parents=True)
    (left / "hosts").write_text("127.0.0.1 localhost\n")
    remove_stale_labs()
    assert not left.exists()
