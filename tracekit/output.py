"""The interface of output renderers (the objects output plugins provide).

An output plugin registers a factory through ``tracekit_register_outputs``. For every output
the user asks for (``--format`` for standard output, each ``--out FILE``), tracekit calls the
factory with an :class:`OutputTarget` and then feeds the returned :class:`Output` the trace as
it progresses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tracekit.events import Round
from tracekit.model import Hop, ProbeResult, Trace


@dataclass(frozen=True)
class OutputTarget:
    """Where an output writes, and how the user wants it shown."""

    #: An open text stream: standard output or the file from ``--out``.
    stream: TextIO
    #: The file's path for ``--out``; ``None`` for standard output.
    path: Path | None = None
    #: ``-n``: show addresses only, no names.
    numeric: bool = False


class Output(ABC):
    """Renders one trace to one target."""

    def __init__(self, target: OutputTarget) -> None:
        self.target = target

    def start(self, trace: Trace) -> None:  # noqa: B027 - optional
        """The trace is about to send its first probe."""

    def answer(self, trace: Trace, ttl: int, result: ProbeResult) -> None:  # noqa: B027
        """A probe sent with ``ttl`` was answered, just now (optional; a live view)."""

    def hop(self, trace: Trace, hop: Hop) -> None:  # noqa: B027 - optional
        """One-shot traces: ``hop`` and every hop before it are complete (and enriched)."""

    def round(self, trace: Trace, round: Round) -> None:  # noqa: B027 - optional
        """Continuous mode: ``round`` is complete; ``trace.hops`` carry the statistics."""

    @abstractmethod
    def finish(self, trace: Trace) -> None:
        """The trace is over: ``trace.hops``, ``reached`` and ``finished`` are final."""
