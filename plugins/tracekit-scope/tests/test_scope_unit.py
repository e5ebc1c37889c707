"""The scope of addresses, and the hooks on hand-made traces (no network, no root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import tracekit_scope
from tracekit_scope import scope

from tracekit.model import Hop, Host, ProbeInfo, ProbeResult, Trace
from tracekit.plugins import get_plugin_manager

TABLE = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("10.0.1.2", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("fd00::1", "private"),
    ("fc00::1", "private"),
    ("100.64.1.1", "shared"),
    ("100.127.255.254", "shared"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("2001:db8:4::2", "documentation"),
    ("3fff::1", "documentation"),
    ("0.0.0.0", "reserved"),
    ("198.18.0.1", "reserved"),  # benchmarking
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::", "reserved"),
    ("2001:2::1", "reserved"),  # benchmarking
    ("8.8.8.8", "global"),
    ("1.1.1.1", "global"),
    ("100.63.255.255", "global"),  # just below the shared range
    ("100.128.0.0", "global"),  # just above it
    ("172.32.0.1", "global"),  # just above 172.16.0.0/12
    ("2606:4700::1111", "global"),
    ("::ffff:10.0.0.1", "private"),  # IPv4-mapped: the IPv4 address's scope
    ("::ffff:8.8.8.8", "global"),
]


@pytest.mark.parametrize(("address", "expected"), TABLE)
def test_each_address_gets_its_most_specific_scope(address: str, expected: str) -> None:
    assert scope(address) == expected


def test_every_named_scope_is_in_the_table() -> None:
    assert {expected for _, expected in TABLE} == {*tracekit_scope.SCOPES, "reserved", "global"}


def test_an_invalid_address_is_refused() -> None:
    with pytest.raises(ValueError):
        scope("10.0.0.256")


def make_trace() -> Trace:
    return Trace(target="t.example", address="8.8.8.8", ip_version=4, probe=ProbeInfo("icmp"))


def make_hop(ttl: int, *addresses: str) -> Hop:
    probes = [ProbeResult(address, 1.0, "time-exceeded") for address in addresses]
    return Hop(ttl, probes, {address: Host(address) for address in addresses})


@pytest.fixture
def trace() -> Iterator[Trace]:
    """A trace the plugin has seen start; finished at the end of the test."""
    trace = make_trace()
    tracekit_scope.tracekit_trace_started(trace)
    yield trace
    tracekit_scope.tracekit_trace_finished(trace)


def test_the_hooks_annotate_every_host_of_a_hop(trace: Trace) -> None:
    hop = make_hop(1, "10.0.1.2", "100.64.0.1", "8.8.4.4")
    tracekit_scope.tracekit_probe_answered(trace, hop.probes[0])  # one started early
    tracekit_scope.tracekit_enrich_hop(trace, hop)
    assert {a: h.annotations for a, h in hop.hosts.items()} == {
        "10.0.1.2": {"scope": "private"},
        "100.64.0.1": {"scope": "shared"},
        "8.8.4.4": {"scope": "global"},
    }


def test_a_lookup_starts_when_the_address_answers(
    trace: Trace, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = threading.Event()

    def lookup(address: str) -> str:
        started.set()
        return "global"

    monkeypatch.setattr(tracekit_scope, "scope", lookup)
    tracekit_scope.tracekit_probe_answered(trace, ProbeResult("8.8.8.8", 1.0, "echo-reply"))
    assert started.wait(5)  # before any hop is enriched


def test_late_lookups_hold_up_a_hop_at_most_timeout_and_leave_no_scope(
    trace: Trace, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def slow(address: str) -> str:
        release.wait(10)
        return "global"

    monkeypatch.setattr(tracekit_scope, "scope", slow)
    monkeypatch.setattr(tracekit_scope, "TIMEOUT", 0.3)
    hop = make_hop(1, "192.0.2.1", "192.0.2.2", "192.0.2.3")
    began = time.monotonic()
    tracekit_scope.tracekit_enrich_hop(trace, hop)
    waited = time.monotonic() - began
    release.set()
    assert 0.3 <= waited < 0.6  # one wait for the hop, not one per host
    assert all(host.annotations == {} for host in hop.hosts.values())


def test_a_failing_lookup_leaves_its_host_without_a_scope(
    trace: Trace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lookup(address: str) -> str:
        if address == "192.0.2.66":
            raise RuntimeError("whois server gone")
        return "documentation"

    monkeypatch.setattr(tracekit_scope, "scope", lookup)
    hop = make_hop(1, "192.0.2.66", "192.0.2.1")
    tracekit_scope.tracekit_enrich_hop(trace, hop)  # does not raise: the trace goes on
    assert hop.hosts["192.0.2.66"].annotations == {}
    assert hop.hosts["192.0.2.1"].annotations == {"scope": "documentation"}


def test_each_trace_has_its_own_lookups_until_it_finishes() -> None:
    first, second = make_trace(), make_trace()
    tracekit_scope.tracekit_trace_started(first)
    tracekit_scope.tracekit_trace_started(second)
    tracekit_scope.tracekit_trace_finished(first)
    hop = make_hop(1, "10.0.0.1")
    tracekit_scope.tracekit_enrich_hop(first, hop)  # finished: nothing more
    assert hop.hosts["10.0.0.1"].annotations == {}
    tracekit_scope.tracekit_enrich_hop(second, hop)
    assert hop.hosts["10.0.0.1"].annotations == {"scope": "private"}
    tracekit_scope.tracekit_trace_finished(second)
    assert tracekit_scope.LOOKUPS not in first.stash
    assert tracekit_scope.LOOKUPS not in second.stash


def test_the_hooks_are_valid_for_the_plugin_manager() -> None:
    pm = get_plugin_manager(autoload=False)
    pm.register(tracekit_scope, name="scope")  # refuses arguments a hook does not have
    pm.check_pending()  # and hooks that do not exist
    trace, hop = make_trace(), make_hop(1, "10.0.1.2")
    pm.hook.tracekit_trace_started(trace=trace)
    pm.hook.tracekit_probe_answered(trace=trace, ttl=1, result=hop.probes[0])
    pm.hook.tracekit_enrich_hop(trace=trace, hop=hop)
    pm.hook.tracekit_trace_finished(trace=trace)
    assert hop.hosts["10.0.1.2"].annotations["scope"] == "private"


def test_tracekit_plugins_lists_the_scope_plugin() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "tracekit", "plugins", "--format", "json"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "TRACEKIT_DISABLE_PLUGIN_AUTOLOAD"},
    )
    plugin = next(p for p in json.loads(process.stdout) if p["name"] == "scope")
    assert plugin["distribution"] == "tracekit-scope" and plugin["version"] == "0.1.0"
    assert plugin["hooks"] == [
        "tracekit_add_options",
        "tracekit_enrich_hop",
        "tracekit_probe_answered",
        "tracekit_register_commands",
        "tracekit_trace_finished",
        "tracekit_trace_started",
    ]


def tracekit(*args: str, autoload: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRACEKIT_DISABLE_PLUGIN_AUTOLOAD"}
    if not autoload:
        env["TRACEKIT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, env=env
    )


def commands(help_text: str) -> set[str]:
    """The commands that ``tracekit --help`` lists."""
    section = help_text.split("Commands:", 1)[1]
    return {line.split()[0] for line in section.splitlines() if line.startswith("  ")}


def test_the_plugin_adds_an_option_and_a_command_to_the_help() -> None:
    assert "--no-scope" in tracekit("trace", "--help").stdout
    assert "scope" in commands(tracekit("--help").stdout)
    assert "Print the scope of each ADDRESS" in tracekit("scope", "--help").stdout


def test_the_command_prints_each_address_scope() -> None:
    done = tracekit("scope", "10.0.1.2", "100.64.0.1", "2001:db8::1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "10.0.1.2  private",
        "100.64.0.1  shared",
        "2001:db8::1  documentation",
    ]
    refused = tracekit("scope", "10.0.0.256")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "tracekit: Invalid value: '10.0.0.256' is not an IP address (see 'tracekit scope --help')"
    )


def test_the_option_turns_the_annotation_off() -> None:
    trace, hop = make_trace(), make_hop(1, "10.0.1.2")
    trace.settings["no_scope"] = True
    tracekit_scope.tracekit_trace_started(trace)
    tracekit_scope.tracekit_enrich_hop(trace, hop)
    assert hop.hosts["10.0.1.2"].annotations == {}
    tracekit_scope.tracekit_trace_finished(trace)


def test_option_and_command_are_absent_unless_the_plugin_is_loaded() -> None:
    assert "--no-scope" not in tracekit("trace", "--help", autoload=False).stdout
    assert "scope" not in commands(tracekit("--help", autoload=False).stdout)
    refused = tracekit("trace", "--no-scope", "192.0.2.1", autoload=False)
    assert refused.returncode == 2 and "No such option '--no-scope'" in refused.stderr
    named = tracekit("trace", "--help", "--plugin", "scope", autoload=False)
    assert "--no-scope" in named.stdout
