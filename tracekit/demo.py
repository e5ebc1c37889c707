"""``tracekit demo``: trace a throwaway network of namespaces, then remove it."""

from __future__ import annotations

import signal
import subprocess
import sys
from importlib.resources import files
from types import FrameType

from tracekit.errors import CannotProbe
from tracekit.testing.netlab import Lab, LabError


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_demo(routers: int, silent: int, trace_args: list[str]) -> int:
    """Build the demo network, trace the server from the client, tear it all down."""
    signal.signal(signal.SIGTERM, _terminate)
    lab = Lab(routers=routers, silent=[silent] if silent else [], ratelimit=None)
    try:
        lab.build()
    except LabError as exc:
        lab.close()
        raise CannotProbe(f"cannot build the demo network: {exc}") from None
    try:
        print(_describe(lab, 6 if "-6" in trace_args else 4), file=sys.stderr, flush=True)
        command = [sys.executable, "-m", "tracekit", "trace", lab.name("server"), *trace_args]
        command += _demo_databases(routers, trace_args)
        process = subprocess.Popen(lab.command("client", command))
        try:
            return process.wait()
        except KeyboardInterrupt:
            return process.wait()  # the trace saw Ctrl-C too; let it finish its output
    finally:
        lab.close()


def _demo_databases(routers: int, trace_args: list[str]) -> list[str]:
    """The packaged databases that place the default demo network (three routers) in real
    cities, unless the user chose databases or no locations."""
    chosen = {"--geoip-db", "--asn-db", "--no-geo"} & {a.split("=")[0] for a in trace_args}
    if routers != 3 or chosen:
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
