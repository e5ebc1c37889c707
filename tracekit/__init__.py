"""tracekit: a plugin-based, multi-protocol traceroute.

Plugin authors import :data:`hookimpl` from here::

    from tracekit import hookimpl
"""

from __future__ import annotations

import pluggy

__all__ = ["__version__", "hookimpl"]

#: Marks a function as the implementation of a tracekit hook.
hookimpl = pluggy.HookimplMarker("tracekit")


def __getattr__(name: str) -> str:
    # ``__version__`` is looked up on first use: importlib.metadata is slow to import.
    if name != "__version__":
        raise AttributeError(f"module 'tracekit' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tracekit")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"
