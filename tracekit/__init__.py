"""tracekit: a plugin-based, multi-protocol traceroute.

Plugin authors import :data:`hookimpl` from here::

    from tracekit import hookimpl
"""

from __future__ import annotations

import pluggy

__all__ = ["__version__", "hookimpl"]

#: Marks a function as the implementation of a tracekit hook.
hookimpl = pluggy.HookimplMarker("tracekit")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tracekit")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


__version__ = _version()
