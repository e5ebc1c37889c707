"""tracekit: a plugin-based, multi-protocol traceroute.

Plugin authors import :data:`hookimpl` from here::

    from tracekit import hookimpl
"""

from __future__ import annotations

import functools

import pluggy

__all__ = ["__version__", "hookimpl"]

#: Marks a function as the implementation of a tracekit hook.
hookimpl = pluggy.HookimplMarker("tracekit")


def __getattr__(name: str) -> str:
    # ``__version__`` is looked up on first use, and without importlib.metadata (slow to
    # import: ``tracekit --help`` must stay fast).
    if name != "__version__":
        raise AttributeError(f"module 'tracekit' has no attribute {name!r}")
    return _version()


@functools.cache
def _version() -> str:
    """The installed version, found once (each JSON report of a bulk run asks for it)."""
    from tracekit.entrypoints import distribution

    dist = distribution("tracekit")
    return (dist.version if dist else None) or "0+unknown"  # or a source tree, not installed
