"""Lists of targets and shards, and the RIPE Atlas format, without a network."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from ripe.atlas.sagan import TracerouteResult

from tracekit.errors import BadInput
from tracekit.model import Hop, MplsLabel, ProbeInfo, ProbeResult, Trace
from tracekit.outputs import OutputTarget
from tracekit.outputs.atlas import AtlasOutput, trace_to_atlas
from tracekit.outputs.jsonout import trace_to_dict
from tracekit.targets import in_shard, parse_lines, parse_shard, shard_of


def test_lines_comments_and_blanks() -> None:
    lines = ["# a hitlist\n", "\n", "  10.0.0.1  \n", "host.example # the web\n", "2001:db8::1"]
    assert list(parse_lines(lines)) == ["10.0.0.1", "host.example", "2001:db8::1"]


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_partition_the_list(n: int) -> None:
    targets = [f"10.{i // 256}.{i % 256}.1" for i in range(500)] + ["a.example", "2001:db8::9"]
    shards = [list(in_shard(targets, (k, n))) for k in range(1, n + 1)]
    assert sorted(t for shard in shards for t in shard) == sorted(targets)  # union, no overlap
    assert sum(len(s) for s in shards) == len(targets)
    for shard in shards:
        assert shard == [t for t in targets if t in set(shard)]  # order kept
    if n > 1:
        assert all(shards)  # a hash spreads 500 targets over every shard


def test_a_target_keeps_its_shard_when_the_list_changes() -> None:
    before = {t: shard_of(t, 4) for t in ("a.example", "b.example", "10.0.0.1")}
    longer = ["new.example", *before, "other.example"]
    for target in longer:
        if target in before:
            assert shard_of(target, 4) == before[target]
    assert shard_of("a.example", 4) == shard_of("a.example", 4)


@pytest.mark.parametrize("value", ["0/3", "4/3", "1", "a/b", "1/0", "-1/2"])
def test_bad_shards(value: str) -> None:
    with pytest.raises(BadInput):
        parse_shard(value)


def test_shard_values() -> None:
    assert parse_shard("2/5") == (2, 5)


def _trace(**kwargs: object) -> Trace:
    hops = [
        Hop(1, [ProbeResult("10.0.1.2", 0.5, "time-exceeded", 64, size=36)] * 2),
        Hop(2, [ProbeResult(), ProbeResult()]),
        Hop(
            3,
            [
                ProbeResult("10.0.3.2", 1.25, "port-unreachable", 62, size=36),
                ProbeResult(
                    "10.0.3.2",
                    1.5,
                    "port-unreachable",
                    62,
                    size=36,
                    mpls=[MplsLabel(16, 0, True, 1)],
                ),
            ],
        ),
    ]
    now = datetime.now(timezone.utc)
    options: dict[str, object] = {
        "target": "dst.example", "address": "10.0.3.2", "ip_version": 4,
        "probe": ProbeInfo("udp", {"packet_size": 60, "paris": False}), "source": "10.0.1.1",
        "queries": 2, "started": now, "finished": now, "hops": hops, "end": "reached",
        "reached": True,
    }  # fmt: skip
    options.update(kwargs)
    return Trace(**options)  # type: ignore[arg-type]


def test_atlas_result_reads_in_sagan() -> None:
    trace = _trace()
    result = TracerouteResult(trace_to_atlas(trace), on_malformation=TracerouteResult.ACTION_FAIL)
    assert not result.is_malformed and not result.is_error
    assert result.ip_path == [[p.address for p in hop.probes] for hop in trace.hops]
    assert result.destination_ip_responded and result.is_success
    assert (result.af, result.protocol, result.size, result.total_hops) == (4, "UDP", 32, 3)
    assert result.hops[2].packets[1].icmp_header.objects[0]["mpls"][0]["label"] == 16
    assert result.hops[0].packets[0].size == 36


def test_atlas_marks_errors_before_the_destination() -> None:
    trace = _trace(end="unreachable", reached=False)
    trace.hops[2].probes[0].reply = "host-unreachable"
    trace.hops[2].probes[0].address = "10.0.2.9"
    packet = trace_to_atlas(trace)["result"][2]["result"][0]
    assert packet["err"] == "H"


def test_a_failed_target_is_an_atlas_error_and_a_json_record() -> None:
    failed = _trace(
        address=None, ip_version=None, source=None, hops=[], end="error", reached=False,
        error="cannot resolve 'dst.example': Name or service not known",
        probe=ProbeInfo("icmp"),
    )  # fmt: skip
    atlas = trace_to_atlas(failed)
    result = TracerouteResult(atlas)
    assert result.is_error and not result.is_malformed
    assert atlas["dnserr"] == failed.error
    record = trace_to_dict(failed)
    assert record["address"] is None and record["end"] == "error"
    assert record["error"] == failed.error


def test_atlas_output_writes_one_object_or_records_of_a_list() -> None:
    stream = io.StringIO()
    AtlasOutput(OutputTarget(stream)).finish(_trace())
    assert json.loads(stream.getvalue())["type"] == "traceroute"
    assert stream.getvalue().endswith("}\n")
    stream = io.StringIO()
    AtlasOutput(OutputTarget(stream, several=True)).finish(_trace())
    assert stream.getvalue().endswith("}")


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, input=stdin
    )


def test_no_target_at_all_is_a_usage_error() -> None:
    process = _run("-n")
    assert process.returncode == 2
    assert "Missing argument 'HOST'." in process.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "5/4"], "K must be between 1 and N"),
        (["-c", "3"], "continuous mode (-c, -r) traces one target"),
        (["--targets", "/nonexistent/list"], "cannot read /nonexistent/list"),
    ],
)
def test_several_targets_refuse_before_sending(args: list[str], message: str) -> None:
    process = _run("192.0.2.1", "192.0.2.2", *args)
    assert process.returncode == 2, process.stderr
    assert message in process.stderr
    assert process.stderr.count("\n") == 1


def test_empty_shard_is_an_empty_array() -> None:
    # Every target is in shard 1 of 1; none is in a shard with no targets.
    targets = "# nothing but comments\n\n"
    process = _run("--targets", "-", "--format", "json", stdin=targets)
    assert (process.returncode, process.stderr) == (0, "")
    assert json.loads(process.stdout) == []


def test_atlas_suffix_is_not_taken_for_json() -> None:
    from tracekit.plugins import Registry, get_plugin_manager

    registry = Registry.collect(get_plugin_manager())
    assert registry.output_for_path("x.atlas.json").name == "atlas"
    assert registry.output_for_path("x.json").name == "json"
