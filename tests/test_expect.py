"""--expect rules (tracekit.expect): parsing, verdicts on traces built by hand, and the
reports that show them (JUnit, Markdown, JSON, GitHub annotations)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from junitparser import Failure, JUnitXml, SystemOut, TestSuite

from tracekit.errors import BadInput
from tracekit.expect import (
    Baseline,
    evaluate,
    failure_lines,
    github_lines,
    load_baseline,
    parse,
    prepare,
)
from tracekit.model import AutonomousSystem, Expectation, Hop, Host, ProbeInfo, ProbeResult, Trace
from tracekit.outputs.jsonout import trace_to_dict
from tracekit.outputs.junit import junit
from tracekit.outputs.markdown import markdown
from tracekit.stats import SAMPLE, HopStats, RttStats

DEST = "10.0.4.2"
ASNS = {"10.0.1.2": 64500, "10.0.3.2": 64501, DEST: 64502}


def hop(ttl: int, address: str | None, rtts: list[float | None], asn: bool = True) -> Hop:
    """A one-shot hop: one probe per round trip (``None``: lost)."""
    probes = [
        ProbeResult(address if r is not None else None, r, "time-exceeded" if r else None)
        for r in rtts
    ]
    h = Hop(ttl, probes)
    if address is not None and any(r is not None for r in rtts):
        stats = RttStats()
        for r in rtts:
            if r is not None:
                stats.add(r)
        system = AutonomousSystem(number=ASNS[address], organization="x") if asn else None
        h.hosts[address] = Host(address, stats=stats, asn=system)
    return h


def make_trace(reached: bool = True, end: str = "reached", asn: bool = True, **hops: Any) -> Trace:
    """client - r1 - r2 (silent) - r3 - server, as the shared lab; ``hops`` replaces some."""
    path = [
        hop(1, "10.0.1.2", [0.5, 0.4, 0.6], asn),
        hop(2, None, [None, None, None]),
        hop(3, "10.0.3.2", [1.0, 1.2, 1.1], asn),
        hop(4, DEST, [2.0, 9.0, 3.0], asn),
    ]
    for key, value in hops.items():
        path[int(key[1:]) - 1] = value
    started = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    return Trace(
        target="server.test",
        address=DEST,
        ip_version=4,
        probe=ProbeInfo("icmp", {"identifier": 7, "packet_size": 60, "paris": False}),
        source="10.0.1.1",
        hops=[h for h in path if h is not None],
        reached=reached,
        end=end,
        started=started,
        finished=started + timedelta(seconds=0.25),
    )


def verdict(rule: str, trace: Trace | None = None, baseline: Baseline | None = None) -> Any:
    (result,) = evaluate([parse(rule)], trace or make_trace(), baseline)
    return result.passed, result.seen


# -- the grammar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,kind,limit",
    [
        ("reached", "reached", None),
        ("REACHED", "reached", None),
        ("hops<=12", "hops", 12),
        (" hops <= 3 ", "hops", 3),
        ("rtt<=50ms", "rtt", 50),
        ("rtt<=0.5MS", "rtt", 0.5),
        ("loss<=1%", "loss", 1),
        ("loss<=0.5 %", "loss", 0.5),
        ("via=10.0.3.2", "via", None),
        ("via=10.0.0.0/8", "via", None),
        ("via=2001:db8::/32", "via", None),
        ("not-via=AS64500", "not-via", None),
        ("not-via=as64500", "not-via", None),
        ("same-path", "same-path", None),
    ],
)
def test_rules_that_parse(text: str, kind: str, limit: float | None) -> None:
    rule = parse(text)
    assert (rule.text, rule.kind, rule.limit) == (text.strip(), kind, limit)


@pytest.mark.parametrize(
    "text,words",
    [
        ("hops<12", "write hops<=N"),
        ("hops<=0", "1 to 255"),
        ("hops<=2.5", "whole number"),
        ("rtt<=50", "write rtt<=Nms"),
        ("rtt<=50s", "write rtt<=Nms"),
        ("loss<=1", "write loss<=P%"),
        ("loss<=120%", "0 to 100"),
        ("via=", "write via=X"),
        ("via=example.org", "no address, prefix"),
        ("via=10.0.0.1/8", "host bits set; the prefix is 10.0.0.0/8"),
        ("not-via=AS99999999999", "4294967295"),
        ("fast", "use reached, hops<=N, rtt<=Nms, loss<=P%, via=X, not-via=X or same-path"),
        ("", "is not a rule"),
    ],
)
def test_rules_that_do_not_parse_say_why_in_one_line(text: str, words: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse(text)
    message = str(caught.value)
    assert words in message and "\n" not in message


def test_same_path_and_baseline_come_together(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="same-path needs --baseline"):
        prepare([parse("same-path")], None)
    report = tmp_path / "base.json"
    report.write_text(json.dumps(trace_to_dict(make_trace())))
    with pytest.raises(BadInput, match="--baseline is only used by --expect same-path"):
        prepare([parse("reached")], str(report))
    assert prepare([parse("reached")], None) is None
    baseline = prepare([parse("same-path")], str(report))
    assert baseline is not None and baseline.destination == 4 and baseline.reached


def test_baselines_that_cannot_be_used_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"cannot read the baseline .*missing\.json: No such file"):
        load_baseline(str(tmp_path / "missing.json"))
    for content in ("not json", "[]", '{"hops": 3}', '{"hops": [{"ttl": 1}]}'):
        (tmp_path / "bad.json").write_text(content)
        with pytest.raises(BadInput, match="is not a tracekit JSON report"):
            load_baseline(str(tmp_path / "bad.json"))


def test_a_baseline_can_be_json_lines(tmp_path: Path) -> None:
    report = trace_to_dict(make_trace())
    lines = [{"type": "start"}, {"type": "finish", "schema_version": 1, "report": report}]
    (tmp_path / "run.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    baseline = load_baseline(str(tmp_path / "run.jsonl"))
    assert baseline.hops == {
        1: {"10.0.1.2"},
        2: frozenset(),
        3: {"10.0.3.2"},
        4: {DEST},
    }


# -- each rule, true and false ----------------------------------------------------------------


def test_reached() -> None:
    assert verdict("reached") == (True, "reached at hop 4")
    lost = make_trace(reached=False, end="max-ttl", h4=None)
    assert verdict("reached", lost) == (False, "not reached within 30 hops")
    refused = make_trace(reached=False, end="unreachable", h4=None)
    assert verdict("reached", refused) == (False, "not reached: unreachable at hop 3")


def test_hops() -> None:
    assert verdict("hops<=4") == (True, "4 hops")
    assert verdict("hops<=3") == (False, "4 hops")
    lost = make_trace(reached=False, end="max-ttl", h4=None)
    assert verdict("hops<=30", lost) == (False, "not reached within 30 hops")


def test_rtt_is_the_median_of_the_destinations_answers() -> None:
    # 2.0, 9.0, 3.0: the median is 3.0 (the mean would be 4.667)
    assert verdict("rtt<=3ms") == (True, "median 3.000 ms of 3 answers")
    assert verdict("rtt<=2.9ms") == (False, "median 3.000 ms of 3 answers")
    one = make_trace(h4=hop(4, DEST, [None, 7.5, None]))
    assert verdict("rtt<=10ms", one) == (True, "median 7.500 ms of 1 answer")
    lost = make_trace(reached=False, end="max-ttl", h4=None)
    assert verdict("rtt<=1000ms", lost)[0] is False


def test_median_of_a_long_run_is_that_of_the_latest_answers() -> None:
    stats = RttStats()
    assert stats.median_ms is None
    for rtt in (1.0, 4.0, 2.0, 3.0):
        stats.add(rtt)
    assert stats.median_ms == 2.5
    for _ in range(SAMPLE):
        stats.add(10.0)
    assert stats.median_ms == 10.0 and len(stats.samples) == SAMPLE
    trace = make_trace()
    trace.hops[3].hosts[DEST].stats = stats
    assert verdict("rtt<=10ms", trace) == (True, f"median 10.000 ms of the latest {SAMPLE} answers")


def test_loss_one_shot_and_over_rounds() -> None:
    assert verdict("loss<=0%") == (True, "loss 0.0% (0 of 3 probes lost)")
    lossy = make_trace(h4=hop(4, DEST, [2.0, None, None]))
    assert verdict("loss<=50%", lossy) == (False, "loss 66.7% (2 of 3 probes lost)")
    # continuous mode: the hop's statistics over the rounds
    rounds = make_trace()
    dest = rounds.hops[3]
    dest.stats = HopStats(sent=20, unanswered=1)
    dest.stats.add(2.0)
    assert verdict("loss<=5%", rounds) == (True, "loss 5.0% (1 of 20 probes lost)")
    assert verdict("loss<=4.9%", rounds) == (False, "loss 5.0% (1 of 20 probes lost)")
    lost = make_trace(reached=False, end="max-ttl", h4=None)
    assert verdict("loss<=100%", lost) == (False, "not reached within 30 hops")


def test_via_an_address_a_prefix_or_an_as() -> None:
    assert verdict("via=10.0.3.2") == (True, "10.0.3.2 at hop 3")
    assert verdict("via=10.0.3.0/24") == (True, "10.0.3.2 at hop 3")
    assert verdict("via=AS64501") == (True, "AS64501 at hop 3 (10.0.3.2)")
    assert verdict("via=10.0.9.9") == (
        False,
        "not on the path (10.0.1.2 * 10.0.3.2 10.0.4.2)",
    )
    assert verdict("via=AS64999") == (
        False,
        "not on the path (AS by hop: AS64500 * AS64501 AS64502)",
    )
    assert verdict("via=2001:db8::/32")[0] is False  # another IP version matches nothing


def test_not_via_tells_which_hops_it_could_not_see() -> None:
    assert verdict("not-via=AS64501") == (False, "AS64501 at hop 3 (10.0.3.2)")
    assert verdict("not-via=10.0.3.2") == (False, "10.0.3.2 at hop 3")
    assert verdict("not-via=10.0.2.2") == (
        True,
        "not on the path (10.0.1.2 * 10.0.3.2 10.0.4.2); silent hops not seen: 2",
    )
    assert verdict("not-via=AS64999")[0] is True


def test_as_rules_fail_without_as_numbers() -> None:
    plain = make_trace(asn=False)
    for rule in ("via=AS64501", "not-via=AS64999"):
        assert verdict(rule, plain) == (
            False,
            "no AS numbers known: an ASN database is needed (--asn-db)",
        )


def baseline_of(trace: Trace, tmp_path: Path) -> Baseline:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(trace_to_dict(trace)))
    return load_baseline(str(path))


def test_same_path(tmp_path: Path) -> None:
    baseline = baseline_of(make_trace(), tmp_path)
    assert verdict("same-path", make_trace(), baseline) == (
        True,
        "same responders at 3 of 4 hops",
    )
    moved = make_trace(h3=hop(3, "10.0.3.2", [1.0]))
    moved.hops[2].hosts = {"10.0.9.2": Host("10.0.9.2")}
    assert verdict("same-path", moved, baseline) == (
        False,
        "hop 3: 10.0.9.2, in the baseline 10.0.3.2",
    )
    longer = make_trace(h4=hop(4, "10.0.3.2", [1.0]))
    longer.hops.append(hop(5, DEST, [2.0]))
    assert verdict("same-path", longer, baseline) == (
        False,
        "destination at hop 5, at hop 4 in the baseline",
    )
    lost = make_trace(reached=False, end="max-ttl", h4=None)
    assert verdict("same-path", lost, baseline) == (
        False,
        "not reached within 30 hops; the baseline reached hop 4",
    )


def test_same_path_does_not_compare_silent_hops(tmp_path: Path) -> None:
    baseline = baseline_of(make_trace(), tmp_path)
    quiet = make_trace(h1=hop(1, None, [None, None, None]))
    assert verdict("same-path", quiet, baseline) == (
        True,
        "same responders at 2 of 4 hops; silent now, not compared: hop 1",
    )
    talkative = make_trace(h2=hop(2, "10.0.1.2", [0.5]))
    talkative.hops[1].hosts = {"10.0.2.2": Host("10.0.2.2")}
    assert verdict("same-path", talkative, baseline) == (
        True,
        "same responders at 3 of 4 hops; silent in the baseline: hop 2",
    )


def test_a_load_balanced_hop_matches_when_a_responder_is_shared(tmp_path: Path) -> None:
    baseline = baseline_of(make_trace(), tmp_path)
    balanced = make_trace()
    balanced.hops[2].hosts["10.0.3.9"] = Host("10.0.3.9")
    assert verdict("same-path", balanced, baseline)[0] is True


# -- how verdicts are reported ----------------------------------------------------------------


def judged(*rules: str) -> Trace:
    trace = make_trace()
    trace.expectations = evaluate([parse(r) for r in rules], trace)
    return trace


def test_one_stderr_line_per_failed_rule() -> None:
    trace = judged("reached", "hops<=3", "via=10.0.9.9")
    assert trace.expectations is not None
    assert failure_lines(trace.expectations) == [
        "tracekit: --expect hops<=3 failed: 4 hops",
        "tracekit: --expect via=10.0.9.9 failed: not on the path (10.0.1.2 * 10.0.3.2 10.0.4.2)",
    ]


def test_github_annotations_escape_what_workflow_commands_need() -> None:
    results = [
        Expectation("reached", True, "reached at hop 4"),
        Expectation("via=2001:db8::1", False, "100% lost,\nreally"),
    ]
    assert github_lines(results, make_trace()) == [
        "::error title=tracekit --expect via=2001%3Adb8%3A%3A1::"
        "via=2001:db8::1 failed for server.test: 100%25 lost,%0Areally"
    ]


def suite_out(suite: TestSuite) -> str:
    """The suite's own system-out (junitparser reads a testcase's, not a suite's)."""
    text: str = suite.child(SystemOut).text  # type: ignore[no-untyped-call]
    return text


