"""DNS traces on the namespace network, against a real DNS server (dnsmasq) in the lab's
server namespace, and against a closed port (needs root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracekit.testing import Lab
from tracekit.testing.pytest_plugin import require

pytestmark = pytest.mark.netns


def start_dnsmasq(lab: Lab, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """Start dnsmasq in the lab's server namespace, answering on the server's addresses.

    It reads no configuration of the machine (no /etc/dnsmasq.conf, resolv.conf or hosts),
    forwards nothing, and is stopped with the lab.
    """
    require(shutil.which("dnsmasq") is not None, "dnsmasq is not installed (dnsmasq-base)")
    v4, v6 = lab.address("server", 4), lab.address("server", 6)
    command = [
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        "--bind-interfaces", f"--listen-address={v4}", f"--listen-address={v6}",
        "--except-interface=lo", f"--port={port}", f"--pid-file={workdir / f'dnsmasq-{port}.pid'}",
        f"--host-record={lab.name('server')},{v4},{v6}", "--user=nobody", "--group=nogroup",
        "--log-facility=-",
    ]  # fmt: skip
    process = lab.popen("server", command, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listening = lab.exec("server", ["ss", "-Hlun", f"sport = :{port}"]).stdout
        if v4 in listening and v6 in listening:
            return process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.terminate()
    assert process.stderr is not None
    pytest.fail(f"dnsmasq did not start: {process.stderr.read().decode()}", pytrace=False)


@pytest.fixture(scope="module")
def dns_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """client - r1 - r2 (silent) - r3 - server, with dnsmasq on the server's port 53."""
    require(os.geteuid() == 0, "the namespace network needs root")
    workdir = tmp_path_factory.mktemp("dnsmasq")
    with Lab(routers=3, silent=[2], ratelimit=0) as lab:
        process = start_dnsmasq(lab, 53, workdir)
        yield lab
    assert process.poll() is not None, "dnsmasq outlived its lab"


def trace(lab: Lab, *args: str) -> tuple[int, dict[str, Any]]:
    process = lab.tracekit(*args, "-n", "--probe", "dns", "--format", "json")
    assert process.stdout, process.stderr
    return process.returncode, json.loads(process.stdout)


def hop_addresses(report: dict[str, Any]) -> list[str | None]:
    out: list[str | None] = []
    for hop in report["hops"]:
        addresses = {p["address"] for p in hop["probes"] if p["address"]}
        assert len(addresses) <= 1, addresses
        out.append(addresses.pop() if addresses else None)
    return out


def replies(report: dict[str, Any]) -> list[set[str | None]]:
    return [{p["reply"] for p in hop["probes"]} for hop in report["hops"]]


@pytest.mark.parametrize("version", [4, 6])
def test_dns_queries_find_every_hop_and_the_dns_server_answers(dns_lab: Lab, version: int) -> None:
    code, report = trace(dns_lab, dns_lab.address("server", version), f"-{version}")
    assert code == 0 and report["reached"] is True and report["end"] == "reached"
    assert hop_addresses(report) == dns_lab.expected_hops(version)  # r2 silent: None
    assert replies(report) == [{"time-exceeded"}, {None}, {"time-exceeded"}, {"dns-reply"}]
    assert report["probe"]["method"] == "dns"
    assert report["probe"]["parameters"]["port"] == 53
    assert report["probe"]["parameters"]["query"] == ". NS"


@pytest.mark.parametrize("version", [4, 6])
def test_without_raw_sockets_the_same_hops_and_the_dns_server(dns_lab: Lab, version: int) -> None:
    # --unprivileged: the queries go out of the socket that holds the source port; routers'
    # errors come from its error queue, the server's responses to the socket itself.
    server = dns_lab.address("server", version)
    code, report = trace(dns_lab, server, f"-{version}", "--unprivileged")
    assert code == 0 and report["reached"] is True
    assert hop_addresses(report) == dns_lab.expected_hops(version)
    assert replies(report) == [{"time-exceeded"}, {None}, {"time-exceeded"}, {"dns-reply"}]


def test_the_text_output_marks_the_dns_replies(dns_lab: Lab) -> None:
    process = dns_lab.tracekit(dns_lab.address("server"), "-n", "--probe", "dns")
    assert process.returncode == 0, process.stderr
    last = process.stdout.splitlines()[-1]
    assert last.startswith(" 4  10.0.4.2  ") and last.count("ms [dns]") == 3, last


@pytest.mark.parametrize("version", [4, 6])
def test_a_closed_dns_port_is_reached_through_port_unreachable(
    tracekit_lab: Lab, version: int
) -> None:
    # Nothing listens on port 53 in the shared lab's server.
    code, report = trace(tracekit_lab, tracekit_lab.address("server", version), f"-{version}")
    assert code == 0 and report["reached"] is True
    assert hop_addresses(report) == tracekit_lab.expected_hops(version)
    assert replies(report)[-1] == {"port-unreachable"}


def test_port_chooses_the_dns_server_s_port(
    dns_lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> None:
    start_dnsmasq(dns_lab, 5353, tmp_path_factory.mktemp("dnsmasq"))  # stopped with the lab
    server = dns_lab.address("server")
    code, report = trace(dns_lab, server, "--port", "5353")
    assert code == 0 and report["probe"]["parameters"]["port"] == 5353
    assert replies(report)[-1] == {"dns-reply"}
    code, report = trace(dns_lab, server, "-p", "5354")  # nothing there
    assert code == 0 and replies(report)[-1] == {"port-unreachable"}


def test_two_runs_at_once_never_mix(dns_lab: Lab) -> None:
    server = dns_lab.address("server")
    command = [sys.executable, "-m", "tracekit", server, "-n", "--probe", "dns", "-q", "6",
               "--format", "json"]  # fmt: skip
    runs = [
        subprocess.Popen(dns_lab.command("client", command), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    reports = [json.loads(run.communicate(timeout=60)[0]) for run in runs]
    ports = {report["probe"]["parameters"]["source_port"] for report in reports}
    assert len(ports) == 2
    for report in reports:
        assert report["reached"] is True
        assert hop_addresses(report) == dns_lab.expected_hops(4)
        # Every probe of an answering hop got its own answer: none lost to the other run.
        for hop, expected in zip(report["hops"], dns_lab.expected_hops(4), strict=True):
            assert all((p["address"] is None) == (expected is None) for p in hop["probes"])
