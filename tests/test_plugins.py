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

BUILT_INS = {"icmp", "udp", "tcp", "text", "json", "jsonl", "atlas", "map", "junit", "markdown"}
BUILT_INS |= {"rdns", "geoip"}
MISSPELLED_ARGUMENT = """
    from tracekit import hookimpl

    @hookimpl
    def tracekit_hop_completed(trace, hp):
        pass
    """


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
        from tracekit.outputs import Output

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
    assert [o["name"] for o in upper["outputs"]] == ["upper"]
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
    assert names == BUILT_INS


def test_plugin_option_loads_only_the_named_plugins_when_autoload_is_disabled(
    site: Path,
) -> None:
    make_distribution(site, "tracekit_other", "")
    disabled = {"TRACEKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    process = tracekit(
        site, "plugins", "--format", "json", "--plugin", "tracekit_upper", **disabled
    )
    assert process.returncode == 0 and process.stderr == ""
    assert {p["name"] for p in json.loads(process.stdout)} == BUILT_INS | {"tracekit_upper"}
    both = tracekit(site, "plugins", "--format", "json", "--plugin", "tracekit_upper",
                    "--plugin", "tracekit_other", **disabled)  # fmt: skip
    assert {p["name"] for p in json.loads(both.stdout)} == BUILT_INS | {
        "tracekit_upper",
        "tracekit_other",
    }


@pytest.mark.parametrize(
    "command",
    [
        ["plugins", "--plugin", "tracekit_uper"],
        ["trace", "--plugin", "tracekit_uper", "10.0.4.2"],
        ["--plugin", "tracekit_uper", "10.0.4.2"],
        ["demo", "--plugin", "tracekit_uper"],  # checked before the network is built
    ],
)
def test_an_unknown_plugin_name_is_one_line_listing_the_available_ones(
    site: Path, command: list[str]
) -> None:
    process = tracekit(site, *command)
    assert process.returncode == 2, process.stderr
    assert process.stderr.splitlines() == [
        "tracekit: unknown plugin 'tracekit_uper'; available: "
        + ", ".join(sorted(BUILT_INS | {"tracekit_upper"}))
    ]


@pytest.mark.parametrize(
    "args,listed",
    [
        (["--probe", "pigeon"], "unknown probe 'pigeon'; available: icmp, tcp, udp"),
        (
            ["--format", "yaml"],
            "unknown format 'yaml'; available: atlas, json, jsonl, junit, map, markdown, "
            "text, upper",
        ),
        (
            ["--out", "t.docx"],
            "suffixes .atlas.json, .html, .json, .jsonl, .md, .txt, .upper, .xml",
        ),
    ],
)
def test_unknown_probe_format_or_suffix_lists_what_plugins_offer(
    site: Path, args: list[str], listed: str
) -> None:
    # Checked before anything is resolved or sent.
    process = tracekit(site, *args, "10.0.4.2")
    assert process.returncode == 2
    assert len(process.stderr.splitlines()) == 1 and listed in process.stderr, process.stderr


def test_a_misspelled_hook_argument_is_reported_at_load(site: Path) -> None:
    make_distribution(site, "tracekit_argtypo", MISSPELLED_ARGUMENT)
    process = tracekit(site, "plugins", "--format", "json")
    assert process.returncode == 0
    assert process.stderr.splitlines() == [
        "tracekit: warning: plugin 'tracekit_argtypo' not loaded: tracekit_hop_completed has "
        "no argument 'hp' (it has trace, hop)"
    ]
    assert "tracekit_argtypo" not in {p["name"] for p in json.loads(process.stdout)}


@pytest.mark.parametrize(
    "source,problem",
    [
        (MISSPELLED_ARGUMENT, "tracekit_hop_completed has no argument 'hp' (it has trace, hop)"),
        (
            "from tracekit import hookimpl\n\n@hookimpl\ndef tracekit_hop_complete(hop): ...\n",
            "unknown hook tracekit_hop_complete",
        ),
    ],
)
def test_a_plugin_asked_for_by_name_that_cannot_load_is_an_error(
    site: Path, source: str, problem: str
) -> None:
    make_distribution(site, "tracekit_typo", source)
    process = tracekit(site, "plugins", "--plugin", "tracekit_typo")
    assert process.returncode == 2
    assert process.stderr.splitlines() == [
        f"tracekit: plugin 'tracekit_typo' not loaded: {problem}"
    ]


