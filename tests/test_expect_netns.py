"""--expect rules on a real routed network of namespaces: exit statuses, the lines on
standard error, JUnit, Markdown, GitHub annotations, same-path against a baseline."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from junitparser import JUnitXml

from tracekit.testing import Lab

pytestmark = pytest.mark.netns


def no_github() -> dict[str, str]:
    """The environment without GitHub Actions' marker (these tests may run under it)."""
    return {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}


def run(lab: Lab, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("env", no_github())
    return lab.tracekit(lab.address("server"), "-n", *args, **kwargs)


def failures(process: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in process.stderr.splitlines() if "--expect" in line]


@pytest.mark.parametrize(
    "rule,code,seen",
    [
        ("reached", 0, None),
        ("hops<=4", 0, None),
        ("hops<=3", 5, "4 hops"),
        ("rtt<=1000ms", 0, None),
        ("rtt<=0.0001ms", 5, "median "),
        ("loss<=0%", 0, None),
        ("via=10.0.3.2", 0, None),
        ("via=10.0.3.0/24", 0, None),
        ("via=10.0.9.0/24", 5, "not on the path (10.0.1.2 * 10.0.3.2 10.0.4.2)"),
        ("not-via=10.0.3.2", 5, "10.0.3.2 at hop 3"),
        ("not-via=10.0.2.2", 0, None),  # r2 is silent: it cannot be seen
        ("not-via=10.0.9.0/24", 0, None),
    ],
)
def test_each_rule_true_and_false(
    tracekit_lab: Lab, rule: str, code: int, seen: str | None
) -> None:
    process = run(tracekit_lab, "--expect", rule)
    assert process.returncode == code, process.stderr
    lines = failures(process)
    if seen is None:
        assert lines == []
    else:
        (line,) = lines
        assert line.startswith(f"tracekit: --expect {rule} failed: {seen}"), line


@pytest.mark.parametrize(
    "rule,code,seen",
    [
        ("via=AS64501", 0, None),
        ("via=AS64999", 5, "not on the path (AS by hop: AS64500 * AS64501 AS64502)"),
        ("not-via=AS64501", 5, "AS64501 at hop 3 (10.0.3.2)"),
        ("not-via=AS64999", 0, None),
    ],
)
def test_as_rules_with_the_asn_enrichment(
    tracekit_lab: Lab, tracekit_geodb: tuple[Path, Path], rule: str, code: int, seen: str | None
) -> None:
    city, asn = tracekit_geodb
    process = run(tracekit_lab, "--asn-db", str(asn), "--geoip-db", str(city), "--expect", rule)
    assert process.returncode == code, process.stderr
    assert failures(process) == (
        [] if seen is None else [f"tracekit: --expect {rule} failed: {seen}"]
    )


def test_as_rules_without_an_asn_database_fail(tracekit_lab: Lab) -> None:
    process = run(tracekit_lab, "--no-geo", "--expect", "not-via=AS64999")
    assert process.returncode == 5
    assert failures(process) == [
        "tracekit: --expect not-via=AS64999 failed: no AS numbers known: an ASN database is "
        "needed (--asn-db)"
    ]


def test_unreached_trace_fails_reached_and_keeps_status_1_when_rules_pass(
    tracekit_lab: Lab,
) -> None:
    process = run(tracekit_lab, "-m", "3", "--expect", "reached", "--expect", "hops<=30")
    assert process.returncode == 5
    assert failures(process) == [
        "tracekit: --expect reached failed: not reached within 3 hops",
        "tracekit: --expect hops<=30 failed: not reached within 3 hops",
    ]
    assert run(tracekit_lab, "-m", "3", "--expect", "not-via=10.0.9.9").returncode == 1
    assert run(tracekit_lab, "-m", "3").returncode == 1


def test_several_rules_one_line_per_failure_and_the_json_verdicts(
    tracekit_lab: Lab, trace_schema: dict[str, Any]
) -> None:
    rules = ["reached", "hops<=2", "loss<=0%", "via=10.0.8.8"]
    process = run(tracekit_lab, *(f"--expect={r}" for r in rules), "--format", "json")
    assert process.returncode == 5
    report = json.loads(process.stdout)
    jsonschema.validate(report, trace_schema, format_checker=jsonschema.FormatChecker())
    assert [(e["rule"], e["passed"]) for e in report["expectations"]] == [
        ("reached", True),
        ("hops<=2", False),
        ("loss<=0%", True),
        ("via=10.0.8.8", False),
    ]
    assert failures(process) == [
        "tracekit: --expect hops<=2 failed: 4 hops",
        "tracekit: --expect via=10.0.8.8 failed: not on the path (10.0.1.2 * 10.0.3.2 10.0.4.2)",
    ]
    assert process.stderr.count("\n") == 2


def test_continuous_mode_rtt_and_loss_over_the_rounds(tracekit_lab: Lab) -> None:
    process = run(
        tracekit_lab, "-c", "5", "-i", "0.05", "--format", "json",
        "--expect", "loss<=0%", "--expect", "rtt<=1000ms", "--expect", "rtt<=0.0001ms",
    )  # fmt: skip
    assert process.returncode == 5, process.stderr
    verdicts = json.loads(process.stdout)["expectations"]
    assert verdicts[0] == {
        "rule": "loss<=0%",
        "passed": True,
        "seen": "loss 0.0% (0 of 5 probes lost)",
    }
    assert verdicts[1]["passed"] and verdicts[1]["seen"].endswith(" of 5 answers")
    assert not verdicts[2]["passed"]


def test_loss_at_the_destination_fails_the_loss_rule(
    tracekit_lab_factory: Callable[..., Lab],
) -> None:
    lab = tracekit_lab_factory(routers=2)
    server = lab.address("server")
    # r2 drops half of what it forwards to the server, at random.
    lab.nft(
        "r2",
        "table ip loss {\n chain forward {\n type filter hook forward priority 0;\n"
        f" ip daddr {server} numgen random mod 100 < 50 drop\n }}\n}}\n",
    )
    args = ["-c", "20", "-i", "0.05", "-w", "0.5", "--format", "none"]
    process = run(lab, *args, "--expect", "loss<=10%", timeout=60)
    assert process.returncode == 5, process.stderr
    (line,) = failures(process)
    assert line.startswith("tracekit: --expect loss<=10% failed: loss "), line
    loss = float(line.split("loss ")[1].split("%")[0])
    assert 15 <= loss <= 85, line
    assert run(lab, *args, "--expect", "loss<=99%", timeout=60).returncode == 0


def test_junit_report_read_back_by_junitparser(tracekit_lab: Lab, tmp_path: Path) -> None:
    rules = ["--expect", "reached", "--expect", "hops<=3", "--expect", "via=10.0.3.2"]
    by_suffix, named = tmp_path / "report.xml", tmp_path / "junit.out"
    process = run(tracekit_lab, *rules, "--out", str(by_suffix), "--junit", str(named))
    assert process.returncode == 5
    assert by_suffix.read_text() == named.read_text()
    (suite,) = list(JUnitXml.fromfile(str(by_suffix)))
    assert (suite.tests, suite.failures, suite.errors) == (3, 1, 0)
    cases = {case.name: case for case in suite}
    assert cases["reached"].is_passed and cases["via=10.0.3.2"].is_passed
    (failure,) = cases["hops<=3"].result
    assert failure.message == "hops<=3 failed: 4 hops"
    assert " 2  * * *" in cases["hops<=3"].system_out
    assert process.stdout.splitlines()[1:] == cases["hops<=3"].system_out.splitlines()[1:]


def test_junit_without_rules_has_one_testcase_reached(tracekit_lab: Lab, tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    assert run(tracekit_lab, "--format", "none", "--out", str(report)).returncode == 0
    (suite,) = list(JUnitXml.fromfile(str(report)))
    assert (suite.tests, suite.failures) == (1, 0)
    assert [case.name for case in suite] == ["reached"]


def test_markdown_summary(tracekit_lab: Lab, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    process = run(
        tracekit_lab, "--format", "markdown", "--out", str(summary),
        "--expect", "reached", "--expect", "hops<=3",
    )  # fmt: skip
    assert process.returncode == 5
    assert summary.read_text() == process.stdout
    lines = process.stdout.splitlines()
    assert lines[0] == "### tracekit to 10.0.4.2 (10.0.4.2): reached at hop 4"
    assert lines[2] == "| Hop | Host | AS | Loss | Sent | Avg ms | Best ms | Worst ms |"
    assert lines[4].startswith("| 1 | 10.0.1.2 |  | 0.0% | 3 | ")
    assert lines[5] == "| 2 | \\* |  |  | 3 |  |  |  |"
    assert lines[7].startswith("| 4 | 10.0.4.2 |  | 0.0% | 3 | ")
    assert lines[9] == "**Expectations: 1 of 2 failed**"
    assert lines[-2:] == [
        "| `reached` | ✅ passed | reached at hop 4 |",
        "| `hops<=3` | ❌ failed | 4 hops |",
    ]


def test_github_annotations_only_under_github_actions(tracekit_lab: Lab) -> None:
    rules = ["--expect", "hops<=3", "--expect", "reached", "--format", "json"]
    plain = run(tracekit_lab, *rules)
    assert "::error" not in plain.stderr + plain.stdout
    github = run(tracekit_lab, *rules, env={**no_github(), "GITHUB_ACTIONS": "true"})
    assert github.returncode == 5
    assert github.stderr.splitlines() == [
        "tracekit: --expect hops<=3 failed: 4 hops",
        "::error title=tracekit --expect hops<=3::hops<=3 failed for 10.0.4.2: 4 hops",
    ]
    json.loads(github.stdout)  # standard output stays the report alone


def test_same_path_with_a_router_made_silent(
    tracekit_lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = tracekit_lab_factory(routers=3)
    baseline = tmp_path / "baseline.json"
    assert run(lab, "--format", "none", "--out", str(baseline)).returncode == 0
    same = ["--expect", "same-path", "--baseline", str(baseline), "--format", "json"]
    process = run(lab, *same)
    assert process.returncode == 0, process.stderr
    (verdict,) = json.loads(process.stdout)["expectations"]
    assert verdict == {
        "rule": "same-path",
        "passed": True,
        "seen": "same responders at 4 of 4 hops",
    }

    lab.make_silent("r1")
    process = run(lab, *same)
    assert process.returncode == 0, process.stderr
    (verdict,) = json.loads(process.stdout)["expectations"]
    assert verdict["seen"] == "same responders at 3 of 4 hops; silent now, not compared: hop 1"

    # A baseline whose third hop was another router: the path changed.
    changed = tmp_path / "changed.json"
    changed.write_text(baseline.read_text().replace('"10.0.3.2"', '"10.0.3.99"'))
    process = run(lab, "--expect", "same-path", "--baseline", str(changed))
    assert process.returncode == 5
    assert failures(process) == [
        "tracekit: --expect same-path failed: hop 3: 10.0.3.2, in the baseline 10.0.3.99"
    ]
    # A baseline that is one hop shorter.
    shorter = run(lab, "-n", "--format", "json").stdout
    report = json.loads(shorter)
    report["hops"] = [h for h in report["hops"] if h["ttl"] != 3]
    for h in report["hops"]:
        if h["ttl"] == 4:
            h["ttl"] = 3
    (tmp_path / "shorter.json").write_text(json.dumps(report))
    process = run(lab, "--expect", "same-path", "--baseline", str(tmp_path / "shorter.json"))
    assert process.returncode == 5
    assert failures(process) == [
        "tracekit: --expect same-path failed: destination at hop 4, at hop 3 in the baseline"
    ]


def tx_packets(lab: Lab) -> int:
    """Probe-like packets the client has sent so far: ICMP, UDP and TCP over IPv4, and UDP,
    TCP and echo requests over IPv6 (an nft counter in the client's output hook). The
    kernel's own IPv6 chatter on a new link (router solicitations, MLD reports, neighbour
    discovery) is not counted: it comes at random times in a lab's first seconds."""
    table = "tracekit_probes"
    listed = lab.exec("client", ["nft", "list", "table", "inet", table], check=False)
    if listed.returncode != 0:
        lab.exec("client", ["nft", "-f", "-"], input=f"""
            table inet {table} {{
                counter probes {{ }}
                chain out {{
                    type filter hook output priority 0; policy accept;
                    meta l4proto {{ icmp, udp, tcp }} counter name probes
                    icmpv6 type echo-request counter name probes
                }}
            }}
        """)  # fmt: skip
    shown = lab.exec("client", ["nft", "-j", "list", "counter", "inet", table, "probes"])
    for item in json.loads(shown.stdout)["nftables"]:
        if "counter" in item:
            return int(item["counter"]["packets"])
    raise AssertionError(f"no counter in {shown.stdout}")


def test_the_probe_counter_counts_a_trace(tracekit_lab: Lab) -> None:
    """What the test below relies on: a trace's probes are counted (3 per hop, 4 hops)."""
    before = tx_packets(tracekit_lab)
    assert run(tracekit_lab, "-q", "3").returncode == 0
    assert tx_packets(tracekit_lab) - before >= 12


@pytest.mark.parametrize(
    "args,message",
    [
        (["--expect", "hops<12"], "Invalid value for '--expect': 'hops<12' is not a rule: "
         "write hops<=N (see 'tracekit trace --help')"),
        (["--expect", "reached", "--expect", "rtt<=5"], "Invalid value for '--expect': "
         "'rtt<=5' is not a rule: write rtt<=Nms (milliseconds, e.g. rtt<=50ms) (see "
         "'tracekit trace --help')"),
        (["--expect", "fast"], "Invalid value for '--expect': 'fast' is not a rule: use "
         "reached, hops<=N, rtt<=Nms, loss<=P%, via=X, not-via=X or same-path (see "
         "'tracekit trace --help')"),
        (["--expect", "via=10.0.0.1/8"], "Invalid value for '--expect': 'via=10.0.0.1/8': "
         "10.0.0.1/8 has host bits set; the prefix is 10.0.0.0/8 (see 'tracekit trace --help')"),
        (["--expect", "same-path"],
         "--expect same-path needs --baseline FILE.json (a previous JSON report)"),
        (["--expect", "same-path", "--baseline", "/nonexistent/base.json"],
         "cannot read the baseline /nonexistent/base.json: No such file or directory"),
        (["--baseline", "/nonexistent/base.json"], "--baseline is only used by --expect same-path"),
    ],
)  # fmt: skip
def test_rules_that_do_not_parse_are_one_line_exit_2_and_nothing_is_sent(
    tracekit_lab: Lab, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "trace.json"
    before = tx_packets(tracekit_lab)
    process = run(tracekit_lab, *args, "--out", str(out))
    assert (process.returncode, process.stdout) == (2, "")
    assert process.stderr == f"tracekit: {message}\n"
    assert not out.exists()
    assert tx_packets(tracekit_lab) == before
