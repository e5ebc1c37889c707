"""The peer tools the benchmarks measure tracekit against, installed with apt when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import timeit


def machine_speed() -> float:
    """Microseconds this machine takes for ``sum(range(1000))`` (best of 5), as
    ``python -m timeit "sum(range(1000))"`` prints: about 10 on typical hardware. CPU
    figures of different runs compare only at a like speed (a shared virtual machine's
    varies by 3 to 4 times)."""
    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


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
