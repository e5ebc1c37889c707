"""Many targets: one tracekit process against `xargs -P 16 traceroute` and scamper.

A namespace network of routers (some silent) where routers at several depths own a whole
prefix (``ip route add local``), so every address in it is a target whose hops are known.
The same targets, IPv4 and IPv6 mixed, are traced by:

- ``tracekit --targets FILE -n -q 3 --format jsonl --rate R``: one process;
- ``xargs -P 16 -n 1 traceroute -I -n -q 3``: 16 traceroutes at a time (Debian's
  ``traceroute``);
- ``scamper -c "trace -P icmp-paris -q 3" -p PPS -O json -f FILE`` (Debian's ``scamper``,
  installed with apt-get when missing; ``--no-scamper`` or ``--no-install`` to skip).

Runs alternate between the tools. It prints the median wall time of each and the ratios,
tracekit's probes a second, CPU and peak RSS, and checks that every tracekit trace shows
exactly the known hops (a wrong one makes it exit 1). ``--no-peers`` measures tracekit alone
(for the large runs: ``--targets 2250``, ``--targets 10000``). Root only; nothing leaves the
namespaces it builds.

The figures of issue 12::

    python benchmarks/bulk.py                                # 225 targets, with the peers
    python benchmarks/bulk.py --targets 2250 --no-peers      # probes/s, exact, peak RSS
    python benchmarks/bulk.py --targets 10000 --no-peers --runs 1   # peak RSS stays flat
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import tracekit
from peers import find_tool, machine_speed, measured, speed_line
from tracekit.testing import Lab

#: The routers (1-based) that own a prefix of targets: several depths; 2 and 4 are silent.
OWNERS = (1, 3, 5, 6)
SILENT = (2, 4)


def prefix(k: int, version: int) -> str:
    return f"10.{90 + k}.0.0/16" if version == 4 else f"2001:db8:9{k}::/64"


def targets(count: int) -> list[tuple[str, int, int]]:
    """``count`` targets ``(address, owner, version)``, spread over owners and versions
    (two IPv4 for one IPv6), all different."""
    out = []
    for i in range(count):
        k, version = OWNERS[i % len(OWNERS)], 4 if i % 3 else 6
        n = 1 + i
        address = (
            f"10.{90 + k}.{n // 250}.{n % 250 + 1}" if version == 4 else f"2001:db8:9{k}::{n:x}"
        )
        out.append((address, k, version))
    return out


def run(lab: Lab, args: list[str], stdin: str | None = None) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds and peak RSS (KiB) of ``args`` run in the lab's client
    (:func:`peers.measured`); its standard output."""
    usage = measured(lab, args, stdin)
    if usage.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args[:6])}... failed: {usage.stderr.strip()[:300]}")
    return usage.wall, usage.cpu, usage.maxrss_kib, usage.stdout


def sent_packets(lab: Lab) -> int:
    """Packets the client has sent so far, on every interface but loopback: a run's probes
    are the difference (its output shows no probe past the destination)."""
    links = json.loads(lab.exec("client", ["ip", "-j", "-s", "link", "show"]).stdout)
    return sum(link["stats64"]["tx"]["packets"] for link in links if link["ifname"] != "lo")


