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

    python benchmarks/mda.py                    # 1,000 runs at 95 % and 99 %
    python benchmarks/mda.py --runs 200 --confidence 95 --ratelimit --json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

from tracekit.strategies.mda import probes_needed
from tracekit.testing.fakeroute import Topology, discover, random_diamond


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--confidence", type=int, nargs="+", default=[95, 99])
    parser.add_argument("--seed", type=int, default=0, help="the first run's topology seed")
    parser.add_argument("--max-width", type=int, default=16)
    parser.add_argument("--ratelimit", action="store_true",
                        help="routers limit their ICMP errors as Linux does (slow)")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
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
