"""``tracekit demo``: trace a throwaway network of namespaces, then remove it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from importlib.resources import files
from types import FrameType

from tracekit.errors import CannotProbe
from tracekit.testing.netlab import Lab, LabError

#: Signals that stop the demo. None of them interrupts building or removing the network: the
#: first one is remembered, passed on to the trace, and decides the exit status.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Stop:
    """Catches the stop signals for the whole demo, clean-up included."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.trace: subprocess.Popen[bytes] | None = None

    def arrived(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self.pass_on(signum)

    def pass_on(self, signum: int) -> None:
        """Send ``signum`` to the trace, if it runs (a terminal's Ctrl-C reaches it as well:
        the trace takes the first one, so it may get two)."""
        if self.trace is not None and self.trace.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.trace.pid, signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Stop]:
        previous = {s: signal.signal(s, self.arrived) for s in STOP_SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def exit_status(returncode: int) -> int:
    """A child's status as a shell gives it: 128 + N for a child ended by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def run_demo(routers: int, silent: int, ip_version: int, trace_args: list[str]) -> int:
    """Build the demo network, trace the server from the client, tear it all down.

    ``trace_args`` are passed to ``tracekit trace`` as they are; ``ip_version`` is the one
    they ask for (it chooses the addresses shown). A run ended by a signal exits with 130 for
    ``SIGINT`` and 128 + N for signal N, and the network is removed whatever arrives.
    """
    stop = _Stop()
    with stop.installed():
        lab = Lab(routers=routers, silent=[silent] if silent else [], ratelimit=None)
        try:
            try:
                lab.build()
            except LabError as exc:
                raise CannotProbe(f"cannot build the demo network: {exc}") from None
            if stop.signum is not None:
                return 128 + stop.signum
            print(_describe(lab, ip_version), file=sys.stderr, flush=True)
            command = [sys.executable, "-m", "tracekit", "trace", lab.name("server"), *trace_args]
            stop.trace = subprocess.Popen(lab.command("client", command))
            if stop.signum is not None:  # it came while the trace was being started
                stop.pass_on(stop.signum)
            code = exit_status(stop.trace.wait())
        finally:
            lab.close()
        return 128 + stop.signum if stop.signum is not None else code


def demo_databases(routers: int) -> list[str]:
    """The options that give the trace the packaged databases, which place the default demo
    network (three routers) in real cities; none for other networks."""
    if routers != 3:
        return []
    data = files("tracekit") / "data"
    return ["--geoip-db", str(data / "demo-city.mmdb"), "--asn-db", str(data / "demo-asn.mmdb")]


def _describe(lab: Lab, ip_version: int) -> str:
    hops = []
    for node in [*lab.router_names, "server"]:
        silent = node in tuple(lab.silent)
        address = lab.address(node, ip_version)
        hops.append(f"{node} {address}" + (" (silent)" if silent else ""))
    client = lab.address("client", ip_version)
    return f"demo network: client {client} -> " + " -> ".join(hops)