def test_junit_has_one_testcase_per_rule(tmp_path: Path) -> None:
    path = tmp_path / "report.xml"
    path.write_text(junit(judged("reached", "hops<=3", "rtt<=100ms", "not-via=AS64501")))
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.tests, suite.failures, suite.errors) == (4, 2, 0)
    assert suite.name == "tracekit to server.test"
    cases = {case.name: case for case in suite}
    assert list(cases) == ["reached", "hops<=3", "rtt<=100ms", "not-via=AS64501"]
    assert cases["reached"].is_passed and cases["rtt<=100ms"].is_passed
    (failure,) = cases["hops<=3"].result
    assert isinstance(failure, Failure)
    assert failure.message == "hops<=3 failed: 4 hops"
    assert " 2  * * *" in suite_out(suite)
    assert " 4  10.0.4.2 (10.0.4.2)" in suite_out(suite)
    assert cases["hops<=3"].system_out == suite_out(suite)
    assert cases["reached"].system_out is None
    assert float(suite.time) == pytest.approx(0.25)


def test_junit_without_rules_checks_reached(tmp_path: Path) -> None:
    lost = make_trace(reached=False, end="max-ttl", h4=None)
    path = tmp_path / "report.xml"
    path.write_text(junit(lost))
    (suite,) = list(JUnitXml.fromfile(str(path)))
    assert (suite.tests, suite.failures) == (1, 1)
    (case,) = list(suite)
    assert case.name == "reached"
    assert case.result[0].message == "reached failed: not reached within 30 hops"


