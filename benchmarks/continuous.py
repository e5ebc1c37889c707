"""Benchmark tracekit's continuous mode: CPU per probe, memory, mtr, and the hot path.

On a namespace network (routers without ICMP rate limits):

1. CPU per probe of ``tracekit SERVER -n -c COUNT -i INTERVAL --format json`` in the client's
   namespace: the child's user+sys CPU (``os.wait4``), minus that of a ``-c 1`` run (start-up),
   divided by the probes sent (the hops' ``stats.sent``). Peak RSS (read by GNU time) of
   ``-c 1``, ``-c COUNT`` and ``-c LONG``: memory must not grow with rounds.
2. ``mtr -n -r -c COUNT -i INTERVAL`` in the same network, measured the same way (its
   ``mtr-packet`` helper included), and the ratios tracekit/mtr; and the floors, a bare loop
   sending the same packets and reading the answers, in Python and in C (``floor.c``).
   Each of them again with one probe a round (``-f``, the destination's TTL): the CPU of a
   round with every hop and with one probe, which is mostly the cost of waking up.
3. In-process micro-figures: microseconds per ``ProbeMethod.build``, per ``ProbeMethod.match``
   (an error quoting our probe, the destination's answer, an unrelated packet) for icmp, udp
   and tcp over IPv4 and IPv6, and per probe of ``Engine`` with the ``Rounds`` strategy.

Never sends anything outside the namespaces it builds. Needs root for 1 and 2 (``--micro-only``
runs 3 alone, without root).

    python benchmarks/continuous.py [--runs 3] [--count 1500] [--interval 0.005] [--json]
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import tracekit
from peers import Usage, find_tool, machine_speed, measured, speed_line

#: CPU per probe a continuous run may cost (the issue's target), in microseconds.
TARGET_US = 100.0
#: Peak RSS a run of LONG rounds may add to one of LONG/2 rounds before memory is said to grow.
#: (Shorter runs are not the steady state: a released sequence number rests for
#: ``tracekit.engine.QUARANTINE`` seconds, so the table of resting ones fills for that long.)
GROWTH_KIB = 1024
MTR_METHODS = {"icmp": [], "udp": ["-u"], "tcp": ["-T", "-P", "80"]}
#: Where the children run: ``python -m tracekit`` there is the tracekit this script imports.
ROOT = Path(tracekit.__file__).resolve().parent.parent


def run_child(lab: Any, args: list[str]) -> Usage:
    """:func:`peers.measured`, from the directory of the tracekit this script imports."""
    return measured(lab, args, cwd=ROOT)


# -- tracekit and mtr in the lab ---------------------------------------------------------------


def tracekit_run(
    lab: Any, server: str, version: int, probe: str, count: int, interval: str, first: int = 1
) -> tuple[Usage, int, int, int]:
    command = [sys.executable, "-m", "tracekit", server, f"-{version}", "--probe", probe, "-n",
               "-f", str(first), "-c", str(count), "-i", interval, "--format", "json"]  # fmt: skip
    usage = run_child(lab, command)
    if usage.returncode != 0:
        raise SystemExit(f"tracekit -c {count} failed ({usage.returncode}): {usage.stderr}")
    report = json.loads(usage.stdout)
    sent = sum(hop["stats"]["sent"] for hop in report["hops"])
    received = sum(hop["stats"]["received"] for hop in report["hops"])
    return usage, sent, received, len(report["hops"])


#: One hop of ``mtr -r``: "  3.|-- 10.0.3.2   0.0%   300 ...".
MTR_HOP = re.compile(r"^\s*\d+\.\|--\s+(\S+)\s+([\d.]+)%\s+(\d+)")


def mtr_run(
    lab: Any, server: str, version: int, probe: str, count: int, interval: str, first: int = 1
) -> tuple[Usage, int | None, int | None, int]:
    command = ["mtr", "-n", "-r", f"-{version}", *MTR_METHODS[probe], "-f", str(first),
               "-c", str(count), "-i", interval, server]  # fmt: skip
    usage = run_child(lab, command)
    hops = [h for line in usage.stdout.splitlines() if (h := MTR_HOP.match(line))]
    if usage.returncode != 0 or not hops:
        return usage, None, None, 0
    sent = sum(int(h.group(3)) for h in hops)
    received = round(sum(int(h.group(3)) * (1 - float(h.group(2)) / 100) for h in hops))
    return usage, sent, received, len(hops)


def find_mtr(install: bool) -> tuple[str | None, str]:
    """The mtr command, installing Debian's ``mtr-tiny`` if missing and apt is usable."""
    return find_tool("mtr", "mtr-tiny", install)


