"""Benchmark tracekit against the system traceroute on the namespace network.

Both tools trace the same lab (client, routers, some silent, server) with the same probe
method, probes per hop, window and maximum wait; runs alternate so drift hits both alike.
Prints median wall times and their ratio, with Python's own start-up shown separately.
Never sends anything outside the namespaces it builds. Needs root.

    python benchmarks/bench.py [--runs 7] [--routers 5] [--silent 2 4] [--json]
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import tracekit
from peers import machine_speed, speed_line
from tracekit.testing import Lab

PROBES = {"icmp": "-I", "udp": "-U", "tcp": "-T"}
#: What tracekit pays to import scapy (its routing tables are not read).
SCAPY_IMPORT = (
    "from tracekit.packets import skip_scapy_routes; skip_scapy_routes(); "
    "import scapy.layers.inet, scapy.layers.inet6"
)
COMMON = ["-n", "-q", "3", "-w", "5,3,10", "-N", "16"]


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if process.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.strip()}")
    return elapsed, process.stdout


def tracekit_hops(report: dict[str, Any]) -> list[str | None]:
    hops: list[str | None] = []
    for hop in report["hops"]:
        answered = {p["address"] for p in hop["probes"] if p["address"]}
        hops.append(answered.pop() if len(answered) == 1 else None)
    return hops


def traceroute_hops(output: str) -> list[str | None]:
    lines = output.splitlines()[1:]
    return [None if line.split()[1] == "*" else line.split()[1] for line in lines]


def measure(lab: Lab, version: int, probe: str, runs: int) -> dict[str, Any]:
    server = lab.address("server", version)
    expected = lab.expected_hops(version)
    ours = lab.command(
        "client", [sys.executable, "-m", "tracekit", server, f"-{version}", "--probe", probe,
                   *COMMON, "--format", "json"],
    )  # fmt: skip
    theirs = lab.command("client", ["traceroute", f"-{version}", PROBES[probe], *COMMON, server])
    walls: dict[str, list[float]] = {"tracekit": [], "traceroute": []}
    inside: list[float] = []
    wrong: list[str] = []
    for _ in range(runs):
        elapsed, out = timed(ours)
        report = json.loads(out)
        walls["tracekit"].append(elapsed)
        started = datetime.fromisoformat(report["started"])
        inside.append((datetime.fromisoformat(report["finished"]) - started).total_seconds())
        if tracekit_hops(report) != expected:
            wrong.append(f"tracekit {probe} IPv{version}: {tracekit_hops(report)}")
        elapsed, out = timed(theirs)
        walls["traceroute"].append(elapsed)
        if traceroute_hops(out) != expected:
            wrong.append(f"traceroute {probe} IPv{version}: {traceroute_hops(out)}")
    return {
        "probe": probe,
        "ip_version": version,
        "tracekit_wall": statistics.median(walls["tracekit"]),
        "tracekit_wall_min": min(walls["tracekit"]),
        "tracekit_trace": statistics.median(inside),
        "traceroute_wall": statistics.median(walls["traceroute"]),
        "traceroute_wall_min": min(walls["traceroute"]),
        "wrong": wrong,
    }


def baseline(lab: Lab, command: list[str], runs: int) -> float:
    return statistics.median(timed(lab.command("client", command))[0] for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--routers", type=int, default=5)
    parser.add_argument("--silent", type=int, nargs="*", default=[2, 4])
    parser.add_argument("--probes", nargs="*", default=list(PROBES), choices=list(PROBES))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    # As `pip install` does: an editable checkout (or PYTHONDONTWRITEBYTECODE) would
    # otherwise compile tracekit's modules from source on every run.
    compileall.compile_dir(Path(tracekit.__file__).parent, quiet=1)
    with Lab(routers=args.routers, silent=args.silent, ratelimit=0) as lab:
        python = baseline(lab, [sys.executable, "-c", "pass"], args.runs)
        libraries = baseline(lab, [sys.executable, "-c", "import click, pluggy"], args.runs)
        help_time = baseline(lab, [sys.executable, "-m", "tracekit", "--help"], args.runs)
        scapy = baseline(lab, [sys.executable, "-c", SCAPY_IMPORT], args.runs)
        rows = [
            measure(lab, version, probe, args.runs) for probe in args.probes for version in (4, 6)
        ]
    for row in rows:
        row["ratio"] = row["tracekit_wall"] / row["traceroute_wall"]
        row["ratio_without_startup"] = (row["tracekit_wall"] - python) / row["traceroute_wall"]
        row["ratio_trace"] = row["tracekit_trace"] / row["traceroute_wall"]
    result = {
        "network": f"{args.routers} routers, silent {args.silent}",
        "runs": args.runs,
        "python_startup": python,
        "scapy_import": scapy - python,
        "click_pluggy_import": libraries,
        "tracekit_help": help_time,
        "rows": rows,
        "machine_speed_us": machine_speed(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"network: {result['network']}; {args.runs} runs each; options {' '.join(COMMON)}")
        verdict = "PASS" if help_time < 0.1 else "FAIL"
        print(f"importing scapy's IP layers: {(scapy - python) * 1000:.0f} ms")
        above = (help_time - libraries) * 1000
        print(f"python -c pass: {python * 1000:.0f} ms;  python -c 'import click, pluggy': "
              f"{libraries * 1000:.0f} ms;  tracekit --help: {help_time * 1000:.0f} ms "
              f"({verdict}: < 100 ms; {above:.0f} ms above click and pluggy)")  # fmt: skip
        print(f"{'probe':6} {'IP':3} {'tracekit':>10} {'(trace)':>9} {'traceroute':>11} "
              f"{'ratio':>6} {'ratio-startup':>14} {'trace/traceroute':>17}")  # fmt: skip
        for row in rows:
            print(
                f"{row['probe']:6} v{row['ip_version']:<2} {row['tracekit_wall'] * 1000:8.0f}ms "
                f"{row['tracekit_trace'] * 1000:7.0f}ms {row['traceroute_wall'] * 1000:9.0f}ms "
                f"{row['ratio']:6.2f} {row['ratio_without_startup']:14.2f} "
                f"{row['ratio_trace']:17.2f}"
            )
        print("median wall times; (trace) is tracekit's own started..finished time;")
        print("ratio-startup subtracts Python's start-up (python -c pass) from tracekit's time;")
        print("trace/traceroute compares tracekit's trace alone with traceroute's whole run.")
        print(speed_line(result["machine_speed_us"]))
    wrong = [w for row in rows for w in row["wrong"]]
    for line in wrong:
        print(f"WRONG HOPS: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
