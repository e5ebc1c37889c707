"""Tracing as an ordinary user, with no capabilities: ping sockets and UDP sockets on the
namespace network."""

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

from conftest import hop_addresses
from tracekit.testing import MESHED, Lab
from tracekit.testing.pytest_plugin import require

pytestmark = pytest.mark.netns

CHECKOUT = Path(__file__).resolve().parent.parent
#: The nobody user, with no capabilities at all.
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
          "--inh-caps=-all", "--bounding-set=-all"]  # fmt: skip
NOTICE = (
    "tracekit: no privilege for raw sockets: tracing without it "
    "(--unprivileged says so and skips this line)\n"
)


@pytest.fixture(scope="session")
def nobody_python() -> Iterator[Path]:
    """A Python with tracekit installed that the nobody user can run (this test's own
    Python may live in root's private home)."""
    require(os.geteuid() == 0 and shutil.which("setpriv") is not None, "needs root and setpriv")
    system = shutil.which("python3", path="/usr/bin:/usr/local/bin") or sys.executable
    where = Path("/tmp") / f"tracekit-nobody-{os.getpid()}"
    subprocess.run([system, "-m", "venv", str(where)], check=True, capture_output=True)
    subprocess.run(
        [str(where / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         str(CHECKOUT)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    os.chmod(where, 0o755)
    yield where / "bin" / "python"
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """The usual chain, with ping sockets allowed for every group in the client."""
    require(os.geteuid() == 0, "the namespace network needs root")
    with Lab(routers=3, silent=[2], ratelimit=0) as built:
        built.exec("client", ["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"])
        yield built


def as_nobody(
    lab: Lab, python: Path, *args: str, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    command = [*NOBODY, "env", "HOME=/nonexistent", str(python), "-m", "tracekit", *args]
    return lab.exec("client", command, check=False, cwd="/", timeout=60, **kwargs)


def report_of(process: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert process.stdout, process.stderr
    report: dict[str, Any] = json.loads(process.stdout)
    return report


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("probe", ["icmp", "udp", "tcp"])
def test_an_ordinary_user_traces_with_exact_hops(
    lab: Lab, nobody_python: Path, probe: str, version: int
) -> None:
    server = lab.address("server", version)
    process = as_nobody(lab, nobody_python, server, f"-{version}", "-n", "--probe", probe,
                        "--format", "json")  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert process.stderr == NOTICE  # chosen because raw sockets were refused, and said once
    report = report_of(process)
    assert hop_addresses(report) == lab.expected_hops(version)
    for hop, expected in zip(report["hops"], lab.expected_hops(version), strict=True):
        rtts = [p["rtt_ms"] for p in hop["probes"]]
        if expected is None:
            assert rtts == [None, None, None]
        else:  # kernel timestamps: real, small round trips
            assert all(0 < rtt < 100 for rtt in rtts), rtts
    last = report["hops"][-1]["probes"][0]["reply"]
    assert last == {"icmp": "echo-reply", "udp": "port-unreachable", "tcp": "syn-ack"}[probe]


def test_tcp_to_a_closed_port_and_no_connection_left(lab: Lab, nobody_python: Path) -> None:
    server = lab.address("server")
    closed = as_nobody(lab, nobody_python, server, "-n", "--probe", "tcp", "-p", "81",
                       "--format", "json")  # fmt: skip
    assert closed.returncode == 0, closed.stderr
    report = report_of(closed)
    assert hop_addresses(report) == lab.expected_hops()
    assert {p["reply"] for p in report["hops"][-1]["probes"]} == {"rst"}
    # connections to the open port were reset at once: none open, none waiting to close
    listing = lab.exec("server", ["ss", "-Htan", "state", "all", "sport", "= :80"]).stdout
    assert [line for line in listing.splitlines() if "LISTEN" not in line] == []


@pytest.mark.parametrize("version", [4, 6])
def test_flow_stable_udp_and_continuous_mode_work_unprivileged(
    lab: Lab, nobody_python: Path, version: int
) -> None:
    server = lab.address("server", version)
    paris = as_nobody(lab, nobody_python, server, f"-{version}", "-n", "--unprivileged",
                      "--probe", "udp", "--paris", "--format", "json")  # fmt: skip
    assert paris.returncode == 0 and paris.stderr == ""  # --unprivileged: no notice
    assert hop_addresses(report_of(paris)) == lab.expected_hops(version)
    rounds = as_nobody(lab, nobody_python, server, f"-{version}", "-n", "--unprivileged",
                       "-c", "3", "-i", "0.1", "--format", "json")  # fmt: skip
    assert rounds.returncode == 0, rounds.stderr
    report = report_of(rounds)
    assert [h["stats"]["received"] for h in report["hops"]] == [3, 0, 3, 3]


def test_three_unprivileged_runs_and_a_raw_one_at_once_are_exact(
    lab: Lab, nobody_python: Path
) -> None:
    server = lab.address("server")
    args = [server, "-n", "-q", "6", "--format", "json"]
    nobody = [*NOBODY, "env", "HOME=/nonexistent", str(nobody_python), "-m", "tracekit"]
    commands = [nobody + args] * 3 + [[sys.executable, "-m", "tracekit", *args]]
    runs = [
        subprocess.Popen(lab.command("client", c), stdout=subprocess.PIPE, text=True, cwd="/")
        for c in commands
    ]
    reports = [json.loads(run.communicate(timeout=60)[0]) for run in runs]
    identifiers = {r["probe"]["parameters"]["identifier"] for r in reports}
    assert len(identifiers) == 4
    for report in reports:
        assert hop_addresses(report) == lab.expected_hops()
        for hop, expected in zip(report["hops"], lab.expected_hops(), strict=True):
            # every probe of an answering hop got its own answer, none taken by another run
            assert all((p["address"] is None) == (expected is None) for p in hop["probes"])


def test_what_cannot_work_unprivileged_is_one_line(lab: Lab, nobody_python: Path) -> None:
    server = lab.address("server")
    tcp = as_nobody(lab, nobody_python, server, "--unprivileged", "--probe", "tcp", "--paris")
    assert tcp.returncode == 2 and tcp.stdout == ""
    assert tcp.stderr == (
        "tracekit: --paris does not work for tcp probes without privilege: each probe has a "
        "source port of its own (--probe udp keeps one)\n"
    )
    raw = as_nobody(lab, nobody_python, server, "--raw")
    assert raw.returncode == 3 and len(raw.stderr.splitlines()) == 1
    assert "raw sockets need privilege" in raw.stderr and "setcap cap_net_raw+ep" in raw.stderr
    # without --unprivileged, it says both: how to get privilege, and what works without
    auto = as_nobody(lab, nobody_python, server, "--probe", "tcp", "--source-port", "40000")
    assert auto.returncode == 3 and len(auto.stderr.splitlines()) == 1
    assert "setcap cap_net_raw+ep" in auto.stderr and "--probe udp keeps one" in auto.stderr


def test_ping_sockets_refused_names_the_sysctl(tracekit_lab: Lab, nobody_python: Path) -> None:
    # The shared lab keeps the kernel's default ping_group_range ("1 0": nobody may).
    server = tracekit_lab.address("server")
    process = as_nobody(tracekit_lab, nobody_python, server)
    assert process.returncode == 3 and len(process.stderr.splitlines()) == 1, process.stderr
    assert "net.ipv4.ping_group_range" in process.stderr
    assert "sudo sysctl -w net.ipv4.ping_group_range='0 2147483647'" in process.stderr
    assert "--probe udp" in process.stderr
    udp = as_nobody(tracekit_lab, nobody_python, server, "-n", "--probe", "udp",
                    "--format", "json")  # fmt: skip
    assert udp.returncode == 0 and hop_addresses(report_of(udp)) == tracekit_lab.expected_hops()


def test_many_targets_unprivileged(lab: Lab, nobody_python: Path) -> None:
    targets = [lab.address("server"), lab.address("r3"), lab.address("server", 6)]
    process = as_nobody(lab, nobody_python, *targets, "-n", "--unprivileged", "--probe", "udp",
                        "--format", "json")  # fmt: skip
    assert process.returncode == 0, process.stderr
    reports = json.loads(process.stdout)
    assert [r["address"] for r in reports] == targets
    assert hop_addresses(reports[0]) == lab.expected_hops()
    assert hop_addresses(reports[1]) == lab.expected_hops(dst="r3")
    assert hop_addresses(reports[2]) == lab.expected_hops(6)


@pytest.fixture(scope="module")
def mesh() -> Iterator[Lab]:
    """Load-balanced paths that cross (routers hashing on ports, each with its own seed, as
    tests/test_multipath.py has them), ping sockets allowed."""
    require(os.geteuid() == 0, "the namespace network needs root")
    with Lab(topology=MESHED, multipath_hash=1, ratelimit=0, single_return=True,
             hash_seeds=True) as built:  # fmt: skip
        built.exec("client", ["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"])
        yield built


def mda_found(report: dict[str, Any]) -> tuple[list[set[str]], set[tuple[int, str, str]]]:
    hosts = [{h["address"] for h in hop["hosts"]} for hop in report["hops"]]
    return hosts, {(k["ttl"], k["from"], k["to"]) for k in report["links"]}


@pytest.mark.parametrize("version", [4, 6])
def test_mda_with_udp_finds_the_mesh_unprivileged(
    mesh: Lab, nobody_python: Path, version: int
) -> None:
    """The UDP socket sends each flow to its own destination port: flows vary as on the
    raw path, and the routers spread them (over IPv6 each hashing for itself: the socket
    sends flow label 0, so no hash of the sender's rides along)."""
    truth = mesh.hop_choices(version), mesh.hop_links(version)
    server = mesh.address("server", version)
    for _ in range(3):  # the rule may miss a branch with its stated chance (5 %)
        process = as_nobody(mesh, nobody_python, server, f"-{version}", "-n", "--mda",
                            "--format", "json")  # fmt: skip
        assert process.returncode == 0 and process.stderr == NOTICE, process.stderr
        report = report_of(process)
        hosts, links = mda_found(report)
        assert all(h <= t for h, t in zip(hosts, truth[0], strict=True)) and links <= truth[1]
        if (hosts, links) == truth:
            break
    assert (hosts, links) == truth
    assert report["probe"]["method"] == "udp" and report["probes_sent"] > 0


def test_mda_with_icmp_runs_unprivileged_and_invents_nothing(
    mesh: Lab, nobody_python: Path
) -> None:
    """Ping sockets send the Paris checksums of the flows; Linux routers hash echo requests
    on their identifier, the same for a whole trace, so one branch shows: and no link that
    is not there."""
    process = as_nobody(mesh, nobody_python, mesh.address("server"), "-n", "--mda",
                        "--probe", "icmp", "--format", "json")  # fmt: skip
    assert process.returncode == 0 and process.stderr == NOTICE, process.stderr
    report = report_of(process)
    hosts, links = mda_found(report)
    assert [len(h) for h in hosts] == [1, 1, 1, 1, 1]
    assert all(h <= t for h, t in zip(hosts, mesh.hop_choices(), strict=True))
    assert links and links <= mesh.hop_links()
    assert len({p["flow"] for hop in report["hops"] for p in hop["probes"]}) > 1


def test_mda_with_tcp_is_refused_unprivileged(mesh: Lab, nobody_python: Path) -> None:
    server = mesh.address("server")
    tcp = as_nobody(mesh, nobody_python, server, "--mda", "--probe", "tcp", "--unprivileged")
    assert tcp.returncode == 2 and tcp.stdout == ""
    assert tcp.stderr == (
        "tracekit: --mda does not work for tcp probes without privilege: each probe is a "
        "connection of its own, with a random hash load balancers may follow "
        "(--probe udp varies its flows)\n"
    )
    # without --unprivileged: the fix for privilege, and why it is needed, on one line
    auto = as_nobody(mesh, nobody_python, server, "--mda", "--probe", "tcp")
    assert auto.returncode == 3 and len(auto.stderr.splitlines()) == 1
    assert "setcap cap_net_raw+ep" in auto.stderr and "--probe udp varies" in auto.stderr


def _cpu_and_wall(lab: Lab, *args: str) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of ``tracekit ARGS`` in the client."""
    command = lab.command("client", [sys.executable, "-m", "tracekit", *args])
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    assert os.waitstatus_to_exitcode(status) == 0, process.stderr.read() if process.stderr else ""
    return usage.ru_utime + usage.ru_stime, wall


@pytest.mark.parametrize("probe", ["tcp", "udp"])
def test_waiting_between_rounds_unprivileged_costs_no_cpu(lab: Lab, probe: str) -> None:
    """Between rounds the transport sleeps: a socket that polls as ready with nothing to
    read (the TCP probes' reserved port, unconnected) must not make the driver spin."""
    server = lab.address("server", 4)
    common = [server, "-n", "--unprivileged", "--probe", probe, "--report", "-i", "0.5"]
    short_cpu, short_wall = _cpu_and_wall(lab, *common, "-c", "1")
    long_cpu, long_wall = _cpu_and_wall(lab, *common, "-c", "6")
    assert long_wall - short_wall > 1.0  # five intervals of 0.5 s, less start-up noise
    assert long_cpu - short_cpu < 0.5 * (long_wall - short_wall)  # spinning: about 1
