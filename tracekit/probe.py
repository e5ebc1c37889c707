"""Moved to :mod:`tracekit.probes` (hook API 3); this module re-exports it for plugins
written before."""

from tracekit.probes import (  # noqa: F401
    PACKET_SIZE,
    PARIS,
    PORT,
    SOURCE_PORT,
    TOS,
    Match,
    Outcome,
    ProbeContext,
    ProbeMethod,
    ProbeOption,
    Received,
    option_names,
)
