"""Plugins add options and commands to the command line, as a third party would ship them:
a throwaway distribution (a module and its ``.dist-info``) on ``PYTHONPATH``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import plugin_site

PLUGIN = '''
import click

from tracekit import hookimpl
from tracekit.errors import BadInput


@hookimpl
def tracekit_add_options(add):
    add("--greeting", metavar="WORDS", help="What the greeter plugin says before a trace.")


@hookimpl
def tracekit_register_commands(cli):
    @cli.command()
    @click.argument("name")
    def hello(name):
        """Greet NAME (the greeter plugin)."""
        click.echo(f"hello, {name}")


@hookimpl
def tracekit_configure(settings):
    if settings.get("greeting") is not None:
        # Before anything is sent: the value arrived; nothing goes out.
        raise BadInput(f"the greeter says {settings['greeting']!r} and stops the trace")
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plugin_site(tmp_path_factory.mktemp("site"), "greeter_plugin", PLUGIN, "greeter")


def tracekit(site: Path, *args: str, autoload: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRACEKIT_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), *sys.path])
    if not autoload:
        env["TRACEKIT_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, env=env
    )


def commands(help_text: str) -> set[str]:
    """The commands that ``tracekit --help`` lists."""
    section = help_text.split("Commands:", 1)[1]
    return {line.split()[0] for line in section.splitlines() if line.startswith("  ")}


def test_a_plugin_adds_an_option_and_a_command(site: Path) -> None:
    assert "hello" in commands(tracekit(site, "--help").stdout)
    assert "--greeting WORDS" in tracekit(site, "trace", "--help").stdout
    assert "--greeting WORDS" in tracekit(site, "demo", "--help").stdout  # passed on
    greeted = tracekit(site, "hello", "world")
    assert (greeted.returncode, greeted.stdout) == (0, "hello, world\n"), greeted.stderr


def test_the_option_value_reaches_the_plugin(site: Path) -> None:
    # The plugin refuses the trace in tracekit_configure, before anything is sent.
    refused = tracekit(site, "trace", "192.0.2.1", "--greeting", "hi there")
    assert refused.returncode == 2
    assert refused.stderr == "tracekit: the greeter says 'hi there' and stops the trace\n"


def test_option_and_command_are_gone_when_the_plugin_is_not_loaded(site: Path) -> None:
    assert "hello" not in commands(tracekit(site, "--help", autoload=False).stdout)
    assert "--greeting" not in tracekit(site, "trace", "--help", autoload=False).stdout
    refused = tracekit(site, "trace", "192.0.2.1", "--greeting", "hi", autoload=False)
    assert refused.returncode == 2 and "No such option '--greeting'" in refused.stderr
    # Named, it is loaded again; blocked, it is not loaded even with autoloading on.
    named = tracekit(site, "--plugin", "greeter", "trace", "--help", autoload=False)
    assert "--greeting" in named.stdout
    assert "hello" not in commands(tracekit(site, "--help", "--plugin", "no:greeter").stdout)


def test_the_geo_options_and_command_belong_to_the_geoip_plugin(site: Path) -> None:
    loaded = tracekit(site, "trace", "--help").stdout
    assert all(option in loaded for option in ("--geoip-db", "--asn-db", "--no-geo"))
    assert "geoip" in commands(tracekit(site, "--help").stdout)
    blocked = tracekit(site, "trace", "--help", "--plugin", "no:geoip").stdout
    assert not any(option in blocked for option in ("--geoip-db", "--asn-db", "--no-geo"))
    assert "geoip" not in commands(tracekit(site, "--help", "--plugin", "no:geoip").stdout)
    assert "--origin" in blocked  # the map's
    assert "--origin" not in tracekit(site, "trace", "--help", "--plugin", "no:map").stdout


def test_probe_options_come_from_the_methods_that_take_them(site: Path) -> None:
    text = tracekit(site, "trace", "--help").stdout
    assert "[probes: tcp, udp]" in " ".join(text.split("--port", 1)[1].split()[:40])
    refused = tracekit(site, "trace", "192.0.2.1", "--probe", "icmp", "--port", "80")
    assert refused.returncode == 2
    assert refused.stderr == "tracekit: --port does not apply to icmp probes\n"
    # With only icmp left, the options no method takes are not offered at all.
    only = tracekit(site, "trace", "--help", "--plugin", "no:udp", "--plugin", "no:tcp").stdout
    assert "--packet-size" in only and "--port" not in only and "--source-port" not in only
