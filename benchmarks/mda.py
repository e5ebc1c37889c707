"""Multipath discovery (--mda) on 1,000 simulated topologies: failure rate and probes.

Each run draws a random diamond (tracekit.testing.fakeroute.random_diamond: widths 2 to 16,
one to three levels, meshed every other run, per-flow hashing) and traces it with the
multipath strategy on a virtual clock; nothing is sent anywhere. A run fails if any
interface or link reachable by the method's flows is missed. It prints, per confidence:

- the measured failure rate against the nominal (1 - confidence), and exits 1 if it is
  above it, or if any run invented a link;
- the probes sent, against the MDA bound: what full MDA's per-interface rule needs at the
  nominal confidence on the true topology (n_k for each interface's k successors, summed),
  before node control's extra probes.

With ``--lab`` (root), it measures real traces instead: each namespace topology of
``tracekit.testing.netlab`` (DIAMOND, WIDE_DIAMOND, STEPPED, MESHED, with the Lab options
the tests use) is built once, and ``tracekit SERVER --mda -n --format json`` runs in its
client ``--lab-runs`` times per probe (udp, tcp) and IP version. A run is complete if it
found exactly ``Lab.hop_choices()`` and ``Lab.hop_links()``. Per row it prints the share of
complete runs, the interfaces and links invented (outside those sets), the median and
largest ``probes_sent``, and how many distinct source ports the runs had: the strategy's
flows are the same numbers on every run, but the source port is reserved anew by each run
(the kernel picks it), and the routers hash it, so each run's flows take other paths. It
exits 1 if a row is complete in under 95 % of its runs, or anything was invented.

    python benchmarks/mda.py                    # 1,000 runs at 95 % and 99 %
    python benchmarks/mda.py --runs 200 --confidence 95 --ratelimit --json
    sudo python benchmarks/mda.py --lab         # 40 runs a row, 16 rows: a few minutes
    sudo python benchmarks/mda.py --lab --lab-runs 10 --topology meshed --probe tcp
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from tracekit.strategies.mda import probes_needed
from tracekit.testing.fakeroute import Topology, discover, random_diamond
from tracekit.testing.netlab import DIAMOND, MESHED, STEPPED, WIDE_DIAMOND, Lab

#: The namespace topologies, with the Lab options tests/test_multipath.py gives them.
LABS: dict[str, dict[str, Any]] = {
    "diamond": {"topology": DIAMOND},
    "wide": {"topology": WIDE_DIAMOND},
    "stepped": {"topology": STEPPED, "single_return": True, "hash_seeds": True},
    "meshed": {"topology": MESHED, "single_return": True, "hash_seeds": True},
}
#: What a run of a row must achieve: every interface and link, in this share of runs.
LAB_TARGET = 0.95


def mda_bound(topology: Topology, confidence: float) -> int:
    """Full MDA's probes on ``topology``: ``n_k`` through every interface with ``k``
    successors (the stopping rule after seeing them all), summed."""
    return sum(probes_needed(len(after), confidence) for after in topology.successors.values())


def measure(
    runs: int, confidence: float, seed: int, max_width: int, ratelimit: bool
) -> dict[str, Any]:
    failed = {False: 0, True: 0}
    count = {False: 0, True: 0}
    invented = probes = bound = 0
    full = 0
    duration = 0.0
    started = time.perf_counter()
    for run in range(runs):
        mesh = run % 2 == 1
        topology = random_diamond(random.Random(seed + run), meshed=mesh, max_width=max_width)
        found = discover(topology, confidence, ratelimit=ratelimit)
        count[mesh] += 1
        failed[mesh] += not found.complete
        invented += bool(found.invented)
        probes += found.probes
        bound += mda_bound(topology, confidence)
        full += bool(found.strategy.full)
        duration += found.duration
    return {
        "confidence": confidence,
        "runs": runs,
        "failure_rate": (failed[False] + failed[True]) / runs,
        "nominal": round(1 - confidence, 4),
        "failure_rate_unmeshed": failed[False] / max(1, count[False]),
        "failure_rate_meshed": failed[True] / max(1, count[True]),
        "invented": invented,
        "probes_mean": probes / runs,
        "mda_bound_mean": bound / runs,
        "runs_with_full_mda": full,
        "virtual_seconds_mean": duration / runs,
        "cpu_seconds": time.perf_counter() - started,
    }


def lab_row(lab: Lab, probe: str, version: int, runs: int, extra: list[str]) -> dict[str, Any]:
    """``runs`` traces of ``lab``'s server with ``--mda``, compared with the truth."""
    hops, links = lab.hop_choices(version), lab.hop_links(version)
    complete = failed = invented_hosts = invented_links = 0
    missed: dict[str, int] = {}
    probes: list[int] = []
    ports: set[int] = set()
    started = time.perf_counter()
    for _ in range(runs):
        server = lab.address("server", version)
        args = [server, f"-{version}", "-n", "--mda", "--probe", probe, "--format", "json"]
        process = lab.tracekit(*args, *extra)
        if process.returncode != 0 or not process.stdout:
            failed += 1
            continue
        report = json.loads(process.stdout)
        probes.append(report["probes_sent"])
        ports.add(report["probe"]["parameters"]["source_port"])
        found = [{h["address"] for h in hop["hosts"]} for hop in report["hops"]]
        shown = {(k["ttl"], k["from"], k["to"]) for k in report["links"]}
        truth = hops + [set()] * max(0, len(found) - len(hops))
        invented_hosts += sum(len(f - t) for f, t in zip(found, truth, strict=False))
        invented_links += len(shown - links)
        if found == hops and shown == links:
            complete += 1
            continue
        for ttl, (f, t) in enumerate(zip(found, hops, strict=False), start=1):
            for address in t - f:
                missed[f"{ttl} {address}"] = missed.get(f"{ttl} {address}", 0) + 1
        for ttl, a, b in links - shown:
            missed[f"{ttl} {a}->{b}"] = missed.get(f"{ttl} {a}->{b}", 0) + 1
    return {
        "probe": probe,
        "ip_version": version,
        "runs": runs,
        "complete": complete / runs,
        "failed_runs": failed,
        "invented_interfaces": invented_hosts,
        "invented_links": invented_links,
        "probes_median": statistics.median(probes) if probes else None,
        "probes_max": max(probes, default=None),
        "source_ports": len(ports),
        "missed": missed,
        "seconds": time.perf_counter() - started,
    }


