"""UDP, TCP and ICMP probes on the namespace network: exact hops, what the destination said,
flow-stable paths through a load-balancing router, and agreement with the system traceroute."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from conftest import hop_addresses
from tracekit.testing import DIAMOND, Lab

pytestmark = pytest.mark.netns


def trace_json(lab: Lab, *args: str) -> tuple[int, dict[str, Any]]:
    process = lab.tracekit(*args, "-n", "--format", "json")
    assert process.stdout, process.stderr
    return process.returncode, json.loads(process.stdout)


def replies(report: dict[str, Any], ttl: int) -> set[str | None]:
    return {p["reply"] for p in report["hops"][ttl - 1]["probes"]}


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize(
    "args,final",
    [
        (["--probe", "udp"], "port-unreachable"),
        (["--probe", "udp", "--paris"], "port-unreachable"),
        (["--probe", "udp", "-p", "53"], "port-unreachable"),
        (["--probe", "tcp"], "syn-ack"),
        (["--probe", "tcp", "-p", "443"], "syn-ack"),
        (["--probe", "tcp", "-p", "22"], "rst"),
        (["--probe", "icmp", "--paris"], "echo-reply"),
    ],
)
def test_probe_shows_every_hop_and_what_the_destination_said(
    tracekit_lab: Lab, version: int, args: list[str], final: str
) -> None:
    code, report = trace_json(tracekit_lab, tracekit_lab.address("server", version), *args)
    assert code == 0 and report["reached"] is True
    assert hop_addresses(report) == tracekit_lab.expected_hops(version)
    assert replies(report, 1) == replies(report, 3) == {"time-exceeded"}
    assert replies(report, 2) == {None}  # the silent router stays silent
    assert replies(report, 4) == {final}


def test_tcp_text_says_open_or_closed(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    open_port = tracekit_lab.tracekit(server, "-n", "--probe", "tcp").stdout.splitlines()
    closed = tracekit_lab.tracekit(server, "-n", "--probe", "tcp", "-p", "22").stdout
    assert open_port[0].endswith("tcp probes") and open_port[-1].count("[open]") == 3
    assert closed.splitlines()[-1].count("[closed]") == 3


@pytest.mark.parametrize("option", [["-p", "80"], ["--source-port", "40000"]])
def test_a_port_option_with_icmp_is_refused_not_ignored(
    tracekit_lab: Lab, option: list[str]
) -> None:
    process = tracekit_lab.tracekit(tracekit_lab.address("server"), "-n", *option)
    assert process.returncode == 2 and process.stdout == ""
    name = "--port" if option[0] == "-p" else "--source-port"
    assert process.stderr == f"tracekit: {name} does not apply to icmp probes\n"


def test_tcp_leaves_no_half_open_connection(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    _, report = trace_json(tracekit_lab, server, "--probe", "tcp", "-q", "5")
    assert report["reached"]
    # The server answered every SYN that reached it with a SYN-ACK; our kernel reset each.
    listing = tracekit_lab.exec("server", ["ss", "-Htan", "state", "syn-recv"]).stdout
    assert listing.strip() == ""
    established = tracekit_lab.exec("server", ["ss", "-Htan", "state", "established"]).stdout
    assert established.strip() == ""


@pytest.mark.parametrize("version", [4, 6])
def test_udp_answer_from_an_open_port_reaches_the_destination(
    tracekit_lab_factory: Callable[..., Lab], version: int
) -> None:
    # A server answering UDP on every port classic probes go to (33434 and up).
    lab = tracekit_lab_factory(routers=2, silent=[1], udp_ports=range(33434, 33434 + 128))
    code, report = trace_json(lab, lab.address("server", version), "--probe", "udp")
    assert code == 0 and report["reached"] is True
    assert hop_addresses(report) == lab.expected_hops(version)
    assert replies(report, 3) == {"udp-reply"}
    text = lab.tracekit(lab.address("server", version), "-n", "--probe", "udp").stdout
    assert text.splitlines()[-1].count("[open]") == 3


def test_runs_at_once_use_their_own_source_ports(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    command = [sys.executable, "-m", "tracekit", server, "-n", "--format", "json", "-q", "8"]
    runs = [
        subprocess.Popen(
            tracekit_lab.command("client", [*command, "--probe", probe, *extra]),
            stdout=subprocess.PIPE,
            text=True,
        )
        for probe, extra in [("udp", []), ("udp", ["--paris"]), ("tcp", []), ("tcp", [])]
    ]
    reports = [json.loads(run.communicate(timeout=60)[0]) for run in runs]
    ports = [r["probe"]["parameters"]["source_port"] for r in reports]
    # Per protocol: a UDP and a TCP run may get the same number (the kernel's port spaces
    # are apart, and so are their answers); it happened once in CI.
    assert ports[0] != ports[1] and ports[2] != ports[3], ports
    for report in reports:
        assert hop_addresses(report) == tracekit_lab.expected_hops()
        assert all(
            sum(p["address"] is not None for p in hop["probes"]) == (8 if address else 0)
            for hop, address in zip(report["hops"], tracekit_lab.expected_hops(), strict=True)
        )


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("probe", ["udp", "tcp", "icmp"])
def test_admin_prohibited_is_shown_as_x_and_ends_the_trace(
    tracekit_lab_factory: Any, version: int, probe: str
) -> None:
    lab = tracekit_lab_factory(routers=2)
    reject = "icmp type admin-prohibited" if version == 4 else "icmpv6 type admin-prohibited"
    family = "ip" if version == 4 else "ip6"
    lab.nft("r2", f"""
        table inet lab {{
            chain forward {{
                type filter hook forward priority 0;
                {family} daddr {lab.address("server", version)} reject with {reject}
            }}
        }}
    """)  # fmt: skip
    server = lab.address("server", version)
    code, report = trace_json(lab, server, "--probe", probe)
    assert code == 1 and report["reached"] is False and report["end"] == "unreachable"
    # r2 checks the TTL before its firewall: TTL 2 expires there, TTL 3 is refused.
    r1, r2 = lab.address("r1", version), lab.address("r2", version)
    assert hop_addresses(report) == [r1, r2, r2]
    assert replies(report, 3) == {"admin-prohibited"}
    text = lab.tracekit(server, "-n", "--probe", probe).stdout.splitlines()
    assert len(text) == 4 and text[-1].count("!X") == 3


@pytest.fixture(scope="module")
def diamond() -> Any:
    from tracekit.testing.pytest_plugin import _require_root

    _require_root()
    # r1 spreads traffic to the server over r2a and r2b, hashing on ports as well.
    with Lab(topology=DIAMOND, multipath_hash=1) as lab:
        yield lab


@pytest.mark.parametrize("version", [4, 6])
def test_classic_udp_sees_both_branches_of_a_load_balancer(diamond: Lab, version: int) -> None:
    branches = diamond.hop_choices(version)[1]
    assert len(branches) == 2
    seen: set[str] = set()
    for _ in range(3):  # 10 ports a run; one branch only in all three runs: a 1-in-10^9 chance
        _, report = trace_json(diamond, diamond.address("server", version), "--probe", "udp",
                               "-q", "10")  # fmt: skip
        seen |= {p["address"] for p in report["hops"][1]["probes"]}
        if seen == branches:
            break
    assert seen == branches


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("args", [["--probe", "udp", "--paris"], ["--probe", "tcp"],
                                  ["--probe", "udp", "-p", "53"]])  # fmt: skip
def test_flow_stable_probes_keep_one_path(diamond: Lab, version: int, args: list[str]) -> None:
    choices = diamond.hop_choices(version)
    for _ in range(4):
        _, report = trace_json(diamond, diamond.address("server", version), *args, "-q", "10")
        path = hop_addresses(report)  # fails if any TTL shows two addresses
        assert all(address in options for address, options in zip(path, choices, strict=True))


@pytest.mark.parametrize("version", [4, 6])
def test_a_fixed_source_port_takes_the_same_path_every_run(diamond: Lab, version: int) -> None:
    server = diamond.address("server", version)
    args = ["--probe", "udp", "--paris", "--source-port", "45678", "-q", "4"]
    paths = {tuple(hop_addresses(trace_json(diamond, server, *args)[1])) for _ in range(4)}
    assert len(paths) == 1


def system_traceroute(lab: Lab, version: int, method: str) -> list[str | None]:
    if shutil.which("traceroute") is None:
        pytest.fail("the system traceroute is needed for this cross-check")
    server = lab.address("server", version)
    lines = lab.exec(
        "client", ["traceroute", f"-{version}", method, "-n", "-q", "3", server]
    ).stdout.splitlines()[1:]
    return [None if line.split()[1] == "*" else line.split()[1] for line in lines]


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("method,probe", [("-U", "udp"), ("-T", "tcp"), ("-I", "icmp")])
def test_same_hops_as_the_system_traceroute(
    tracekit_lab: Lab, version: int, method: str, probe: str
) -> None:
    theirs = system_traceroute(tracekit_lab, version, method)
    _, report = trace_json(tracekit_lab, tracekit_lab.address("server", version), "--probe", probe)
    assert hop_addresses(report) == theirs == tracekit_lab.expected_hops(version)


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("probe", ["icmp", "udp"])
def test_packet_size_sets_the_size_of_every_probe(
    tracekit_lab: Lab, probe: str, version: int
) -> None:
    server = tracekit_lab.address("server", version)
    code, report = trace_json(tracekit_lab, server, f"-{version}", "--probe", probe,
                              "--packet-size", "120")  # fmt: skip
    assert code == 0
    assert report["probe"]["parameters"]["packet_size"] == 120
    assert hop_addresses(report) == tracekit_lab.expected_hops(version)


def test_packet_size_is_refused_for_tcp_and_below_the_headers(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server", 6)
    for args, message in (
        (["--probe", "tcp", "--packet-size", "100"], "--packet-size does not apply to tcp probes"),
        (["-6", "--packet-size", "40"], "--packet-size 40 is too small: at least 50"),
    ):
        process = tracekit_lab.tracekit(server, *args)
        assert (process.returncode, process.stderr) == (2, f"tracekit: {message}\n")
        assert process.stdout == ""


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("probe", ["icmp", "udp", "tcp"])
def test_tos_marks_the_probes_on_the_wire(
    tracekit_lab_factory: Callable[..., Lab], probe: str, version: int
) -> None:
    lab = tracekit_lab_factory(routers=1)
    family = "ip" if version == 4 else "ip6"
    lab.nft("server", "table inet marks {\n chain input {\n type filter hook input priority 0;\n"
            f" {family} dscp ef counter\n }}\n}}\n")  # fmt: skip

    def marked() -> int:
        listing = lab.exec("server", ["nft", "list", "table", "inet", "marks"]).stdout
        return int(listing.split("counter packets ")[1].split()[0])

    server = lab.address("server", version)
    code, _ = trace_json(lab, server, f"-{version}", "--probe", probe)
    assert code == 0 and marked() == 0
    code, report = trace_json(lab, server, f"-{version}", "--probe", probe, "-t", "184")
    assert code == 0 and hop_addresses(report) == lab.expected_hops(version)
    assert marked() >= 3  # DSCP EF (184 = 46 << 2): every probe that reached the server
