"""The live view of a continuous run on a terminal, drawn with rich.

One row per hop and one per extra responder, with mtr's columns plus jitter and the share of
answers withheld by rate limiting; names, ASNs and places where enrichment has them. Rows with
forwarding loss are red, rows with withheld answers (and no loss) yellow; no colour under
``NO_COLOR`` (rich's own rule).

The tracing thread takes a snapshot of the table (plain strings) at every answer and every
completed round; a drawing thread of the view's own draws the latest snapshot, at most every
:data:`REFRESH` seconds, and never reads the trace itself. So the table follows the answers
as they arrive (the last answer of a burst is drawn too, not only the first), a slow terminal
never slows the probing down, and Ctrl-C never lands in the middle of a frame. Typed keys are
not echoed while the view is up (they would shift the table); the terminal is restored when
the view ends, also on SIGTERM. The view is transient: at the end it is erased, and the text
output prints the final report in its place.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from tracekit.outputs.report import COLUMNS, hop_rows
from tracekit.outputs.text import header

if TYPE_CHECKING:
    from tracekit.model import Trace

#: Least seconds between two redraws.
REFRESH = 0.2

#: One row of the table: the host column, the other cells, and the row's style.
Row = tuple[str, list[str], str]


def title(trace: Trace) -> str:
    """The line above the table: the header, then the rounds completed (of how many)."""
    rounds = f"of {trace.cycles}" if trace.cycles else "until Ctrl-C"
    return f"{header(trace)}; round {trace.rounds} {rounds}"


def snapshot(trace: Trace, numeric: bool) -> list[Row]:
    """The rows of the table, as they are now."""
    rows: list[Row] = []
    for hop in list(trace.hops):
        stats = hop.stats
        style = ""
        if stats is not None and stats.received:
            if stats.lost:
                style = "red"
            elif stats.rate_limited:
                style = "yellow"
        for i, (name, cells) in enumerate(hop_rows(hop, numeric)):
            rows.append((name, cells, style if i == 0 else ""))
    return rows


def table(heading: str, rows: list[Row]) -> Any:
    """The title line ``heading`` (cut to the terminal's width), then the table of ``rows``."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    out = Table(box=None, pad_edge=False)
    out.add_column("Host", no_wrap=True)
    for name, _ in COLUMNS:
        out.add_column(name, justify="right", no_wrap=True)
    for name, cells, style in rows:
        out.add_row(Text(name), *cells, style=style)
    return Group(Text(heading, no_wrap=True, overflow="ellipsis"), out)


class LiveView:
    """A table that follows ``trace.hops`` on the terminal ``stream``."""

    def __init__(self, stream: TextIO, trace: Trace, numeric: bool) -> None:
        from rich.console import Console
        from rich.live import Live

        self.trace = trace
        self.numeric = numeric
        self.console = Console(file=stream, highlight=False)
        self.live = Live(console=self.console, auto_refresh=False, transient=True)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: tuple[str, list[Row]] | None = None
        self._failed: Exception | None = None
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._draw, name="tracekit-live", daemon=True)
        self._echo: tuple[int, list[Any]] | None = None
        self._sigterm: Any = None

    def start(self) -> None:
        self._quiet_keys()
        self.live.start()
        self.live.update(table(title(self.trace), []), refresh=True)
        self._thread.start()

    def changed(self) -> None:
        """Something arrived: hand the drawing thread a fresh snapshot."""
        pending = (title(self.trace), snapshot(self.trace, self.numeric))
        with self._lock:
            self._pending = pending
        self._wake.set()

    def stop(self) -> None:
        """Erase the view and give the terminal back as it was."""
        if self._halt.is_set():
            return
        self._halt.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)
        try:
            if self.live.is_started:
                # Erase the table first: rich's final refresh of a table taller than the
                # terminal would scroll lines out of reach of the erasing.
                self.live.update("", refresh=True)
                self.live.stop()
        finally:
            self._restore_keys()
        if self._failed is not None:
            error = self._failed
            print(f"tracekit: warning: the live view failed: {type(error).__name__}: {error}",
                  file=sys.stderr)  # fmt: skip

    def _draw(self) -> None:
        while True:
            self._wake.wait()
            if self._halt.is_set():
                return
            self._wake.clear()
            with self._lock:
                pending, self._pending = self._pending, None
            if pending is not None:
                try:
                    self.live.update(table(*pending), refresh=True)
                except Exception as exc:  # the trace goes on; stop() says what failed
                    self._failed = exc
                    return
            if self._halt.wait(REFRESH):  # at most one frame per REFRESH
                return

    # -- the terminal -----------------------------------------------------------------------

    def _quiet_keys(self) -> None:
        """Keys typed at the terminal are not echoed (an Enter would shift the table);
        Ctrl-C still interrupts. Restored by :meth:`stop`, and on SIGTERM."""
        try:
            import termios

            fd = sys.stdin.fileno()
            if not os.isatty(fd):
                return
            attributes = termios.tcgetattr(fd)
            quiet = list(attributes)
            quiet[3] &= ~termios.ECHO
            termios.tcsetattr(fd, termios.TCSADRAIN, quiet)
            self._echo = (fd, attributes)
        except (ImportError, OSError, ValueError, AttributeError):
            return  # no terminal to quieten (stdin closed, replaced, or not a terminal)
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self._terminated)
            self._sigterm = signal.SIG_DFL if previous is None else previous

    def _restore_keys(self) -> None:
        if self._echo is not None:
            import termios

            fd, attributes = self._echo
            self._echo = None
            with contextlib.suppress(OSError, termios.error):
                termios.tcsetattr(fd, termios.TCSAFLUSH, attributes)  # typed-ahead keys go
        if self._sigterm is not None:
            previous, self._sigterm = self._sigterm, None
            signal.signal(signal.SIGTERM, previous)

    def _terminated(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM: leave the terminal as it was, then die of the signal as before."""
        self.stop()
        os.kill(os.getpid(), signum)
