"""Isolation: a plugin's hook or an output that fails is skipped with one warning line.

Both the plugin manager (each hook implementation of each plugin) and a trace's outputs use
:class:`Isolated`: the first exception is reported on standard error as one line, and later
calls are skipped; the trace, the other plugins and the other outputs go on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def warn(message: str) -> None:
    """``tracekit: warning: MESSAGE`` on standard error."""
    print(f"tracekit: warning: {message}", file=sys.stderr)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (its type's name if it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _never(exc: Exception) -> bool:
    return False


class Isolated:
    """Calls made on behalf of one plugin hook or one output.

    ``what`` begins the warning (``"output 'json' (standard output) failed"``), which goes on
    with the exception's type and message. ``passes(exc)``: an exception that is not a
    failure and is raised as it is (a setting refused for the user). ``ends(exc)``: a
    failure that is raised after it is recorded, without a warning (a reader that went
    away).
    """

    def __init__(
        self,
        what: str,
        passes: Callable[[Exception], bool] = _never,
        ends: Callable[[Exception], bool] = _never,
    ) -> None:
        self.what = what
        self.passes = passes
        self.ends = ends
        #: True once a call failed: later calls are skipped.
        self.failed = False

    def call(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)``, or ``None`` once a call failed."""
        if self.failed:
            return None
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            if self.passes(exc):
                raise
            self.failed = True
            if self.ends(exc):
                raise
            warn(f"{self.what}: {type(exc).__name__}: {one_line(exc)}")
            return None
