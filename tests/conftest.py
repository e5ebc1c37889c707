"""Shared helpers for tracekit's tests (the lab fixtures come from tracekit's pytest plugin)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tracekit.testing.pytest_plugin import require

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="session")
def trace_schema() -> dict[str, Any]:
    """The JSON Schema of the trace report, as installed with the package."""
    from importlib.resources import files

    schema: dict[str, Any] = json.loads((files("tracekit") / "trace.schema.json").read_text())
    return schema


def hop_addresses(report: dict[str, Any]) -> list[str | None]:
    """One address per hop of a JSON report (``None`` for a silent hop).

    Fails if a hop shows more than one address: the lab's chains have one path.
    """
    out: list[str | None] = []
    for hop in report["hops"]:
        addresses = {p["address"] for p in hop["probes"] if p["address"] is not None}
        assert len(addresses) <= 1, f"hop {hop['ttl']} shows several addresses: {addresses}"
        out.append(addresses.pop() if addresses else None)
    return out


# -- a real terminal: tmux --------------------------------------------------------------

#: Generous: the machine is shared with other test runs.
TIMEOUT = 60.0


def plugin_site(root: Path, module: str, source: str, entry: str) -> Path:
    """A throwaway distribution in ``root``: ``module`` (with ``source``) and its
    ``.dist-info``, registering it in the ``tracekit`` entry-point group as ``entry``."""
    (root / f"{module}.py").write_text(source)
    name = module.replace("_", "-")
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[tracekit]\n{entry} = {module}\n")
    return root


class Pane:
    """A tmux server of the test's own (its own socket) with one pane running a command."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        # No colour wishes of the caller's: each test says what it wants.
        self.env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        self.env.pop("TMUX", None)

    def tmux(self, *args: str) -> str:
        process = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True, text=True, env=self.env, timeout=30,
        )  # fmt: skip
        assert process.returncode == 0, process.stderr
        return process.stdout

    def start(self, command: list[str], env: dict[str, str] | None = None) -> None:
        """Run ``command`` in a 120 x 40 pane; then the shell prints ``rc=STATUS`` and waits
        (Ctrl-C reaches the command, not the shell: ``trap : INT``)."""
        settings = [f"{k}={v}" for k, v in (env or {}).items()]
        run = shlex.join(["env", *settings, *command])
        script = f"trap : INT; {run}; echo rc=$?; sleep 60"
        self.tmux("new-session", "-d", "-s", "live", "-x", "120", "-y", "40", "sh", "-c", script)

    def screen(self, escapes: bool = False) -> str:
        """What the pane shows (``escapes``: with the colours and attributes, as ``-e``)."""
        return self.tmux(
            "capture-pane", "-p", "-S", "-200", "-t", "live", *(["-e"] if escapes else [])
        )

    def wait_for(self, condition: Callable[[str], bool], escapes: bool = False) -> str:
        deadline = time.monotonic() + TIMEOUT
        while True:
            text = self.screen(escapes)
            if condition(text):
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"the pane never showed what was expected; it shows:\n{text}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True)


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    require(shutil.which("tmux") is not None, "tmux is needed (apt install tmux)")
    # A short path: a unix socket's path may not be long.
    socket = Path("/tmp") / f"tracekit-live-{os.getpid()}-{tmp_path.name[-12:]}.sock"
    pane = Pane(socket)
    yield pane
    pane.close()
    socket.unlink(missing_ok=True)