def accepted_interval(lab: Any, server: str, wanted: str) -> tuple[str, str]:
    """The smallest interval mtr takes, from ``wanted`` up; and a note if it is not that."""
    for interval in dict.fromkeys([wanted, "0.01", "0.1", "1"]):
        if float(interval) < float(wanted):
            continue
        usage = run_child(lab, ["mtr", "-n", "-r", "-c", "1", "-i", interval, server])
        if usage.returncode == 0:
            note = "" if interval == wanted else f"mtr refuses -i {wanted}: both use -i {interval}"
            return interval, note
    raise SystemExit(f"mtr refuses every interval: {usage.stderr.strip()}")


#: The start of both floors: the packets tracekit sends, one per TTL from the first to the
#: destination's, built by its probe method.
PACKETS = r"""
import socket, struct, sys, time
from tracekit.probes import ProbeContext
from tracekit.probes.icmp import IcmpEcho
from tracekit.probes.tcp import TcpSyn
from tracekit.probes.udp import UdpProbe

probe, version, src, dst, hops, count, interval, first = sys.argv[1:9]
version, hops, count, interval = int(version), int(hops), int(count), float(interval)
family = socket.AF_INET if version == 4 else socket.AF_INET6
cls = {"icmp": IcmpEcho, "udp": UdpProbe, "tcp": TcpSyn}[probe]
method = cls(ProbeContext(version, src, dst, {}))
packets = [method.build(ttl, 0, ttl) for ttl in range(int(first), hops + 1)]
hops = len(packets)
"""

#: Writes the packets to the file named by the 9th argument, for the floor in C.
WRITE = (
    PACKETS
    + r"""
with open(sys.argv[9], "wb") as out:
    out.write(b"".join(struct.pack("=H", len(p)) + p for p in packets))
method.close()
"""
)

#: The floor: what any tool pays per probe in this lab (sendto, the kernel forwarding through
#: the routers' namespaces, which runs in the sender's context, the answers, recvmsg): a bare
#: raw-socket loop sending the same packets as tracekit (built once per TTL by the same probe
#: method: for TCP, the destination's SYN-ACK and the client kernel's RST included), with the
#: same rounds and interval, waking once a round as tracekit's patient driver does.
FLOOR = (
    PACKETS
    + r"""
sender = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
protocols = [socket.IPPROTO_ICMP if version == 4 else socket.IPPROTO_ICMPV6]
if probe == "tcp":
    protocols.append(socket.IPPROTO_TCP)
receivers = [socket.socket(family, socket.SOCK_RAW, p) for p in protocols]
for r in receivers:
    r.setblocking(False)
    r.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS, as tracekit reads
sent = received = 0
due = time.monotonic()
end = due + count * interval + 0.05
while True:
    now = time.monotonic()
    if sent < count * hops and now >= due:
        for packet in packets:
            sender.sendto(packet, (dst, 0))
        sent += hops
        due += interval
    for r in receivers:
        while True:
            try:
                r.recvmsg(65535, 256)
                received += 1
            except BlockingIOError:
                break
    if now >= end:
        break
    time.sleep(max(0.0, min(due, end) - time.monotonic()))
method.close()
print(sent, received)
"""
)


def floor_run(
    lab: Any, probe: str, version: int, hops: int, count: int, interval: str, first: int = 1
) -> tuple[Usage, int, int]:
    args = _floor_args(lab, probe, version, hops, count, interval, first)
    usage = run_child(lab, [sys.executable, "-c", FLOOR, *args])
    if usage.returncode != 0:
        raise SystemExit(f"the raw-socket loop failed: {usage.stderr}")
    sent, received = map(int, usage.stdout.split())
    return usage, sent, received


def _floor_args(lab: Any, probe: str, version: int, hops: int, count: int,
                interval: str, first: int) -> list[str]:  # fmt: skip
    return [probe, str(version), lab.address("client", version), lab.address("server", version),
            str(hops), str(count), interval, str(first)]  # fmt: skip


#: Where the floor in C is built; removed when the script ends.
_BUILD = tempfile.TemporaryDirectory(prefix="tracekit-floor-")


