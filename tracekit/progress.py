"""A progress bar for many targets, on standard error when it is a terminal (rich).

It shows the targets done (of how many, when that is known), the probes a second and the
time left. What the run writes to the same terminal meanwhile (the text output, a failed
target's line) is printed above the bar, so the two never mix.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tracekit.model import Trace


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (a bar goes on standard error only if it is)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Bar:
    """The progress of a run of several targets; a context manager."""

    def __init__(self, stderr: TextIO, total: int | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = Console(file=stderr)
        done = MofNCompleteColumn() if total is not None else TextColumn("{task.completed}")
        self._progress = Progress(
            TextColumn("tracing"),
            BarColumn(),
            done,
            TextColumn("targets"),
            TextColumn("{task.fields[rate]:>6.0f} probes/s"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task("targets", total=total, rate=0.0)
        self._probes = 0
        self._started = time.monotonic()

    def __enter__(self) -> Bar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def stream(self, file: TextIO) -> Any:
        """``file`` (a stream on the same terminal) made to print above the bar."""
        from rich.file_proxy import FileProxy

        return FileProxy(self.console, file)

    def done(self, trace: Trace | None) -> None:
        """One target finished (``None``: it failed before probing)."""
        if trace is not None:
            self._probes += sum(len(hop.probes) for hop in trace.hops)
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self._progress.update(self._task, advance=1, rate=self._probes / elapsed)
