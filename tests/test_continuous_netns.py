"""Continuous mode on a real network of namespaces: the report, JSON and JSON Lines, every
probe method, and loss that stays true under the kernel's ICMP rate limits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from tracekit.testing import Lab
from tracekit.testing.pytest_plugin import require

pytestmark = pytest.mark.netns

REPORT_HEADER = ["Loss%", "Snt", "Last", "Avg", "Best", "Wrst", "StDev", "Javg", "Lim%"]


def run_json(lab: Lab, *args: str, timeout: float = 90) -> dict[str, Any]:
    process = lab.tracekit(*args, "--format", "json", timeout=timeout)
    assert process.returncode in (0, 1), process.stderr
    assert process.stderr == ""
    report: dict[str, Any] = json.loads(process.stdout)
    return report


def hosts(report: dict[str, Any]) -> list[str | None]:
    return [hop["hosts"][0]["address"] if hop["hosts"] else None for hop in report["hops"]]


def test_report_is_mtr_layout_with_a_row_per_hop(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    process = tracekit_lab.tracekit(server, "-c", "3", "-i", "0.1", "-r", "-n")
    assert process.returncode == 0, process.stderr
    lines = process.stdout.splitlines()
    assert lines[0].startswith("Start: ")
    assert lines[1].startswith("HOST: ") and lines[1].split()[2:] == REPORT_HEADER
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == ["1.|--", "2.|--", "3.|--", "4.|--"]
    expected = tracekit_lab.expected_hops()
    assert [None if row[1] == "???" else row[1] for row in rows] == expected
    for row, address in zip(rows, expected, strict=True):
        if address is None:
            assert row[2:] == ["---", "3"]  # silent: its loss cannot be told
        else:
            assert row[2:4] == ["0.0%", "3"] and row[-1] == "0.0"
            assert all(float(cell) >= 0 for cell in row[4:])
    assert len(lines) == 6


def test_report_alone_implies_ten_rounds_and_uses_names(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    process = tracekit_lab.tracekit(server, "-r", "-i", "0.05")
    assert process.returncode == 0, process.stderr
    rows = [line.split() for line in process.stdout.splitlines()[2:]]
    assert rows[0][1] == "r1.tracekit.test" and rows[0][3] == "10"
    assert rows[-1][1] == "server.tracekit.test"


@pytest.mark.parametrize("version", [4, 6])
def test_json_carries_statistics_per_hop_and_host(
    tracekit_lab: Lab, version: int, trace_schema: dict[str, Any]
) -> None:
    server = tracekit_lab.address("server", version)
    report = run_json(tracekit_lab, server, f"-{version}", "-n", "-c", "4", "-i", "0.05")
    jsonschema.validate(report, trace_schema, format_checker=jsonschema.FormatChecker())
    assert (report["cycles"], report["interval"], report["rounds"]) == (4, 0.05, 4)
    assert report["reached"] and report["end"] == "reached"
    assert hosts(report) == tracekit_lab.expected_hops(version)
    for hop in report["hops"]:
        stats = hop["stats"]
        assert hop["probes"] == []
        assert stats["sent"] == 4
        if hop["silent"]:
            assert stats["received"] == 0 and stats["loss_pct"] is None
            continue
        assert (stats["received"], stats["lost"], stats["loss_pct"]) == (4, 0, 0.0)
        assert stats["rate_limited"] == 0
        assert 0 < stats["best_ms"] <= stats["avg_ms"] <= stats["worst_ms"]
        assert stats["stdev_ms"] >= 0 and stats["jmax_ms"] >= stats["javg_ms"] >= 0
        (host,) = hop["hosts"]
        assert host["stats"]["received"] == 4


@pytest.mark.parametrize("probe", ["icmp", "udp", "tcp"])
@pytest.mark.parametrize("version", [4, 6])
def test_every_probe_method_runs_in_rounds(tracekit_lab: Lab, probe: str, version: int) -> None:
    server = tracekit_lab.address("server", version)
    args = [server, f"-{version}", "-n", "--probe", probe, "-c", "3", "-i", "0.05"]
    report = run_json(tracekit_lab, *args)
    assert report["reached"], report["end"]
    assert hosts(report) == tracekit_lab.expected_hops(version)
    assert [h["stats"]["received"] for h in report["hops"]] == [
        0 if a is None else 3 for a in tracekit_lab.expected_hops(version)
    ]


def test_json_lines_stream_while_the_run_goes_on(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    command = [sys.executable, "-m", "tracekit", server, "-n", "-c", "0", "-i", "0.1"]
    process = subprocess.Popen(
        tracekit_lab.command("client", [*command, "--format", "jsonl"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as at a terminal, even where this test runs with SIGINT ignored (a background job)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    lines = [json.loads(process.stdout.readline()) for _ in range(4)]
    assert process.poll() is None  # still running: the lines came as it went
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=20)
    assert process.returncode == 130, stderr
    lines += [json.loads(line) for line in rest.splitlines()]
    types = [line["type"] for line in lines]
    assert types[0] == "start" and types[-1] == "finish"
    rounds = [line for line in lines if line["type"] == "round"]
    assert [r["round"] for r in rounds] == list(range(1, len(rounds) + 1))
    assert len(rounds) >= 3
    last = rounds[-1]
    assert [h["ttl"] for h in last["hops"]] == [1, 2, 3, 4]
    assert [r["ttl"] for r in rounds[0]["results"]] == [1, 2, 3, 4]
    report = lines[-1]["report"]
    assert report["end"] == "interrupted" and report["reached"] is True
    assert report["rounds"] >= len(rounds)
    # A round is reported once all its probes are settled, in order; the statistics fold
    # every answer as it comes, so they may hold answers of later rounds already (a round
    # still waiting for a give-up time while the next ones were answered), never fewer.
    first = last["hops"][0]["stats"]
    assert first["sent"] >= last["round"] and first["received"] <= first["sent"]


# -- ICMP rate limits: the routers keep the kernel's default ------------------------------


@pytest.fixture(scope="module")
def limited_lab() -> Any:
    """A chain of three routers with the kernel's default ICMP rate limit (a burst of about
    six errors, then one a second, per destination)."""
    require(os.geteuid() == 0, "the namespace network needs root")
    with Lab(routers=3, ratelimit=None) as lab:
        yield lab


def answering_loss(report: dict[str, Any]) -> list[float]:
    return [hop["stats"]["loss_pct"] for hop in report["hops"] if not hop["silent"]]


def test_back_to_back_runs_report_no_loss(limited_lab: Lab) -> None:
    server = limited_lab.address("server")
    for _ in range(3):
        report = run_json(limited_lab, server, "-n", "-c", "10")
        assert hosts(report) == limited_lab.expected_hops()
        assert answering_loss(report) == [0.0, 0.0, 0.0, 0.0], report["hops"]


def test_faster_than_the_budget_counts_withheld_answers_not_loss(limited_lab: Lab) -> None:
    time.sleep(6)  # let the routers' budgets fill again after the test before
    server = limited_lab.address("server")
    report = run_json(limited_lab, server, "-n", "-c", "30", "-i", "0.1")
    assert hosts(report) == limited_lab.expected_hops()
    assert answering_loss(report) == [0.0, 0.0, 0.0, 0.0], report["hops"]
    routers = report["hops"][:-1]
    assert sum(h["stats"]["rate_limited"] for h in routers) > 0
    destination = report["hops"][-1]["stats"]
    assert destination["sent"] == destination["received"] == 30
    text = limited_lab.tracekit(server, "-n", "-c", "20", "-i", "0.1", "-r").stdout
    assert "Lim%: answers withheld by the hop's ICMP rate limit" in text


def test_real_loss_shows_behind_the_lossy_router_and_not_before(
    tracekit_lab_factory: Callable[..., Lab],
) -> None:
    lab = tracekit_lab_factory(routers=3, ratelimit=None)
    server = lab.address("server")
    # r2 drops 30 % of what it forwards towards the server (the probes, not the answers).
    lab.nft(
        "r2",
        "table ip loss {\n chain forward {\n type filter hook forward priority 0;\n"
        f" ip daddr {server} numgen random mod 100 < 30 drop\n }}\n}}\n",
    )
    # 30 s: r3 is paced to its ICMP budget, one probe a second, and its share must rest on
    # enough probes: with about 32 it shows under 5 % once in 2,000 runs or so; with the 13
    # of a 12-second run, once in 25 (seen in CI).
    report = run_json(lab, server, "-n", "-c", "150", "-i", "0.2", timeout=120)
    assert hosts(report) == lab.expected_hops()
    loss = answering_loss(report)
    assert loss[:2] == [0.0, 0.0], report["hops"]  # r1, and r2 itself
    # The server answers every probe that reaches it (150 of them): about 30 % lost.
    assert 15 <= loss[3] <= 45, report["hops"]
    assert 5 <= loss[2] <= 65, report["hops"]