@functools.cache
def c_floor_binary() -> str | None:
    """``benchmarks/floor.c`` compiled with the system's C compiler, or None without one."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    binary = Path(_BUILD.name) / "floor"
    source = Path(__file__).with_name("floor.c")
    done = subprocess.run([compiler, "-O2", "-o", str(binary), str(source)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"floor.c does not compile: {done.stderr}")
    return str(binary)


def c_floor_run(
    lab: Any,
    binary: str,
    probe: str,
    version: int,
    hops: int,
    count: int,
    interval: str,
    first: int = 1,
) -> tuple[Usage, int, int]:
    """The same loop as :data:`FLOOR`, in C: what the kernel costs a probe, with no Python."""
    args = _floor_args(lab, probe, version, hops, count, interval, first)
    with tempfile.TemporaryDirectory() as tmp:
        packets = str(Path(tmp) / "packets")
        wrote = run_child(lab, [sys.executable, "-c", WRITE, *args, packets])
        if wrote.returncode != 0:
            raise SystemExit(f"writing the floor's packets failed: {wrote.stderr}")
        usage = run_child(lab, [binary, str(version), args[3], str(count), interval,
                                str(int(probe == "tcp")), packets])  # fmt: skip
    if usage.returncode != 0:
        raise SystemExit(f"the raw-socket loop in C failed ({usage.returncode}): {usage.stderr}")
    sent, received = map(int, usage.stdout.split())
    return usage, sent, received


def per_probe(long: Usage, short: Usage, sent: int, sent_short: int, kind: str = "cpu") -> float:
    """Microseconds of CPU (``kind``: ``cpu``, ``user`` or ``sys``) per probe, start-up (the
    short run) taken off."""
    spent = float(getattr(long, kind) - getattr(short, kind))
    return spent / max(1, sent - sent_short) * 1e6


def continuous(args: argparse.Namespace) -> dict[str, Any]:
    from tracekit.testing import Lab

    out: dict[str, Any] = {"rows": [], "notes": []}
    with Lab(routers=args.routers, silent=args.silent, ratelimit=0) as lab:
        mtr, why = (None, "--no-mtr") if args.no_mtr else find_mtr(not args.no_install)
        if why:
            out["notes"].append(why)
        interval = args.interval
        if mtr is not None:
            interval, note = accepted_interval(lab, lab.address("server", 4), args.interval)
            if note:
                out["notes"].append(note)
        out["interval"] = interval
        for version in args.versions:
            server = lab.address("server", version)
            for probe in args.probes:
                out["rows"].append(measure(lab, server, version, probe, interval, mtr, args))
    return out


def measure(lab: Any, server: str, version: int, probe: str, interval: str, mtr: str | None,
            args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    keys = ("base", "count", "mid", "long", "mtr", "mtr_base", "floor", "floor_base", "c_floor",
            "c_floor_base", "count_one", "mtr_one", "floor_one", "c_floor_one")  # fmt: skip
    samples: dict[str, list[Any]] = {k: [] for k in keys}
    floor = not args.no_floor
    binary = c_floor_binary() if floor else None
    for _ in range(args.runs):  # alternate the tools, so drift on the machine hits both alike
        samples["base"].append(tracekit_run(lab, server, version, probe, 1, interval))
        samples["count"].append(tracekit_run(lab, server, version, probe, args.count, interval))
        if mtr is not None:
            samples["mtr_base"].append(mtr_run(lab, server, version, probe, 1, interval))
            samples["mtr"].append(mtr_run(lab, server, version, probe, args.count, interval))
        if floor:
            hops = samples["count"][-1][3]
            samples["floor_base"].append(floor_run(lab, probe, version, hops, 1, interval))
            samples["floor"].append(floor_run(lab, probe, version, hops, args.count, interval))
            if binary is not None:
                samples["c_floor_base"].append(
                    c_floor_run(lab, binary, probe, version, hops, 1, interval)
                )
                samples["c_floor"].append(
                    c_floor_run(lab, binary, probe, version, hops, args.count, interval)
                )
        if not args.no_wakeups:  # the same runs with one probe a round: the destination's TTL
            last = samples["count"][-1][3]
            samples["count_one"].append(
                tracekit_run(lab, server, version, probe, args.count, interval, last)
            )
            if mtr is not None:
                samples["mtr_one"].append(
                    mtr_run(lab, server, version, probe, args.count, interval, last)
                )
            if floor:
                samples["floor_one"].append(
                    floor_run(lab, probe, version, last, args.count, interval, last)
                )
                if binary is not None:
                    samples["c_floor_one"].append(
                        c_floor_run(lab, binary, probe, version, last, args.count, interval, last)
                    )
    if args.long:
        samples["mid"].append(tracekit_run(lab, server, version, probe, args.long // 2, interval))
        samples["long"].append(tracekit_run(lab, server, version, probe, args.long, interval))

    def us(long: tuple[Any, ...], short: tuple[Any, ...], kind: str = "cpu") -> float:
        return per_probe(long[0], short[0], long[1], short[1], kind)

    def summary(runs: list[Any], bases: list[Any]) -> dict[str, Any]:
        """What every tool's row has: CPU per probe (start-up taken off), counts, medians."""
        pairs = list(zip(runs, bases, strict=True))
        return {
            "us_per_probe": statistics.median(us(a, b) for a, b in pairs),
            "us_per_probe_all": [round(us(a, b), 1) for a, b in pairs],
            "probes_sent": runs[0][1],
            "probes_answered": runs[0][2],
            "cpu_s": statistics.median(s[0].cpu for s in runs),
            "rss_kib": statistics.median(s[0].maxrss_kib for s in runs),
        }

    def more(runs: list[Any], bases: list[Any]) -> dict[str, Any]:
        """Start-up, wall time and hops (of tracekit and mtr, not the bare loop)."""
        return {
            "hops": runs[0][3],
            "startup_cpu_s": statistics.median(s[0].cpu for s in bases),
            "wall_s": statistics.median(s[0].wall for s in runs),
        }

    row: dict[str, Any] = {"ip_version": version, "probe": probe, "count": args.count}
    pairs = list(zip(samples["count"], samples["base"], strict=True))
    row["tracekit"] = {
        **summary(samples["count"], samples["base"]),
        **more(samples["count"], samples["base"]),
        "user_us_per_probe": statistics.median(us(a, b, "user") for a, b in pairs),
        "sys_us_per_probe": statistics.median(us(a, b, "sys") for a, b in pairs),
        "user_s": statistics.median(s[0].user for s in samples["count"]),
        "sys_s": statistics.median(s[0].sys for s in samples["count"]),
        "rss_kib_c1": statistics.median(s[0].maxrss_kib for s in samples["base"]),
    }
    tk = row["tracekit"]
    tk["pass"] = tk["us_per_probe"] <= TARGET_US
    if samples["long"]:
        long = samples["long"][0]
        tk.update(long_count=args.long, rss_kib_long=long[0].maxrss_kib, probes_sent_long=long[1],
                  us_per_probe_long=per_probe(long[0], samples["base"][0][0], long[1],
                                              samples["base"][0][1]))  # fmt: skip
        mid = samples["mid"][0]
        tk.update(mid_count=args.long // 2, rss_kib_mid=mid[0].maxrss_kib)
        tk["memory_bounded"] = long[0].maxrss_kib - mid[0].maxrss_kib <= GROWTH_KIB
    if samples["mtr"] and all(s[1] for s in samples["mtr"] + samples["mtr_base"]):
        row["mtr"] = {
            **summary(samples["mtr"], samples["mtr_base"]),
            **more(samples["mtr"], samples["mtr_base"]),
        }
        m = row["mtr"]
        row["ratio_us_per_probe"] = tk["us_per_probe"] / m["us_per_probe"]
        row["ratio_cpu"] = tk["cpu_s"] / m["cpu_s"]
        row["ratio_rss"] = tk["rss_kib"] / m["rss_kib"]
    elif samples["mtr"]:
        row["mtr_error"] = samples["mtr"][0][0].stderr.strip() or "no report"
    if samples["floor"]:
        row["floor"] = summary(samples["floor"], samples["floor_base"])
        tk["us_above_floor"] = tk["us_per_probe"] - row["floor"]["us_per_probe"]
        if "mtr" in row:
            row["mtr"]["us_above_floor"] = row["mtr"]["us_per_probe"] - row["floor"]["us_per_probe"]
    if samples["c_floor"]:
        row["c_floor"] = summary(samples["c_floor"], samples["c_floor_base"])
        tk["us_above_c_floor"] = tk["us_per_probe"] - row["c_floor"]["us_per_probe"]
    if samples["count_one"]:
        row["rounds"] = {}
        tools = [
            ("tracekit", "count", "base"),
            ("mtr", "mtr", "mtr_base"),
            ("floor", "floor", "floor_base"),
            ("c_floor", "c_floor", "c_floor_base"),
        ]
        for tool, every, base in tools:
            if samples[f"{every}_one"] and (tool != "mtr" or "mtr" in row):
                row["rounds"][tool] = per_round(
                    samples[every], samples[f"{every}_one"], samples[base], args.count
                )
    return row


def per_round(every: list[Any], one: list[Any], bases: list[Any], count: int) -> dict[str, Any]:
    """Microseconds of CPU a round costs with every hop probed and with one probe (the
    destination's TTL), start-up (a ``-c 1`` run with every hop) taken off; and what each
    probe after the first adds. A round with one probe is mostly the cost of waking up."""

    def cost(runs: list[Any]) -> float:
        return statistics.median(
            float(run[0].cpu - base[0].cpu) / (count - 1) * 1e6
            for run, base in zip(runs, bases, strict=True)
        )

    hops = every[0][1] // count  # probes a round (a run of COUNT rounds sent every[0][1])
    all_us, one_us = cost(every), cost(one)
    return {"hops": hops, "every_us": all_us, "one_us": one_us,
            "further_us": (all_us - one_us) / max(1, hops - 1)}  # fmt: skip


# -- the hot path, in-process ------------------------------------------------------------------

#: Probes reserve their source port with a real socket, so the source must be local.
SRC = {4: "127.0.0.1", 6: "::1"}
DST = {4: "10.0.6.2", 6: "2001:db8:6::2"}
HOP = {4: "10.0.3.2", 6: "2001:db8:3::2"}
OTHER = {4: "10.9.9.9", 6: "2001:db8:99::9"}
SEQ = 7


def per_call(function: Callable[[], object], seconds: float) -> float:
    """Microseconds per call of ``function``: the best of five batches."""
    n = 1
    while True:  # batches of about seconds/5
        start = time.perf_counter()
        for _ in range(n):
            function()
        if time.perf_counter() - start > seconds / 25:
            break
        n *= 4
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            function()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def replies(method: Any, version: int, probe: str, packet: bytes) -> dict[str, bytes]:
    """Real reply bytes, built by scapy once: an error quoting ``packet``, the destination's
    answer to it, and an unrelated ICMP message."""
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.inet6 import (
        ICMPv6DestUnreach,
        ICMPv6EchoReply,
        ICMPv6EchoRequest,
        ICMPv6TimeExceeded,
        IPv6,
    )

    src, dst, hop, other = SRC[version], DST[version], HOP[version], OTHER[version]
    error: Any
    unrelated: Any
    unreachable: Any
    if version == 4:
        error = IP(src=hop, dst=src) / ICMP(type=11) / packet
        unrelated = IP(src=hop, dst=src) / ICMP(type=11) / (IP(src=src, dst=other, ttl=1) / ICMP())
        unreachable = IP(src=dst, dst=src) / ICMP(type=3, code=3) / packet
    else:
        error = IPv6(src=hop, dst=src) / ICMPv6TimeExceeded() / packet
        unrelated = IPv6(src=hop, dst=src) / ICMPv6TimeExceeded() / (
            IPv6(src=src, dst=other, hlim=1) / ICMPv6EchoRequest()
        )  # fmt: skip
        unreachable = IPv6(src=dst, dst=src) / ICMPv6DestUnreach(code=4) / packet
    l4 = packet[20 if version == 4 else 40 :]
    if probe == "icmp":
        ident, seq = int.from_bytes(l4[4:6], "big"), int.from_bytes(l4[6:8], "big")
        echo = (
            ICMP(type=0, id=ident, seq=seq) if version == 4 else ICMPv6EchoReply(id=ident, seq=seq)
        )
        answer = (IP(src=dst, dst=src) if version == 4 else IPv6(src=dst, dst=src)) / echo
    elif probe == "tcp":
        isn = int.from_bytes(l4[4:8], "big")
        synack = TCP(sport=method.port, dport=method.source_port, flags="SA", ack=isn + 1)
        answer = (IP(src=dst, dst=src) if version == 4 else IPv6(src=dst, dst=src)) / synack
    else:
        answer = unreachable
    return {"error": bytes(error), "answer": bytes(answer), "unrelated": bytes(unrelated)}


def micro(seconds: float) -> dict[str, Any]:
    from tracekit.packets import skip_scapy_routes

    skip_scapy_routes()
    from tracekit.probes import ProbeContext, Received
    from tracekit.probes.icmp import IcmpEcho
    from tracekit.probes.tcp import TcpSyn
    from tracekit.probes.udp import UdpProbe
    from tracekit.wire import parse

    rows = []
    for probe, cls in (("icmp", IcmpEcho), ("udp", UdpProbe), ("tcp", TcpSyn)):
        for version in (4, 6):
            method = cls(ProbeContext(version, SRC[version], DST[version], {}))
            try:
                seq = SEQ
                packet = method.build(5, 0, seq)
                row: dict[str, Any] = {"probe": probe, "ip_version": version}
                row["build_us"] = per_call(functools.partial(method.build, 5, 0, SEQ), seconds)
                for kind, data in replies(method, version, probe, packet).items():
                    source = {"error": HOP, "answer": DST, "unrelated": HOP}[kind][version]
                    match = method.match(Received(data, version, source, 0.0, 64))
                    expected = kind != "unrelated"
                    if (match is not None) != expected or (match and match.seq != seq):
                        raise SystemExit(f"{probe} IPv{version}: {kind} matched as {match}")

                    def call(
                        m: Any = method, d: bytes = data, v: int = version, s: str = source
                    ) -> object:
                        # a fresh Received each time, as from the socket: parse included
                        return m.match(Received(d, v, s, 0.0, 64))

                    row[f"match_{kind}_us"] = per_call(call, seconds)
                    row[f"parse_{kind}_us"] = per_call(functools.partial(parse, data, version),
                                                       seconds)  # fmt: skip
                rows.append(row)
            finally:
                method.close()
    return {"methods": rows, "engine": engine_micro(rounds=2000)}


def engine_micro(rounds: int, hops: int = 6, interval: float = 0.005) -> dict[str, Any]:
    """Drive ``Engine`` + ``Rounds`` with a virtual clock over a simulated chain of ``hops``
    (the last the destination): microseconds per probe for ``due`` (building included),
    ``sent``, ``feed`` (matching included) and ``take_events``. Reply bytes are made outside
    the timed parts."""
    from tracekit.engine import Engine
    from tracekit.probes import ProbeContext, Received
    from tracekit.probes.icmp import IcmpEcho
    from tracekit.strategies.classic import Schedule
    from tracekit.strategies.rounds import Rounds

    method = IcmpEcho(ProbeContext(4, SRC[4], DST[4], {}))
    strategy = Rounds(Schedule(), rounds, interval)
    engine = Engine(method, strategy)
    routers = [f"10.0.{k}.2" for k in range(1, hops)]
    ip_error = bytes.fromhex("4500 0000 0000 0000 40 01 0000") + bytes(8)
    timing = {"due": 0.0, "sent": 0.0, "feed": 0.0, "events": 0.0}
    now, sent, answers, events = 1_000_000.0, 0, 0, 0
    clock = time.perf_counter
    while not engine.finished:
        t0 = clock()
        probes = engine.due(now)
        t1 = clock()
        packets = [p.packet for p in probes]
        t2 = clock()
        for p in probes:
            engine.sent(p, now)
        t3 = clock()
        arrived = []
        for p, packet in zip(probes, packets, strict=True):
            when = now + 0.0001 * p.ttl
            if p.ttl < hops:  # time exceeded from router ttl, quoting the probe
                data = ip_error + b"\x0b\x00\x00\x00\x00\x00\x00\x00" + packet
                arrived.append(Received(data, 4, routers[p.ttl - 1], when, 64))
            else:  # the destination's echo reply
                echo = bytearray(packet)
                echo[20] = 0
                arrived.append(Received(bytes(echo), 4, DST[4], when, 64))
        t4 = clock()
        for r in arrived:
            answers += engine.feed(r)
        t5 = clock()
        events += len(engine.take_events())
        t6 = clock()
        timing["due"] += t1 - t0
        timing["sent"] += t3 - t2
        timing["feed"] += t5 - t4
        timing["events"] += t6 - t5
        sent += len(probes)
        now += interval
    method.close()
    hop_stats = [h.stats for h in strategy.hops()]
    assert all(s is not None and s.received == s.sent for s in hop_stats), "lost in simulation"
    out: dict[str, Any] = {f"{k}_us": v / sent * 1e6 for k, v in timing.items()}
    out["total_us"] = sum(timing.values()) / sent * 1e6
    out.update(rounds=rounds, hops=hops, probes=sent, answers=answers, events=events)
    return out


# -- output ------------------------------------------------------------------------------------


def _mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                        enumerate(zip(r, widths, strict=True))))  # fmt: skip