def check(lab: Lab, report: dict[str, Any], known: dict[str, tuple[int, int]]) -> str | None:
    """What is wrong with one trace's hops, if anything."""
    k, version = known[report["target"]]
    expected = [*lab.expected_hops(version, dst=f"r{k}")[:-1], report["target"]]
    hops: list[str | None] = []
    for hop in report["hops"]:
        answered = {p["address"] for p in hop["probes"] if p["address"]}
        hops.append(answered.pop() if len(answered) == 1 else None)
    return None if hops == expected else f"{report['target']}: {hops} != {expected}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=225)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10000, help="tracekit's --rate")
    parser.add_argument("--pps", type=int, default=10000, help="scamper's -p")
    parser.add_argument("--no-scamper", action="store_true")
    parser.add_argument("--no-peers", action="store_true", help="tracekit alone")
    parser.add_argument("--parallel", type=int, help="tracekit's --parallel")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get scamper")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bulk.py builds a network of namespaces: run it as root")
    compileall.compile_dir(Path(tracekit.__file__).parent, quiet=1)
    traceroute, note = (
        (None, "--no-peers")
        if args.no_peers
        else find_tool("traceroute", "traceroute", not args.no_install)
    )
    scamper, scamper_note = (
        (None, "--no-scamper" if args.no_scamper else "")
        if args.no_scamper or args.no_peers
        else find_tool("scamper", "scamper", not args.no_install)
    )
    chosen = targets(args.targets)
    known = {address: (k, version) for address, k, version in chosen}
    listing = "".join(f"{address}\n" for address in known)
    rows: dict[str, list[tuple[float, float, int]]] = {"tracekit": [], "xargs": [], "scamper": []}
    wrong: list[str] = []
    exact: list[int] = []  # traces exact, per run
    sent: list[int] = []  # packets the client sent, per tracekit run
    probes = 0
    # The routers' ICMP rate limits are off (ratelimit=0: icmp_ratelimit 0, and the global
    # budget icmp_msgs_per_sec/icmp_msgs_burst, 1,000 a second and 50 by default, raised to
    # 1,000,000): at 10,000 probes a second through r1, the kernel's defaults would withhold
    # most answers of the near hops (a property of the routers, docs/bulk.md#rate-limits),
    # and the hops checked here would not be exact whatever tracekit does.
    with Lab(routers=max(OWNERS), silent=list(SILENT), ratelimit=0) as lab, \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        for k in OWNERS:
            for version in (4, 6):
                lab.own_prefix(f"r{k}", prefix(k, version))
        lab.warm_up()
        path = Path(tmp) / "targets.txt"
        path.write_text(listing)
        os.chmod(tmp, 0o755)
        tk = [sys.executable, "-m", "tracekit", "--targets", str(path), "-n", "-q", "3",
              "--format", "jsonl", "--rate", f"{args.rate:g}"]  # fmt: skip
        if args.parallel:
            tk += ["--parallel", str(args.parallel)]
        xargs = ["xargs", "-P", "16", "-n", "1", traceroute or "traceroute", "-I", "-n", "-q", "3"]
        sc = [scamper or "scamper", "-c", "trace -P icmp-paris -q 3", "-p", str(args.pps),
              "-O", "json", "-f", str(path)]  # fmt: skip
        for _ in range(args.runs):
            before = sent_packets(lab)
            wall, cpu, rss, out = run(lab, tk)
            sent.append(sent_packets(lab) - before)
            rows["tracekit"].append((wall, cpu, rss))
            reports = [json.loads(line) for line in out.splitlines()]
            probes = sum(len(h["probes"]) for r in reports for h in r["hops"])
            bad = [w for r in reports if (w := check(lab, r, known))]
            exact.append(len(reports) - len(bad))
            wrong += bad
            if len(reports) != len(known):
                wrong.append(f"{len(reports)} traces for {len(known)} targets")
            if traceroute:
                rows["xargs"].append(run(lab, xargs, stdin=listing)[:3])
            if scamper:
                rows["scamper"].append(run(lab, sc)[:3])
    medians = {
        tool: {
            "wall": statistics.median(r[0] for r in runs),
            "cpu": statistics.median(r[1] for r in runs),
        }
        for tool, runs in rows.items()
        if runs
    }
    result: dict[str, Any] = {
        "targets": len(known),
        "runs": args.runs,
        "rate": args.rate,
        "medians": medians,
        "tracekit_probes": probes,
        "tracekit_probes_per_s": probes / medians["tracekit"]["wall"],
        "tracekit_sent": statistics.median(sent),
        "tracekit_sent_per_s": statistics.median(sent) / medians["tracekit"]["wall"],
        # start-up included; per probe sent (the output shows none past the destination)
        "tracekit_cpu_us_per_probe": medians["tracekit"]["cpu"]
        / max(1, statistics.median(sent))
        * 1e6,
        "tracekit_peak_rss_mib": max(r[2] for r in rows["tracekit"]) / 1024,
        "tracekit_exact_per_run": exact,
        "notes": [n for n in (note, scamper_note) if n],
        "wrong": wrong,
    }
    result["machine_speed_us"] = machine_speed()
    for peer in ("xargs", "scamper"):
        if peer in medians:
            result[f"tracekit_over_{peer}"] = medians["tracekit"]["wall"] / medians[peer]["wall"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{len(known)} targets (IPv4 and IPv6, {len(OWNERS)} depths, silent routers "
              f"{SILENT}); {args.runs} runs; tracekit --rate {args.rate:g}")  # fmt: skip
        for tool, m in medians.items():
            ratio = result.get(f"tracekit_over_{tool}")
            extra = f"   tracekit/{tool}: {ratio:.2f}" if ratio else ""
            print(f"{tool:9} wall {m['wall']:7.2f} s   cpu {m['cpu']:7.2f} s{extra}")
        print(f"tracekit: {probes} probes shown, {result['tracekit_probes_per_s']:.0f}/s; "
              f"{result['tracekit_sent']:.0f} sent, {result['tracekit_sent_per_s']:.0f}/s, "
              f"{result['tracekit_cpu_us_per_probe']:.0f} µs CPU a probe sent, "
              f"peak RSS {result['tracekit_peak_rss_mib']:.0f} MiB, exact traces per run "
              f"{exact} of {len(known)}")  # fmt: skip
        print(speed_line(result["machine_speed_us"]))
        for line in result["notes"]:
            print(f"note: {line}")
        for line in wrong[:10]:
            print(f"WRONG: {line}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
