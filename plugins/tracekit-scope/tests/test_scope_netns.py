"""The scope of every host of real traces on the namespace network (needs root)."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest

from tracekit.testing import Lab

pytestmark = pytest.mark.netns

#: The lab's links are 10.0.k.0/24 (RFC 1918) and 2001:db8:k::/64 (documentation).
LAB_SCOPE = {4: "private", 6: "documentation"}


def trace(lab: Lab, *args: str) -> dict[str, Any]:
    process = lab.tracekit(*args, "-n", "--format", "json")
    assert process.returncode == 0, process.stderr
    report: dict[str, Any] = json.loads(process.stdout)
    return report


@pytest.mark.parametrize("version", [4, 6])
def test_every_answering_host_has_the_scope_of_the_lab_s_addresses(
    tracekit_lab: Lab, version: int
) -> None:
    report = trace(tracekit_lab, tracekit_lab.address("server", version), f"-{version}")
    hosts = [[host["address"] for host in hop["hosts"]] for hop in report["hops"]]
    expected = tracekit_lab.expected_hops(version)  # r1, None (r2 is silent), r3, server
    assert hosts == [[address] if address else [] for address in expected]
    scopes = [host["scope"] for hop in report["hops"] for host in hop["hosts"]]
    assert scopes == [LAB_SCOPE[version]] * 3
    assert ipaddress.ip_address(report["address"]).version == version


def test_hosts_keep_their_name_and_address_next_to_the_scope(tracekit_lab: Lab) -> None:
    process = tracekit_lab.tracekit(tracekit_lab.address("server"), "--format", "json")
    assert process.returncode == 0, process.stderr
    last = json.loads(process.stdout)["hops"][-1]["hosts"]
    assert [{k: v for k, v in host.items() if k != "stats"} for host in last] == [
        {
            "address": tracekit_lab.address("server"),
            "name": tracekit_lab.name("server"),
            "scope": "private",
        }
    ]


def test_only_a_run_with_the_plugin_has_scopes(
    tracekit_lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACEKIT_DISABLE_PLUGIN_AUTOLOAD", "1")  # built-in plugins only
    server = tracekit_lab.address("server")
    without = [host for hop in trace(tracekit_lab, server)["hops"] for host in hop["hosts"]]
    assert without and all("scope" not in host for host in without)
    chosen = trace(tracekit_lab, server, "--plugin", "scope")
    assert [host.get("scope") for hop in chosen["hops"] for host in hop["hosts"]] == ["private"] * 3


def test_the_text_output_does_not_show_the_scope(tracekit_lab: Lab) -> None:
    process = tracekit_lab.tracekit(tracekit_lab.address("server"), "-n", "-q", "1")
    assert process.returncode == 0, process.stderr
    lines = process.stdout.splitlines()[1:]
    expected = tracekit_lab.expected_hops(4)
    assert len(lines) == len(expected)
    for ttl, (line, address) in enumerate(zip(lines, expected, strict=True), start=1):
        pattern = (
            rf"{ttl:2d}  {re.escape(address)}  \d+\.\d{{3}} ms" if address else rf"{ttl:2d}  \*"
        )
        assert re.fullmatch(pattern, line), line