def print_continuous(result: dict[str, Any], c: dict[str, Any]) -> None:
    print(f"continuous mode: {result['network']}; -c {result['count']} -i {c['interval']}; "
          f"{result['runs']} runs each, medians")  # fmt: skip
    for note in c["notes"]:
        print(f"note: {note}")
    header = ["tool", "probe", "sent", "CPU s", "-c 1 s", "us/probe", "user", "sys",
              "RSS MiB", "-c 1 MiB", "mid MiB", "long MiB", "wall s"]  # fmt: skip
    rows = []
    for row in c["rows"]:
        name = f"{row['probe']} v{row['ip_version']}"
        tk = row["tracekit"]
        rows.append(["tracekit", name, str(tk["probes_sent"]), f"{tk['cpu_s']:.2f}",
                     f"{tk['startup_cpu_s']:.2f}", f"{tk['us_per_probe']:.1f}",
                     f"{tk['user_us_per_probe']:.1f}", f"{tk['sys_us_per_probe']:.1f}",
                     _mib(tk["rss_kib"]), _mib(tk["rss_kib_c1"]), _mib(tk.get("rss_kib_mid")),
                     _mib(tk.get("rss_kib_long")),
                     f"{tk['wall_s']:.1f}"])  # fmt: skip
        for tool, label in (("mtr", "mtr"), ("floor", "floor"), ("c_floor", "floor C")):
            if tool in row:
                t = row[tool]
                rows.append([label, name, str(t["probes_sent"]), f"{t['cpu_s']:.2f}", "",
                             f"{t['us_per_probe']:.1f}", "", "", _mib(t["rss_kib"]), "", "", "",
                             f"{t.get('wall_s', 0):.1f}" if "wall_s" in t else ""])  # fmt: skip
    _table(header, rows)
    print("us/probe: (CPU of -c COUNT - CPU of -c 1) / (probes sent - probes of -c 1), user+sys;")
    print("floor: a bare raw-socket loop in Python, the same probes and rounds; floor C: the")
    print("same loop in C (benchmarks/floor.c), the kernel's cost alone, what any tool pays;")
    print("RSS: peak resident size (mtr: the larger of mtr and its mtr-packet helper).")
    print_rounds(c["rows"])
    for row in c["rows"]:
        tk = row["tracekit"]
        name = f"{row['probe']} IPv{row['ip_version']}"
        verdict = "PASS" if tk["pass"] else "FAIL"
        print(f"{name}: tracekit {tk['us_per_probe']:.1f} us/probe "
              f"({verdict}: at most {TARGET_US:.0f}); runs: {tk['us_per_probe_all']}")  # fmt: skip
        if "us_above_floor" in tk:
            print(
                f"{name}: above the floor: tracekit {tk['us_above_floor']:.1f} us/probe"
                + (f", mtr {row['mtr']['us_above_floor']:.1f}" if "mtr" in row else "")
            )
        if "us_above_c_floor" in tk:
            c_floor = row["c_floor"]["us_per_probe"]
            print(f"{name}: the floor in C {c_floor:.1f} us/probe leaves "
                  f"{TARGET_US - c_floor:.1f} of the {TARGET_US:.0f} for a tool's own work; "
                  f"tracekit's own: {tk['us_above_c_floor']:.1f}")  # fmt: skip
        if "memory_bounded" in tk:
            grown = (tk["rss_kib_long"] - tk["rss_kib_mid"]) / 1024
            state = "bounded" if tk["memory_bounded"] else "GROWS"
            print(f"{name}: peak RSS -c {tk['long_count']} minus -c {tk['mid_count']}: "
                  f"{grown:+.1f} MiB ({state}); -c {row['count']} minus -c 1: "
                  f"{(tk['rss_kib'] - tk['rss_kib_c1']) / 1024:+.1f} MiB")  # fmt: skip
        if "ratio_us_per_probe" in row:
            ratios = (row["ratio_us_per_probe"], row["ratio_cpu"], row["ratio_rss"])
            print(f"{name}: tracekit/mtr: CPU per probe {ratios[0]:.2f}, "
                  f"CPU of the run {ratios[1]:.2f}, peak RSS {ratios[2]:.2f}")  # fmt: skip
        elif "mtr_error" in row:
            print(f"{name}: mtr failed: {row['mtr_error']}")


