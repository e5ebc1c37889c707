"""Traces on a real routed network of namespaces, checked hop by hop against the topology."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import datetime
from typing import Any

import jsonschema
import pytest

from conftest import hop_addresses
from tracekit.testing import Lab

pytestmark = pytest.mark.netns


def trace_json(lab: Lab, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    process = lab.tracekit(*args, "--format", "json")
    assert process.stdout, process.stderr
    return process, json.loads(process.stdout)


@pytest.mark.parametrize("version", [4, 6])
def test_icmp_trace_shows_every_hop_of_the_topology(
    tracekit_lab: Lab, version: int, trace_schema: dict[str, Any]
) -> None:
    server = tracekit_lab.address("server", version)
    process, report = trace_json(tracekit_lab, server, f"-{version}")
    assert process.returncode == 0, process.stderr
    jsonschema.validate(report, trace_schema, format_checker=jsonschema.FormatChecker())
    expected = tracekit_lab.expected_hops(version)
    assert expected[1] is None  # r2 is silent
    assert hop_addresses(report) == expected
    assert report["reached"] is True and report["end"] == "reached"
    assert report["address"] == server and report["ip_version"] == version
    assert report["source"] == tracekit_lab.address("client", version)
    for hop, address in zip(report["hops"], expected, strict=True):
        replies = {p["reply"] for p in hop["probes"]}
        if address is None:
            assert hop["silent"] and replies == {None}
            continue
        assert replies == ({"echo-reply"} if address == server else {"time-exceeded"})
        # every answer started with TTL 64 and crossed ttl - 1 routers on its way back
        assert {p["reply_ttl"] for p in hop["probes"]} == {65 - hop["ttl"]}
        assert all(p["rtt_ms"] > 0 for p in hop["probes"])


def test_names_come_from_reverse_lookups_and_n_turns_them_off(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    named = tracekit_lab.tracekit(server)
    lines = named.stdout.splitlines()
    assert lines[0] == (f"tracekit to {server} ({server}), 30 hops max, icmp probes")
    assert re.fullmatch(r" 1  r1\.tracekit\.test \(10\.0\.1\.2\)(  \d+\.\d{3} ms){3}", lines[1]), (
        lines[1]
    )
    assert lines[2] == " 2  * * *"
    assert lines[4].startswith(" 4  server.tracekit.test (10.0.4.2)  ")
    assert len(lines) == 5
    numeric = tracekit_lab.tracekit(server, "-n").stdout.splitlines()
    assert re.fullmatch(r" 1  10\.0\.1\.2(  \d+\.\d{3} ms){3}", numeric[1]), numeric[1]
    assert "tracekit.test" not in "\n".join(numeric[1:])


def test_target_given_by_name_resolves_in_both_families(tracekit_lab: Lab) -> None:
    for version in (4, 6):
        _, report = trace_json(tracekit_lab, "server.tracekit.test", f"-{version}", "-n")
        assert report["target"] == "server.tracekit.test"
        assert report["address"] == tracekit_lab.address("server", version)
        assert hop_addresses(report) == tracekit_lab.expected_hops(version)


@pytest.mark.parametrize("version", [4, 6])
def test_same_hops_as_the_system_traceroute(tracekit_lab: Lab, version: int) -> None:
    if shutil.which("traceroute") is None:
        pytest.fail("the system traceroute is needed for this cross-check (apt install traceroute)")
    server = tracekit_lab.address("server", version)
    peer = tracekit_lab.exec(
        "client", ["traceroute", f"-{version}", "-I", "-n", "-q", "3", server]
    ).stdout.splitlines()[1:]
    theirs: list[str | None] = []
    for line in peer:
        fields = line.split()
        theirs.append(None if fields[1] == "*" else fields[1])
    _, report = trace_json(tracekit_lab, server, "-n")
    assert hop_addresses(report) == theirs == tracekit_lab.expected_hops(version)


def test_queries_and_ttl_range_are_honoured(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    _, report = trace_json(tracekit_lab, server, "-n", "-q", "5", "-f", "3")
    assert [h["ttl"] for h in report["hops"]] == [3, 4]
    assert all(len(h["probes"]) == 5 for h in report["hops"])
    assert hop_addresses(report) == tracekit_lab.expected_hops()[2:]


def test_interface_option_sends_from_that_interface(tracekit_lab: Lab) -> None:
    # In the client's namespace the interface towards r1 is called "r1".
    _, report = trace_json(tracekit_lab, tracekit_lab.address("server"), "-n", "-I", "r1")
    assert report["reached"] and hop_addresses(report) == tracekit_lab.expected_hops()


@pytest.mark.parametrize("version", [4, 6])
def test_source_option_sends_from_that_address(tracekit_lab_factory: Any, version: int) -> None:
    lab = tracekit_lab_factory(routers=2)
    second = {4: "10.0.1.3/24", 6: "2001:db8:1::3/64"}[version]
    extra = ["nodad"] if version == 6 else []  # usable at once, no duplicate detection
    lab.exec("client", ["ip", f"-{version}", "addr", "add", second, "dev", "r1", *extra])
    source = second.split("/")[0]
    _, report = trace_json(lab, lab.address("server", version), "-n", "-s", source)
    assert report["source"] == source
    assert report["reached"] and hop_addresses(report) == lab.expected_hops(version)


def test_max_ttl_short_of_the_destination_exits_1(tracekit_lab: Lab) -> None:
    process, report = trace_json(tracekit_lab, tracekit_lab.address("server"), "-n", "-m", "3")
    assert process.returncode == 1
    assert report["reached"] is False and report["end"] == "max-ttl"
    assert hop_addresses(report) == tracekit_lab.expected_hops()[:3]


def test_silent_hops_cost_an_adaptive_wait_not_the_maximum(tracekit_lab: Lab) -> None:
    # r2 never answers. With a 30 s maximum, a fixed per-probe timeout would take 30 s.
    _, report = trace_json(tracekit_lab, tracekit_lab.address("server"), "-n", "-w", "30")
    started = datetime.fromisoformat(report["started"])
    finished = datetime.fromisoformat(report["finished"])
    assert report["reached"] and (finished - started).total_seconds() < 10


def test_two_runs_at_once_never_take_each_others_answers(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    command = [sys.executable, "-m", "tracekit", server, "-n", "-q", "10", "--format", "json"]
    runs = [
        subprocess.Popen(tracekit_lab.command("client", command), stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    reports = [json.loads(run.communicate(timeout=60)[0]) for run in runs]
    identifiers = {r["probe"]["parameters"]["identifier"] for r in reports}
    assert len(identifiers) == 3
    for report in reports:
        assert hop_addresses(report) == tracekit_lab.expected_hops()
        for hop, address in zip(report["hops"], tracekit_lab.expected_hops(), strict=True):
            answered = [p for p in hop["probes"] if p["address"] is not None]
            # every probe of a responsive hop is answered exactly once, by that hop
            assert len(answered) == (10 if address else 0)


def test_unrelated_icmp_traffic_is_ignored(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    noise = (
        "import random, socket, time\n"
        "from scapy.layers.inet import IP, ICMP\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)\n"
        "end = time.time() + 3\n"
        "while time.time() < end:\n"
        f"    for ttl in (1, 3, 64):\n"
        f"        p = IP(dst={server!r}, ttl=ttl) / ICMP(id=random.randrange(65536),"
        " seq=random.randrange(64))\n"
        f"        s.sendto(bytes(p), ({server!r}, 0))\n"
        "    time.sleep(0.001)\n"
    )
    flood = tracekit_lab.popen("client", [sys.executable, "-c", noise])
    try:
        for _ in range(3):
            _, report = trace_json(tracekit_lab, server, "-n", "-q", "5")
            assert hop_addresses(report) == tracekit_lab.expected_hops()
            assert all(
                p["reply"] == ("echo-reply" if h["ttl"] == 4 else "time-exceeded")
                for h in report["hops"]
                for p in h["probes"]
                if p["address"]
            )
    finally:
        flood.kill()
        flood.wait()


def test_text_is_streamed_hop_by_hop(tracekit_lab_factory: Any) -> None:
    lab = tracekit_lab_factory(routers=3, silent=[3])
    # TTL 3 never answers and nothing lies beyond -m 3: it costs the full 4 s wait,
    # while the first lines must already be out.
    command = [sys.executable, "-m", "tracekit", lab.address("server"), "-n", "-m", "3", "-w", "4"]
    process = subprocess.Popen(lab.command("client", command), stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    header = process.stdout.readline()
    first = process.stdout.readline()
    second = process.stdout.readline()
    still_running = process.poll() is None
    rest, _ = process.communicate(timeout=30)
    assert header.startswith("tracekit to 10.0.4.2")
    assert first.startswith(" 1  10.0.1.2  ") and second.startswith(" 2  10.0.2.2  ")
    assert still_running, "the first hops were printed only when the trace ended"
    assert rest == " 3  * * *\n" and process.returncode == 1


def test_unreachable_answer_ends_the_trace_marked(tracekit_lab_factory: Any) -> None:
    lab = tracekit_lab_factory(routers=2)
    # r2 refuses to forward to 10.99.0.0/16 and says so (admin-prohibited).
    for node, gateway in (("client", "10.0.1.2"), ("r1", "10.0.2.2"), ("r2", "10.0.3.2")):
        lab.exec(node, ["ip", "route", "add", "10.99.0.0/16", "via", gateway])
    lab.nft(
        "r2",
        """
        table inet lab {
            chain forward {
                type filter hook forward priority 0;
                ip daddr 10.99.0.0/16 reject with icmp type admin-prohibited
            }
        }
    """,
    )
    for _ in range(2):  # the same answer every time: nothing is rate-limited away
        process, report = trace_json(lab, "10.99.0.1", "-n")
        assert process.returncode == 1
        assert report["reached"] is False and report["end"] == "unreachable"
        # r2 checks the TTL before its firewall: TTL 2 expires there, TTL 3 is refused.
        assert hop_addresses(report) == ["10.0.1.2", "10.0.2.2", "10.0.2.2"]
        assert {p["reply"] for p in report["hops"][1]["probes"]} == {"time-exceeded"}
        assert {p["reply"] for p in report["hops"][2]["probes"]} == {"admin-prohibited"}
    text = lab.tracekit("10.99.0.1", "-n").stdout.splitlines()
    assert len(text) == 4 and text[-1].count("!X") == 3, text
