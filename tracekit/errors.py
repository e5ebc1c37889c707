"""Errors a user can cause, each with a one-line message and an exit code.

The command line maps them to exit codes in one place; see ``docs/exit-codes.md``.
"""

from __future__ import annotations

#: The destination answered.
EXIT_REACHED = 0
#: The trace ended without reaching the destination.
EXIT_NOT_REACHED = 1
#: Bad input: usage, unknown host, invalid values.
EXIT_BAD_INPUT = 2
#: Cannot probe: no raw-socket privilege, no route, no such interface.
EXIT_CANNOT_PROBE = 3
#: Something failed that should not have: a bug in tracekit or in a plugin.
EXIT_INTERNAL = 4
#: The trace ran, but an ``--expect`` rule failed (see ``docs/ci.md``).
EXIT_EXPECTATION_FAILED = 5
#: Interrupted (Ctrl-C, ``SIGINT``).
EXIT_INTERRUPTED = 130


class TracekitError(Exception):
    """Base of every error tracekit reports to the user as one line."""

    exit_code = EXIT_BAD_INPUT


class BadInput(TracekitError):
    """The user asked for something that cannot work (a value, a name, a file)."""

    exit_code = EXIT_BAD_INPUT


class UnknownHost(BadInput):
    """The target name does not resolve."""


class CannotProbe(TracekitError):
    """The machine cannot send or receive the probes (privilege, route, interface)."""

    exit_code = EXIT_CANNOT_PROBE


class NoPrivilege(CannotProbe):
    """Raw sockets need root or ``CAP_NET_RAW``."""


class CannotDownload(TracekitError):
    """A download failed: the network, the server, or a file that is not what it should be."""

    exit_code = EXIT_CANNOT_PROBE


class Interrupted(TracekitError):
    """Ctrl-C during a trace, after the outputs wrote what was complete."""

    exit_code = EXIT_INTERRUPTED
