"""Several targets in one run, on a namespace network whose every target's path is known.

Routers ``rK`` (not the silent one) also own a whole prefix (``ip route add local``):
``10.9.K.0/24`` and ``2001:db8:9K::/64``, so any address in it is a target that ends at
hop K.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ripe.atlas.sagan import TracerouteResult

from conftest import Pane, hop_addresses, plugin_site
from tracekit.targets import shard_of
from tracekit.testing import Lab
from tracekit.testing.pytest_plugin import require

pytestmark = pytest.mark.netns

ROUTERS = 3
SILENT = 2
#: The routers that own a prefix of targets (the silent one would answer for none).
OWNERS = (1, 3)


def prefix(k: int, version: int) -> str:
    return f"10.9.{k}.0/24" if version == 4 else f"2001:db8:9{k}::/64"


def target(k: int, host: int, version: int) -> str:
    return f"10.9.{k}.{host}" if version == 4 else f"2001:db8:9{k}::{host}"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    import os

    require(os.geteuid() == 0, "the namespace network needs root")
    with Lab(routers=ROUTERS, silent=[SILENT], ratelimit=0) as lab:
        for k in OWNERS:
            for version in (4, 6):
                lab.own_prefix(f"r{k}", prefix(k, version))
        yield lab


def expected(lab: Lab, k: int, address: str, version: int) -> list[str | None]:
    """The hops to ``address``, owned by router ``k``: the routers before it, then itself."""
    hops = lab.expected_hops(version, dst=f"r{k}")
    return [*hops[:-1], address]


def jsonl(process: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.stdout.splitlines()]


def test_many_targets_mixed_versions_exact_hops_and_failures_going_on(
    lab: Lab, trace_schema: dict[str, Any]
) -> None:
    known = {
        target(k, host, version): (k, version)
        for k in OWNERS
        for version in (4, 6)
        for host in (5, 77)
    }
    server = {lab.address("server", v): v for v in (4, 6)}
    failing = ["nosuch.tracekit.test", "10.77.0.1", "2001:db8:77::1"]  # no name; no route
    targets = [*known, failing[0], *server, *failing[1:]]
    process = lab.tracekit(*targets, "-n", "--format", "jsonl", "-w", "1,3,10")
    assert process.returncode == 1, process.stderr
    reports = jsonl(process)
    assert sorted(r["target"] for r in reports) == sorted(targets)  # one line each
    # Written as each trace finishes: the targets that failed before probing come first.
    assert [r["target"] for r in reports[:3]] == failing
    for report in reports:
        jsonschema.validate(report, trace_schema, format_checker=jsonschema.FormatChecker())
        name = report["target"]
        if name in known:
            k, version = known[name]
            assert report["ip_version"] == version and report["reached"], report
            assert hop_addresses(report) == expected(lab, k, name, version)
        elif name in server:
            assert hop_addresses(report) == lab.expected_hops(server[name])
        else:
            assert report["end"] == "error" and report["reached"] is False
            assert report["address"] is None and report["hops"] == []
    errors = process.stderr.splitlines()
    assert len(errors) == 3, process.stderr
    assert errors[0].startswith("tracekit: nosuch.tracekit.test: cannot resolve")
    assert errors[1] == "tracekit: 10.77.0.1: no route to 10.77.0.1"
    reports_by_target = {r["target"]: r for r in reports}
    assert reports_by_target["10.77.0.1"]["error"] == "no route to 10.77.0.1"
    # Each target had its own identity: a new ICMP identifier per trace.
    identifiers = {r["probe"]["parameters"]["identifier"] for r in reports if r["address"]}
    assert len(identifiers) == len(known) + len(server)


def test_json_array_text_and_exit_0_when_every_target_is_reached(lab: Lab, tmp_path: Path) -> None:
    targets = [target(3, 9, 4), target(1, 9, 6), lab.address("server", 4)]
    out = tmp_path / "all.json"
    process = lab.tracekit(*targets, "-n", "--out", str(out))
    assert (process.returncode, process.stderr) == (0, "")
    blocks = process.stdout.split("\n\n")
    assert len(blocks) == 3
    names = []
    for block in blocks:  # each trace whole, in the order they finished
        lines = block.strip().splitlines()
        name = lines[0].split()[2]
        assert lines[0].startswith(f"tracekit to {name} ({name}), 30 hops max")
        assert lines[-1].split()[1] == name
        names.append(name)
    assert sorted(names) == sorted(targets)
    reports = {r["target"]: r for r in json.loads(out.read_text())}
    assert [len(reports[t]["hops"]) for t in targets] == [3, 1, 4]
    assert hop_addresses(reports[targets[0]])[1] is None  # the silent router


def test_a_single_target_keeps_its_json_object_and_event_stream(lab: Lab) -> None:
    single = lab.tracekit(target(3, 4, 4), "-n", "--format", "json")
    assert single.returncode == 0 and isinstance(json.loads(single.stdout), dict)
    events = jsonl(lab.tracekit(target(3, 4, 4), "-n", "--format", "jsonl"))
    assert [e["type"] for e in events] == ["start", "hop", "hop", "hop", "finish"]
    one_of_several = lab.tracekit("--targets", "-", "--format", "json", "-n",
                                  input=target(3, 4, 4) + "\n")  # fmt: skip
    assert isinstance(json.loads(one_of_several.stdout), list)


def test_targets_file_stdin_and_shards_partition_it(lab: Lab, tmp_path: Path) -> None:
    listed = [target(k, h, v) for k in (1, 3) for h in range(10, 16) for v in (4, 6)]
    text = "# the hitlist\n\n" + "\n".join(f"{t}   # r{t}" for t in listed) + "\n"
    (tmp_path / "list").write_text(text)
    everything = jsonl(lab.tracekit("--targets", "-", "-n", "--format", "jsonl", "-q", "1",
                                    input=text))  # fmt: skip
    assert sorted(r["target"] for r in everything) == sorted(listed)
    seen: list[str] = []
    for k in (1, 2, 3):
        shard = lab.tracekit("--targets", str(tmp_path / "list"), "--shard", f"{k}/3", "-n",
                             "--format", "jsonl", "-q", "1")  # fmt: skip
        assert shard.returncode == 0, shard.stderr
        names = [r["target"] for r in jsonl(shard)]
        assert sorted(names) == sorted(t for t in listed if shard_of(t, 3) == k)
        seen += names
    assert sorted(seen) == sorted(listed)  # the union is the list, and no target twice


@pytest.mark.parametrize("version", [4, 6])
def test_atlas_results_read_by_sagan_match_the_hops(lab: Lab, tmp_path: Path, version: int) -> None:
    targets = [target(3, 21, version), lab.address("server", version), target(1, 21, version)]
    report = tmp_path / "t.json"
    process = lab.tracekit(*targets, "-n", "--format", "atlas", "--out", str(report))
    assert process.returncode == 0, process.stderr
    results = json.loads(process.stdout)
    reports = json.loads(report.read_text())
    assert len(results) == len(reports) == 3
    for raw, trace in zip(results, reports, strict=True):
        result = TracerouteResult(raw, on_malformation=TracerouteResult.ACTION_FAIL)
        assert not result.is_malformed and not result.is_error
        assert result.af == version and result.protocol == "ICMP"
        assert result.destination_address == trace["address"]
        assert result.ip_path == [[p["address"] for p in h["probes"]] for h in trace["hops"]]
        assert result.destination_ip_responded and result.is_success
    (first,) = [r for r in results if r["dst_addr"] == targets[0]]
    assert first["result"][SILENT - 1]["result"] == [{"x": "*"}] * 3
    single = lab.tracekit(targets[0], "-n", "--format", "atlas")
    assert TracerouteResult(json.loads(single.stdout)).total_hops == 3


def _elapsed(reports: list[dict[str, Any]]) -> float:
    from datetime import datetime

    started = min(datetime.fromisoformat(r["started"]) for r in reports)
    finished = max(datetime.fromisoformat(r["finished"]) for r in reports)
    return (finished - started).total_seconds()


@pytest.mark.parametrize("rate", [None, 40])
def test_a_rate_caps_probes_over_all_targets_and_every_trace_stays_exact(
    lab: Lab, rate: int | None
) -> None:
    """--rate PPS (default 100 with several targets) holds for the whole run: N probes over
    all the targets take at least (N - 1) / PPS seconds; the hops are as exact as ever."""
    targets = {target(3, 21, 4): (3, 4), target(1, 21, 6): (1, 6), target(3, 22, 6): (3, 6)}
    option = [] if rate is None else ["--rate", str(rate)]
    process = lab.tracekit(*targets, "-n", "-q", "2", "--format", "jsonl", *option)
    assert process.returncode == 0, process.stderr
    reports = jsonl(process)
    for report in reports:
        k, version = targets[report["target"]]
        assert hop_addresses(report) == expected(lab, k, report["target"], version)
    sent = sum(len(hop["probes"]) for r in reports for hop in r["hops"])  # a lower bound:
    assert sent == 2 * (3 + 1 + 3)  # those past the destination are not shown
    assert _elapsed(reports) >= (sent - 1) / (rate or 100)


def test_one_target_with_a_rate_is_capped_too(lab: Lab) -> None:
    process = lab.tracekit(target(3, 23, 4), "-n", "--format", "json", "--rate", "25")
    assert process.returncode == 0, process.stderr
    report = json.loads(process.stdout)
    assert hop_addresses(report) == expected(lab, 3, target(3, 23, 4), 4)
    sent = sum(len(hop["probes"]) for hop in report["hops"])
    assert sent == 3 * 3
    assert _elapsed([report]) >= (sent - 1) / 25


def test_a_rate_that_is_no_number_is_one_line_and_exit_2(lab: Lab) -> None:
    process = lab.tracekit(target(3, 24, 4), "--rate", "0")
    assert process.returncode == 2
    assert process.stderr.splitlines() == [
        "tracekit: Invalid value for '--rate': 0.0 is not in the range x>0. "
        "(see 'tracekit trace --help')"
    ]


def test_a_progress_bar_on_a_terminal_with_the_traces_printed_above_it(
    lab: Lab, pane: Pane
) -> None:
    targets = [target(3, 31, 4), target(1, 31, 6), target(3, 32, 6)]
    # one trace after another, slowly: "1/3" stays on the screen for a whole trace (at once,
    # with TTLs in a random order, the three can finish within one look at the screen)
    command = [sys.executable, "-m", "tracekit", *targets, "-n", "-q", "2", "--rate", "8",
               "--parallel", "1"]  # fmt: skip
    pane.start(lab.command("client", command))
    during = pane.wait_for(lambda screen: re.search(r"1/3 targets", screen) is not None)
    assert re.search(r"1/3 targets\s+\d+ probes/s", during), during
    screen = pane.wait_for(lambda screen: "rc=0" in screen)
    lines = [line for line in screen.splitlines() if line.strip()]
    bar = [i for i, line in enumerate(lines) if "targets" in line and "probes/s" in line]
    assert bar == [len(lines) - 2], screen  # one bar, last, whole: 3/3, then the shell's rc
    assert "3/3 targets" in lines[bar[0]]
    headers = [line for line in lines if line.startswith("tracekit to")]
    assert sorted(h.split()[2] for h in headers) == sorted(targets)  # every trace, above it


def test_no_progress_bar_when_standard_error_is_not_a_terminal(lab: Lab) -> None:
    process = lab.tracekit(target(3, 33, 4), target(1, 33, 4), "-n", "--format", "jsonl")
    assert process.returncode == 0 and process.stderr == ""


def _intervals(reports: list[dict[str, Any]]) -> list[tuple[float, float]]:
    from datetime import datetime

    return sorted(
        (datetime.fromisoformat(r["started"]).timestamp(),
         datetime.fromisoformat(r["finished"]).timestamp())
        for r in reports
    )  # fmt: skip


def test_traces_are_in_flight_at_once_and_one_by_one_with_parallel_1(lab: Lab) -> None:
    """Each trace waits a whole second for its silent last hop (``-m 2 -w 1``): by default
    the traces are in flight together; ``--parallel 1`` runs them one after another."""
    targets = [target(3, 41, 4), target(3, 42, 6), target(3, 43, 4)]
    args = ["-n", "-m", "2", "-w", "1", "-q", "1", "--format", "jsonl"]
    together = jsonl(lab.tracekit(*targets, *args))
    alone = jsonl(lab.tracekit(*targets, *args, "--parallel", "1"))
    for reports in (together, alone):
        assert sorted(r["target"] for r in reports) == sorted(targets)
        for report in reports:
            first = expected(lab, 3, report["target"], report["ip_version"])[0]
            assert hop_addresses(report) == [first, None] and not report["reached"]
    spans = _intervals(together)
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all at once
    spans = _intervals(alone)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))


@pytest.mark.parametrize("version", [4, 6])
def test_the_same_target_twice_is_two_exact_traces_of_their_own(lab: Lab, version: int) -> None:
    """Two traces of one address share the sockets and the destination: each tells its
    answers by its own identity, so both are whole and exact."""
    name = target(3, 51, version)
    reports = jsonl(lab.tracekit(name, name, name, "-n", "--format", "jsonl"))
    assert len(reports) == 3
    for report in reports:
        assert hop_addresses(report) == expected(lab, 3, name, version)
        assert all(len(hop["probes"]) == 3 for hop in report["hops"])
        assert all(p["address"] for hop in report["hops"][::2] for p in hop["probes"])
    assert len({r["probe"]["parameters"]["identifier"] for r in reports}) == 3


def test_the_shared_sockets_hold_seconds_of_answers(lab: Lab) -> None:
    """The sockets a run of many targets shares get a receive buffer far beyond
    ``rmem_max`` (``SO_RCVBUFFORCE``, as root): at 10,000 probes a second, the answers that
    come while the run starts traces or writes them out must not be dropped (they were,
    with 2,250 targets: traces showed their first hops unanswered)."""
    script = (
        "import socket\n"
        "from tracekit.sockets import SHARED_RCVBUF, RawTransport\n"
        "for version, local in ((4, '127.0.0.1'), (6, '::1')):\n"
        "    with RawTransport(version, None, local, buffer=SHARED_RCVBUF) as t:\n"
        "        for s in t.receivers:\n"
        "            print(s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= SHARED_RCVBUF)\n"
    )
    process = lab.exec("client", [sys.executable, "-c", script])
    assert process.stdout.split() == ["True", "True"]


def test_hundreds_of_targets_at_a_high_rate_are_all_exact(lab: Lab, tmp_path: Path) -> None:
    """Many traces in flight at 10,000 probes a second: no answer is lost on the way in
    (the run reads its sockets while it starts traces), so every trace is exact."""
    known = {
        target(k, host, version): (k, version)
        for k in OWNERS
        for version in (4, 6)
        for host in range(100, 175)
    }
    listing = tmp_path / "targets.txt"
    listing.write_text("".join(f"{name}\n" for name in known))
    tmp_path.chmod(0o755)
    process = lab.tracekit(
        "--targets", str(listing), "-n", "-q", "3", "--format", "jsonl", "--rate", "10000"
    )
    assert process.returncode == 0, process.stderr
    reports = jsonl(process)
    assert sorted(r["target"] for r in reports) == sorted(known)
    for report in reports:
        k, version = known[report["target"]]
        assert hop_addresses(report) == expected(lab, k, report["target"], version)


def test_memory_stays_flat_however_many_targets(lab: Lab, tmp_path: Path) -> None:
    """Nothing is held beyond the traces in flight: six times the targets, with as many in
    flight (``--parallel``), peak at the same memory (GNU time reads the run's own peak)."""
    peaks = []
    for count in (400, 2400):
        names = [target(OWNERS[i % 2], 1 + i, 6) for i in range(count)]  # /64s: room enough
        listing = tmp_path / f"targets-{count}.txt"
        listing.write_text("".join(f"{name}\n" for name in names))
        report = tmp_path / f"rss-{count}"
        tmp_path.chmod(0o755)
        command = ["/usr/bin/time", "-f", "%M", "-o", str(report), sys.executable, "-m",
                   "tracekit", "--targets", str(listing), "-n", "-q", "1", "--format",
                   "jsonl", "--rate", "10000", "--parallel", "200"]  # fmt: skip
        process = lab.exec("client", command, check=False, timeout=120)
        assert process.returncode == 0, process.stderr
        assert len(process.stdout.splitlines()) == count
        peaks.append(int(report.read_text().split()[-1]) / 1024)
    assert peaks[1] - peaks[0] < 6, f"peak RSS {peaks[0]:.1f} MiB, then {peaks[1]:.1f} MiB"


#: A third party's output that can show one trace per stream only.
ONE_TRACE_PLUGIN = """
from tracekit import hookimpl
from tracekit.outputs import Output


class OneTrace(Output):
    several_traces = False

    def finish(self, trace):
        self.target.stream.write(f"the one trace: {trace.target} reached={trace.reached}\\n")


@hookimpl
def tracekit_register_outputs(register):
    register("onetrace", OneTrace, "one trace a stream (a test plugin)", [".one"])
"""


@pytest.fixture(scope="module")
def one_trace_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway distribution (a module and its ``.dist-info``) that registers the output."""
    return plugin_site(
        tmp_path_factory.mktemp("site"), "onetrace_plugin", ONE_TRACE_PLUGIN, "onetrace"
    )


@pytest.mark.parametrize("where", ["stdout", "out"])
def test_an_output_that_shows_one_trace_is_refused_for_several_targets(
    lab: Lab, one_trace_site: Path, tmp_path: Path, where: str
) -> None:
    """An output whose class says ``several_traces = False`` takes one target; with several
    (even a list of one: ``--targets``) the run is refused before anything is sent: one
    line, exit status 2, no output. With one target it works as ever."""
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(one_trace_site), *sys.path])}
    env.pop("TRACEKIT_DISABLE_PLUGIN_AUTOLOAD", None)
    out = tmp_path / "trace.one"
    chosen = ["--format", "onetrace"] if where == "stdout" else ["--out", str(out)]
    one, two = target(3, 61, 4), target(1, 61, 6)
    listing = tmp_path / "targets.txt"
    listing.write_text(f"{one}\n")
    for targets in ([one, two], ["--targets", str(listing)]):
        process = lab.tracekit(*targets, "-n", *chosen, env=env)
        assert process.returncode == 2, process.stderr
        assert process.stderr.splitlines() == [
            "tracekit: output 'onetrace' shows one trace: give it one target"
        ]
        assert process.stdout == "" and not out.exists()
    process = lab.tracekit(one, "-n", *chosen, env=env)
    assert process.returncode == 0, process.stderr
    shown = process.stdout if where == "stdout" else out.read_text()
    assert shown == f"the one trace: {one} reached=True\n"