def print_rounds(rows: list[dict[str, Any]]) -> None:
    """The cost of a round with every hop and with one probe (``--no-wakeups`` skips it)."""
    lines = []
    for row in rows:
        for tool, label in (("tracekit", "tracekit"), ("mtr", "mtr"), ("floor", "floor"),
                            ("c_floor", "floor C")):  # fmt: skip
            r = row.get("rounds", {}).get(tool)
            if r is not None:
                lines.append([label, f"{row['probe']} v{row['ip_version']}", str(r["hops"]),
                              f"{r['every_us']:.0f}", f"{r['one_us']:.0f}",
                              f"{r['further_us']:.1f}"])  # fmt: skip
    if not lines:
        return
    print("CPU per round (us), start-up taken off: with every hop probed, with one probe (the")
    print("destination's TTL, -f), and what each further probe adds; a round of one probe is")
    print("mostly what waking up costs (after a sleep, caches and TLBs are cold):")
    _table(["tool", "probe", "hops", "every hop", "one probe", "each further"], lines)


def print_micro(m: dict[str, Any]) -> None:
    print("hot path, in-process (microseconds per call, best of 5 batches):")
    header = ["probe", "build", "match:error", "answer", "unrelated", "parse:error", "answer",
              "unrelated"]  # fmt: skip
    keys = ["build_us", "match_error_us", "match_answer_us", "match_unrelated_us",
            "parse_error_us", "parse_answer_us", "parse_unrelated_us"]  # fmt: skip
    rows = [[f"{r['probe']} v{r['ip_version']}", *(f"{r[k]:.2f}" for k in keys)]
            for r in m["methods"]]  # fmt: skip
    _table(header, rows)
    print("match: a fresh Received and reading its bytes (parse) included, as for every packet;")
    print("answer: echo reply (icmp), port unreachable (udp), SYN-ACK (tcp)")
    e = m["engine"]
    print(f"Engine + Rounds, icmp IPv4, {e['rounds']} rounds x {e['hops']} hops "
          f"({e['probes']} probes): {e['total_us']:.1f} us/probe = due {e['due_us']:.1f} "
          f"(build included) + sent {e['sent_us']:.1f} + feed {e['feed_us']:.1f} "
          f"(match included) + take_events {e['events_us']:.1f}")  # fmt: skip


