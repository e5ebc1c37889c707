"""The interface of output renderers (the objects output plugins provide).

An output plugin registers a factory through ``tracekit_register_outputs``. For every output
the user asks for (``--format`` for standard output, each ``--out FILE``), tracekit calls the
factory with an :class:`OutputTarget` and then feeds the returned :class:`Output` the trace as
it progresses.

The built-in outputs are the modules of this package, plugins like any other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TextIO

if TYPE_CHECKING:  # the annotations alone: a plugin's module loads for --help
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
    #: This trace is one of several written to the same stream (several targets): the
    #: output writes one record at :meth:`Output.finish`, and tracekit puts
    #: :attr:`Output.list_start`, :attr:`Output.list_separator` and
    #: :attr:`Output.list_end` around and between the records.
    several: bool = False


class Output(ABC):
    """Renders one trace to one target.

    With several targets (``tracekit A B``, ``--targets``), each trace gets an output of its
    own, whose target has ``several`` set and a stream of its own (a buffer copied to the
    real stream when the trace is finished, so traces never mix). A target that fails before
    probing (its name does not resolve, no route) gets only :meth:`finish`, with
    ``trace.end == "error"``, ``trace.error`` set and ``trace.address`` ``None``.
    """

    #: Written before the first record of several (``"["`` for a JSON array).
    list_start: ClassVar[str] = ""
    #: Written between two records of several.
    list_separator: ClassVar[str] = ""
    #: Written after the last record of several (even when there are none). The map's parts
    #: are made when first read (a descriptor), so a subclass may make them lazily too.
    list_end: ClassVar[str] = ""
    #: ``False`` for an output that can show only one trace per stream.
    several_traces: ClassVar[bool] = True

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
