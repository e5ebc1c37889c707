"""The report of a continuous run, in mtr's ``-r`` layout, with jitter and rate limits::

    Start: 2026-12-01T10:00:00+0000
    HOST: client                  Loss%   Snt   Last   Avg  Best  Wrst StDev  Javg  Lim%
      1.|-- r1.tracekit.test       0.0%    10    0.1   0.1   0.1   0.2   0.0   0.0   0.0
      2.|-- ???                     ---    10
      3.|-- r3.tracekit.test       0.0%    10    0.2   0.2   0.1   0.3   0.0   0.0  40.0

``Loss%`` is forwarding loss only; ``Lim%`` the share of probes a hop withheld (an ICMP
rate limit) while the hops behind it answered. A silent hop (``???``) never answered: its
loss cannot be told. Extra responders of a hop get rows of their own, under it.
"""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from tracekit.outputs.text import geo_label
from tracekit.sanitize import printable
from tracekit.stats import HopStats, RttStats

if TYPE_CHECKING:
    from tracekit.model import Hop, Host, Trace

#: Column names and widths, as mtr prints them, then tracekit's two.
COLUMNS = [("Loss%", 6), ("Snt", 5), ("Last", 6), ("Avg", 6), ("Best", 6), ("Wrst", 6),
           ("StDev", 6), ("Javg", 6), ("Lim%", 6)]  # fmt: skip
LIMIT_NOTE = (
    "Lim%: answers withheld by the hop's ICMP rate limit while later hops answered; not loss."
)


def label(host: Host, numeric: bool) -> str:
    """How a host is shown: its name (or address with ``-n``), and ASN and place if known."""
    text = host.address if numeric or not host.name else printable(host.name)
    return text + geo_label(host)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def rtt_cells(stats: RttStats) -> list[str]:
    return [_ms(v) for v in (stats.last_ms, stats.avg_ms, stats.best_ms, stats.worst_ms,
                             stats.stdev_ms, stats.javg_ms)]  # fmt: skip


def hop_cells(stats: HopStats) -> list[str]:
    """The cells of a hop's row: Loss% Snt Last Avg Best Wrst StDev Javg Lim%."""
    loss = stats.loss_pct
    limited = stats.rate_limited_pct
    if not stats.received:
        return ["---", str(stats.sent), *[""] * 7]
    return [f"{loss:.1f}%" if loss is not None else "---", str(stats.sent), *rtt_cells(stats),
            f"{limited:.1f}" if limited is not None else ""]  # fmt: skip


def rows(trace: Trace, numeric: bool) -> list[tuple[str, list[str]]]:
    """``(label, cells)`` for every row: each hop, then its extra responders."""
    out: list[tuple[str, list[str]]] = []
    for hop in trace.hops:
        out.extend(hop_rows(hop, numeric))
    return out


def hop_rows(hop: Hop, numeric: bool) -> list[tuple[str, list[str]]]:
    stats = hop.stats or HopStats()
    hosts = sorted(hop.hosts.values(), key=lambda h: -(h.stats.received if h.stats else 0))
    first = f"{hop.ttl:3d}.|-- "
    if not hosts:
        return [(first + "???", hop_cells(stats))]
    out = [(first + label(hosts[0], numeric), hop_cells(stats))]
    for host in hosts[1:]:
        cells = ["", "", *rtt_cells(host.stats or RttStats()), ""]
        out.append(("    |-- " + label(host, numeric), cells))
    return out


def report(trace: Trace, numeric: bool) -> str:
    """The whole report, as ``mtr -r`` prints it (plus Javg and Lim%)."""
    table = rows(trace, numeric)
    started = trace.started or datetime.now(timezone.utc)
    width = max([len(name) for name, _ in table] + [len(socket.gethostname()) + 6, 30]) + 2
    head = f"HOST: {socket.gethostname()}".ljust(width)
    lines = [f"Start: {started.strftime('%Y-%m-%dT%H:%M:%S%z')}"]
    lines.append(head + "".join(name.rjust(w) for name, w in COLUMNS))
    for name, cells in table:
        row = "".join(c.rjust(w) for c, (_, w) in zip(cells, COLUMNS, strict=True))
        lines.append((name.ljust(width) + row).rstrip())
    if any(h.stats is not None and h.stats.rate_limited for h in trace.hops):
        lines.append(LIMIT_NOTE)
    return "\n".join(lines)
