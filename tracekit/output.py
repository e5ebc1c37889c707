"""Moved to :mod:`tracekit.outputs` (hook API 3); this module re-exports it for plugins
written before."""

from tracekit.outputs import (  # noqa: F401
    Output,
    OutputTarget,
)