def lab_figures(
    names: list[str],
    probes: list[str],
    versions: list[int],
    runs: int,
    extra: list[str],
    done: Callable[[dict[str, Any]], None] = lambda row: None,
) -> list[dict[str, Any]]:
    """Every row (topology, probe, IP version), each passed to ``done`` once measured."""
    rows = []
    for name in names:
        with Lab(multipath_hash=1, ratelimit=0, **LABS[name]) as lab:
            for probe in probes:
                for version in versions:
                    row = lab_row(lab, probe, version, runs, extra)
                    rows.append({"topology": name, **row})
                    done(rows[-1])
    return rows


def lab_ok(row: dict[str, Any]) -> bool:
    return bool(
        row["complete"] >= LAB_TARGET
        and not row["invented_interfaces"]
        and not row["invented_links"]
    )


def print_header() -> None:
    print(f"{'topology':9} {'probe':5} {'ip':3} {'runs':>4} {'complete':>9} "
          f"{'invented':>8} {'probes':>10} {'ports':>5}  missed", flush=True)  # fmt: skip


def print_row(r: dict[str, Any]) -> None:
    probes = f"{r['probes_median']:g}/{r['probes_max']}" if r["probes_max"] else "-"
    invented = f"{r['invented_interfaces']}/{r['invented_links']}"
    missed = ", ".join(f"{k} ({n})" for k, n in sorted(r["missed"].items())) or "-"
    if r["failed_runs"]:
        missed += f"; {r['failed_runs']} runs failed"
    print(
        f"{r['topology']:9} {r['probe']:5} v{r['ip_version']:<2} {r['runs']:>4} "
        f"{r['complete']:>9.1%} {invented:>8} {probes:>10} {r['source_ports']:>5}  "
        f"{missed}{'' if lab_ok(r) else '  << BELOW TARGET'}",
        flush=True,
    )


def print_legend() -> None:
    print("complete: runs that found every interface and link; invented: interfaces/links "
          "not in the lab; probes: probes_sent, median/max; ports: distinct source ports "
          "of the runs (each run reserves its own, so its flows hash other ways)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--confidence", type=int, nargs="+", default=[95, 99])
    parser.add_argument("--seed", type=int, default=0, help="the first run's topology seed")
    parser.add_argument("--max-width", type=int, default=16)
    parser.add_argument("--ratelimit", action="store_true",
                        help="routers limit their ICMP errors as Linux does (slow)")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    lab = parser.add_argument_group("namespace networks (root)")
    lab.add_argument(
        "--lab",
        action="store_true",
        help="real traces on namespace networks instead of the simulator",
    )
    lab.add_argument("--lab-runs", type=int, default=40, help="runs a row")
    lab.add_argument("--topology", nargs="+", choices=list(LABS), default=list(LABS))
    lab.add_argument("--probe", nargs="+", choices=["udp", "tcp"], default=["udp", "tcp"])
    lab.add_argument("--ip", type=int, nargs="+", choices=[4, 6], default=[4, 6])
    lab.add_argument("--unprivileged", action="store_true",
                     help="trace with --unprivileged sockets (as root)")  # fmt: skip
    args = parser.parse_args()
    if args.lab:
        extra = ["--unprivileged"] if args.unprivileged else []
        if args.json:
            rows = lab_figures(args.topology, args.probe, args.ip, args.lab_runs, extra)
            print(json.dumps(rows, indent=2))
        else:
            print_header()
            rows = lab_figures(args.topology, args.probe, args.ip, args.lab_runs, extra, print_row)
            print_legend()
        return 0 if all(lab_ok(r) for r in rows) else 1
    results = [
        measure(args.runs, c / 100, args.seed, args.max_width, args.ratelimit)
        for c in args.confidence
    ]
    ok = all(r["failure_rate"] <= r["nominal"] and not r["invented"] for r in results)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"{r['confidence']:.0%}: {r['runs']} runs, failure rate {r['failure_rate']:.1%} "
                f"(nominal {r['nominal']:.0%}; unmeshed {r['failure_rate_unmeshed']:.1%}, "
                f"meshed {r['failure_rate_meshed']:.1%}), links invented in {r['invented']} runs"
            )
            print(
                f"     probes {r['probes_mean']:.0f} a run against an MDA bound of "
                f"{r['mda_bound_mean']:.0f} ({r['probes_mean'] / r['mda_bound_mean']:.2f}x); "
                f"full MDA in {r['runs_with_full_mda']} runs; "
                f"{r['virtual_seconds_mean']:.2f} s simulated a run; {r['cpu_seconds']:.0f} s CPU"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
