"""The peer tools the benchmarks measure tracekit against, installed with apt when missing."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def machine_speed() -> float:
    """Microseconds this Python takes for ``sum(range(1000))`` (best of 5), as
    ``python -m timeit "sum(range(1000))"`` prints. CPU figures of different runs compare
    only at a like figure, from the same Python: a shared virtual machine's speed varies by
    3 to 4 times, and the interpreter's build counts too (on the test machine, Debian's
    ``python3.11`` takes 11 µs where a pyenv build takes 26 to 43, yet both run tracekit's
    hot path at about the same speed)."""
    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def speed_line(us: float) -> str:
    """The line every benchmark prints about :func:`machine_speed`."""
    return (f"machine: sum(range(1000)) takes {us:.1f} µs with {sys.executable} (compare CPU "
            "figures only from the same Python at a like figure)")  # fmt: skip


def find_tool(command: str, package: str, install: bool) -> tuple[str | None, str]:
    """The path of ``command``, installing Debian's ``package`` if it is missing, ``install``
    is true and apt is usable; and a note of what was done or why it is missing."""
    found = shutil.which(command)
    if found:
        return found, ""
    if not install:
        return None, f"{command} is not installed (--no-install)"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, f"{command} is not installed and apt-get is not usable here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    attempts = [["apt-get", "install", "-y", "-q", package]]
    attempts += [["apt-get", "update", "-q"], *attempts]
    for attempt in attempts:
        subprocess.run(attempt, capture_output=True, env=env)
        if attempt[1] == "install" and shutil.which(command):
            return shutil.which(command), f"installed {package} with apt-get"
    return None, f"{command} is not installed and apt-get could not install {package}"


@functools.cache
def gnu_time() -> str:
    """GNU time (Debian's ``time``), installed with apt-get when missing."""
    found, note = find_tool("time", "time", True)
    if found is None:
        raise SystemExit(f"peak RSS is read with GNU time: {note}")
    return found


def peak_rss_command(args: list[str], report: str) -> list[str]:
    """``args`` under GNU time, which writes their own peak RSS (KiB) to the file ``report``.

    A child's ``ru_maxrss`` from ``wait4`` is no good here: it is at least the RSS its parent
    had when it forked (on exec the kernel keeps the old image's peak), so every child of a
    benchmark would weigh at least as much as the benchmark. GNU time is a small process, and
    its child's peak is the command's own.
    """
    return [gnu_time(), "-f", "%M", "-o", report, *args]


def peak_rss(report: str) -> int:
    """The peak RSS (KiB) that :func:`peak_rss_command` wrote (its last line: before it, GNU
    time notes a non-zero exit status)."""
    with open(report) as lines:
        return int(lines.read().split()[-1])


@dataclass
class Usage:
    """What one child process cost."""

    cpu: float
    user: float
    sys: float
    maxrss_kib: int
    wall: float
    returncode: int
    stdout: str
    stderr: str


def measured(lab: Any, args: list[str], stdin: str | None = None, cwd: Path | None = None) -> Usage:
    """Run ``args`` in the lab's client and return what it cost: its own CPU (``os.wait4``:
    this child and the children it waited for, nothing else the benchmark started), its
    wall time and its peak RSS (read by GNU time: see :func:`peak_rss_command`)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        report = str(Path(tmp) / "rss")
        command = lab.command("client", peak_rss_command(args, report))
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=cwd)
        assert process.stdin is not None
        process.stdin.write((stdin or "").encode())
        process.stdin.close()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Usage(
            cpu=usage.ru_utime + usage.ru_stime,
            user=usage.ru_utime,
            sys=usage.ru_stime,
            maxrss_kib=peak_rss(report),
            wall=wall,
            returncode=os.waitstatus_to_exitcode(status),
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )
