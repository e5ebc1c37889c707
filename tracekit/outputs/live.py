"""The live view of a continuous run on a terminal, drawn with rich.

One row per hop and one per extra responder, with mtr's columns plus jitter and the share of
answers withheld by rate limiting; names, ASNs and places where enrichment has them. Redrawn
as answers arrive, at most a few times a second, from the tracing thread (no thread of its
own reads the trace). No colour under ``NO_COLOR`` (rich's own rule).
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from tracekit.model import Trace
from tracekit.outputs.report import COLUMNS, hop_rows
from tracekit.outputs.text import header

#: Least seconds between two redraws.
REFRESH = 0.2


class LiveView:
    """A table that follows ``trace.hops`` on the terminal ``stream``."""

    def __init__(self, stream: TextIO, trace: Trace, numeric: bool) -> None:
        from rich.console import Console
        from rich.live import Live

        self.trace = trace
        self.numeric = numeric
        self.console = Console(file=stream, highlight=False)
        self.live = Live(console=self.console, auto_refresh=False, transient=True)
        self._last = 0.0

    def start(self) -> None:
        self.live.start()
        self.live.update(self.render(), refresh=True)

    def changed(self) -> None:
        """Something arrived: redraw, unless that was done a moment ago."""
        now = time.monotonic()
        if now - self._last >= REFRESH:
            self._last = now
            self.live.update(self.render(), refresh=True)

    def stop(self) -> None:
        self.live.stop()

    def render(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        trace = self.trace
        cycles = f"of {trace.cycles}" if trace.cycles else "until Ctrl-C"
        title = f"{header(trace)}; round {trace.rounds} {cycles}"
        table = Table(title=Text(title), title_justify="left", box=None, pad_edge=False)
        table.add_column("Host", no_wrap=True)
        for name, _ in COLUMNS:
            table.add_column(name, justify="right")
        for hop in list(trace.hops):
            for i, (name, cells) in enumerate(hop_rows(hop, self.numeric)):
                style = ""
                stats = hop.stats
                if i == 0 and stats is not None and stats.received:
                    if stats.lost:
                        style = "red"
                    elif stats.rate_limited:
                        style = "yellow"
                table.add_row(Text(name), *cells, style=style)
        return table