def test_junit_survives_hostile_names(tmp_path: Path) -> None:
    trace = judged("reached")
    trace.hops[0].hosts["10.0.1.2"].name = "evil\x1b[31m\x00]]></system-out>"
    path = tmp_path / "report.xml"
    path.write_text(junit(trace))
    (suite,) = list(JUnitXml.fromfile(str(path)))
    assert "evil\\x1b[31m\\x00]]></system-out>" in suite_out(suite)


def test_markdown_has_the_hops_and_the_rules() -> None:
    trace = judged("reached", "hops<=3")
    trace.hops[0].hosts["10.0.1.2"].name = "r1|<b>*x*</b>"
    lines = markdown(trace).splitlines()
    assert lines[0] == "### tracekit to server.test (10.0.4.2): reached at hop 4"
    assert lines[2] == "| Hop | Host | AS | Loss | Sent | Avg ms | Best ms | Worst ms |"
    assert lines[4] == (
        "| 1 | r1\\|&lt;b&gt;\\*x\\*&lt;/b&gt; (10.0.1.2) | AS64500 | 0.0% | 3 "
        "| 0.500 | 0.400 | 0.600 |"
    )
    assert lines[5] == "| 2 | \\* |  |  | 3 |  |  |  |"
    assert lines[7] == "| 4 | 10.0.4.2 | AS64502 | 0.0% | 3 | 4.667 | 2.000 | 9.000 |"
    assert lines[9] == "**Expectations: 1 of 2 failed**"
    assert lines[11:] == [
        "| Rule | Result | Seen |",
        "|---|---|---|",
        "| `reached` | ✅ passed | reached at hop 4 |",
        "| `hops<=3` | ❌ failed | 4 hops |",
    ]
    assert "Expectations" not in markdown(make_trace())


def test_json_report_has_the_verdicts_and_fits_the_schema(trace_schema: dict[str, Any]) -> None:
    report = trace_to_dict(judged("reached", "hops<=3"))
    assert report["expectations"] == [
        {"rule": "reached", "passed": True, "seen": "reached at hop 4"},
        {"rule": "hops<=3", "passed": False, "seen": "4 hops"},
    ]
    jsonschema.validate(report, trace_schema)
    assert "expectations" not in trace_to_dict(make_trace())


def test_the_help_shows_the_grammar_the_parser_accepts() -> None:
    from tracekit.cli import EXPECT_GRAMMAR
    from tracekit.expect import GRAMMAR

    assert EXPECT_GRAMMAR == GRAMMAR
