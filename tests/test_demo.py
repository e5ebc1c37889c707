"""``tracekit demo``: a real trace on a throwaway network, and nothing left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
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
    assert len(lines) == 5


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
    assert (
        process.stderr.splitlines()[-1]
        == "tracekit: unknown probe 'nope'; available: icmp, tcp, udp"
    )


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