def test_a_register_hook_that_raises_loses_only_that_plugin_s_offer(site: Path) -> None:
    make_distribution(
        site,
        "tracekit_badreg",
        """
        from tracekit import hookimpl

        @hookimpl
        def tracekit_register_outputs(register):
            raise OSError("no config")
        """,
    )
    process = tracekit(site, "plugins", "--format", "json")
    assert process.stderr.splitlines() == [
        "tracekit: warning: plugin 'tracekit_badreg' failed in tracekit_register_outputs"
        " and is skipped there from now on: OSError: no config"
    ]
    by_name = {p["name"]: p for p in json.loads(process.stdout)}
    assert [o["name"] for o in by_name["tracekit_upper"]["outputs"]] == ["upper"]
    assert by_name["tracekit_badreg"]["outputs"] == []


@pytest.mark.netns
def test_a_plugin_named_with_autoload_disabled_is_called(site: Path, tracekit_lab: Lab) -> None:
    env = {**os.environ, "PYTHONPATH": str(site), "TRACEKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    server = tracekit_lab.address("server")
    process = tracekit_lab.tracekit(server, "-n", "--format", "upper", env=env)
    assert process.returncode == 2
    assert "unknown format 'upper'" in process.stderr
    process = tracekit_lab.tracekit(
        "--plugin", "tracekit_upper", "server.tracekit.test", "-n", "--format", "upper", env=env
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout == "SERVER.TRACEKIT.TEST\n"


@pytest.mark.netns
def test_demo_passes_plugin_on_to_its_trace(site: Path, tracekit_lab: Lab) -> None:
    # (tracekit_lab: the same root check as every namespace test; the demo builds its own.)
    env = {**os.environ, "PYTHONPATH": str(site), "TRACEKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    process = subprocess.run(
        [sys.executable, "-m", "tracekit", "demo", "--plugin", "tracekit_upper", "--format",
         "upper", "-n"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert process.stdout == "SERVER.TRACEKIT.TEST\n"


@pytest.mark.netns
def test_a_failing_output_loses_neither_the_trace_nor_the_other_outputs(
    site: Path, tmp_path: Path, tracekit_lab: Lab
) -> None:
    make_distribution(
        site,
        "tracekit_flaky",
        """
        from tracekit import hookimpl
        from tracekit.outputs import Output

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
def test_a_hook_that_raises_is_one_warning_and_the_trace_goes_on(
    site: Path, tmp_path: Path, tracekit_lab: Lab
) -> None:
    make_distribution(
        site,
        "tracekit_crash",
        """
        from tracekit import hookimpl

        calls = []

        @hookimpl
        def tracekit_enrich_hop(trace, hop):
            if hop.ttl >= 3:
                raise KeyError("oops")
            for host in hop.hosts.values():
                host.annotations["crash"] = "fine"

        @hookimpl
        def tracekit_hop_completed(trace, hop):
            calls.append(hop.ttl)

        @hookimpl
        def tracekit_trace_finished(trace):
            trace.annotations["crash_saw"] = calls
        """,
    )
    report_path = tmp_path / "t.json"
    process = tracekit_lab.tracekit(
        tracekit_lab.address("server"), "-n", "--out", str(report_path),
        env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert process.returncode == 0
    assert process.stderr.splitlines() == [
        "tracekit: warning: plugin 'tracekit_crash' failed in tracekit_enrich_hop"
        " and is skipped there from now on: KeyError: 'oops'"
    ]
    assert [line.split()[0] for line in process.stdout.splitlines()[1:]] == ["1", "2", "3", "4"]
    report = json.loads(report_path.read_text())
    assert report["reached"] and [h["ttl"] for h in report["hops"]] == [1, 2, 3, 4]
    crash = {(h["ttl"], host.get("crash")) for h in report["hops"] for host in h["hosts"]}
    assert crash == {(1, "fine"), (3, None), (4, None)}  # hop 2 is silent
    # the plugin's other hooks, and the other plugins (rdns off with -n; geoip...), went on
    assert report["annotations"]["crash_saw"] == [1, 2, 3, 4]


def test_plugins_written_for_hook_api_2_still_import_the_old_modules() -> None:
    import tracekit.output
    import tracekit.outputs
    import tracekit.probe
    import tracekit.probes

    for name in ("ProbeMethod", "ProbeContext", "Received", "Match", "Outcome", "ProbeOption"):
        assert getattr(tracekit.probe, name) is getattr(tracekit.probes, name)
    for name in ("Output", "OutputTarget"):
        assert getattr(tracekit.output, name) is getattr(tracekit.outputs, name)