def print_table(result: dict[str, Any]) -> None:
    before, after = (result[f"load_average_{k}"][0] for k in ("before", "after"))
    print(
        f"Python {result['python']}, {result['cpus']} CPUs, load average {before:.2f} "
        f"before, {after:.2f} after (other work on the machine skews the figures)"
    )
    print(speed_line(result["machine_speed_us"]))
    if "continuous" in result:
        print_continuous(result, result["continuous"])
    if "micro" in result:
        if "continuous" in result:
            print()
        print_micro(result["micro"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=1500, help="rounds of the measured run")
    parser.add_argument("--interval", default="0.005", help="seconds between rounds")
    parser.add_argument("--long", type=int, default=8000, help="rounds of a run to show that "
                        "memory does not grow with rounds (0: skip)")  # fmt: skip
    parser.add_argument("--routers", type=int, default=5)
    parser.add_argument("--silent", type=int, nargs="*", default=[])
    parser.add_argument("--probes", nargs="*", default=["icmp"], choices=list(MTR_METHODS))
    parser.add_argument("--versions", type=int, nargs="*", default=[4], choices=[4, 6])
    parser.add_argument("--no-mtr", action="store_true", help="do not run mtr")
    parser.add_argument("--no-floor", action="store_true", help="skip the raw-socket loop")
    parser.add_argument("--no-wakeups", action="store_true", help="skip the runs of one probe "
                        "a round (the cost of a round apart from its probes)")  # fmt: skip
    parser.add_argument("--no-install", action="store_true", help="do not apt-get mtr-tiny")
    parser.add_argument("--micro-only", action="store_true", help="only the in-process figures")
    parser.add_argument("--no-micro", action="store_true", help="skip the in-process figures")
    parser.add_argument("--micro-seconds", type=float, default=0.5, help="time per figure")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    # As `pip install` does, so no run compiles tracekit's modules from source.
    compileall.compile_dir(Path(tracekit.__file__).parent, quiet=1)
    result: dict[str, Any] = {
        "network": f"{args.routers} routers, silent {args.silent}, ICMP rate limits off",
        "runs": args.runs,
        "count": args.count,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "machine_speed_us": machine_speed(),
    }
    if not args.micro_only:
        result["continuous"] = continuous(args)
    if not args.no_micro:
        result["micro"] = micro(args.micro_seconds)
    result["load_average_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(result, indent=2, default=asdict))
    else:
        print_table(result)
    rows = result.get("continuous", {}).get("rows", [])
    failed = [
        r
        for r in rows
        if not r["tracekit"]["pass"] or not r["tracekit"].get("memory_bounded", True)
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
