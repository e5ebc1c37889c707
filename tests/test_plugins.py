"""Plugins are found through the ``tracekit`` entry-point group, and a broken one is isolated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tracekit.testing import Lab


def make_distribution(site: Path, name: str, module_source: str) -> None:
    """Install a throwaway plugin distribution into ``site`` (a directory on sys.path)."""
    (site / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[tracekit]\n{name} = {name}\n")


def tracekit(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run(
        [sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, env=environment
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    make_distribution(
        tmp_path,
        "tracekit_upper",
        """
        from tracekit import hookimpl
        from tracekit.output import Output

        class Upper(Output):
            def finish(self, trace):
                self.target.stream.write(trace.target.upper() + "\\n")

        @hookimpl
        def tracekit_register_outputs(register):
            register("upper", Upper, "the target, shouted", [".upper"])
        """,
    )
    return tmp_path


def test_a_third_party_plugin_is_discovered_and_listed(site: Path) -> None:
    listing = json.loads(tracekit(site, "plugins", "--format", "json").stdout)
    upper = next(p for p in listing if p["name"] == "tracekit_upper")
    assert upper["distribution"] == "tracekit_upper" and upper["version"] == "1.2.3"
    assert upper["outputs"] == ["upper"]
    assert upper["hooks"] == ["tracekit_register_outputs"]


def test_a_plugin_that_fails_to_import_is_skipped_with_one_warning(site: Path) -> None:
    make_distribution(site, "tracekit_broken", "raise RuntimeError('boom')\n")
    process = tracekit(site, "plugins", "--format", "json")
    assert process.returncode == 0
    assert process.stderr.splitlines() == [
        "tracekit: warning: plugin 'tracekit_broken' (tracekit_broken) failed to load: boom"
    ]
    names = {p["name"] for p in json.loads(process.stdout)}
    assert {"icmp", "text", "json", "tracekit_upper"} <= names
    assert "tracekit_broken" not in names


def test_a_misspelled_hook_is_reported_at_load(site: Path) -> None:
    make_distribution(
        site,
        "tracekit_typo",
        """
        from tracekit import hookimpl

        @hookimpl
        def tracekit_hop_complete(trace, hop):
            pass
        """,
    )
    process = tracekit(site, "plugins")
    assert process.stderr.splitlines() == [
        "tracekit: warning: plugin 'tracekit_typo' not loaded: unknown hook tracekit_hop_complete"
    ]


def test_autoload_can_be_disabled(site: Path) -> None:
    process = tracekit(site, "plugins", "--format", "json", TRACEKIT_DISABLE_PLUGIN_AUTOLOAD="1")
    names = {p["name"] for p in json.loads(process.stdout)}
    assert names == {"icmp", "udp", "tcp", "text", "json", "map", "rdns", "geoip"}


@pytest.mark.netns
def test_a_failing_output_loses_neither_the_trace_nor_the_other_outputs(
    site: Path, tmp_path: Path, tracekit_lab: Lab
) -> None:
    make_distribution(
        site,
        "tracekit_flaky",
        """
        from tracekit import hookimpl
        from tracekit.output import Output

        class Flaky(Output):
            def hop(self, trace, hop):
                if hop.ttl == 2:
                    raise ValueError("disk on fire")

            def finish(self, trace):
                self.target.stream.write("never\\n")

        @hookimpl
        def tracekit_register_outputs(register):
            register("flaky", Flaky, "fails at TTL 2", [".flaky"])
        """,
    )
    report_path = tmp_path / "t.json"
    process = tracekit_lab.tracekit(
        tracekit_lab.address("server"), "-n", "--out", str(tmp_path / "t.flaky"),
        "--out", str(report_path), env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert process.returncode == 0
    assert process.stderr.splitlines() == [
        f"tracekit: warning: output 'flaky' ({tmp_path / 't.flaky'}) failed: "
        "ValueError: disk on fire"
    ]
    assert len(process.stdout.splitlines()) == 5  # header and four hops
    assert json.loads(report_path.read_text())["reached"] is True


@pytest.mark.netns
def test_a_hook_that_raises_is_an_internal_error_in_one_line(
    site: Path, tmp_path: Path, tracekit_lab: Lab
) -> None:
    make_distribution(
        site,
        "tracekit_crash",
        """
        from tracekit import hookimpl

        @hookimpl
        def tracekit_enrich_hop(trace, hop):
            if hop.ttl == 3:
                raise KeyError("oops")
        """,
    )
    report_path = tmp_path / "t.json"
    process = tracekit_lab.tracekit(
        tracekit_lab.address("server"), "-n", "--out", str(report_path),
        env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert process.returncode == 4
    assert process.stderr.splitlines() == [
        "tracekit: internal error: KeyError: 'oops' (TRACEKIT_DEBUG=1 shows the traceback)"
    ]
    report = json.loads(report_path.read_text())
    assert report["end"] == "error" and [h["ttl"] for h in report["hops"]] == [1, 2]
