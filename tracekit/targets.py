"""Lists of targets: ``tracekit A B C``, ``--targets FILE`` and ``--shard K/N``.

Targets are read lazily, one line at a time, so a list of any length (or a pipe that is
still being written) costs no memory; see ``docs/bulk.md``.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TextIO

from tracekit.errors import BadInput


def parse_lines(lines: Iterable[str]) -> Iterator[str]:
    """The targets in ``lines``: one per line; ``#`` starts a comment; blank lines skipped."""
    for line in lines:
        target = line.split("#", 1)[0].strip()
        if target:
            yield target


@contextmanager
def open_targets(path: str) -> Iterator[TextIO]:
    """The file ``path`` (``-``: standard input) opened for :func:`parse_lines`."""
    if path == "-":
        yield sys.stdin
        return
    try:
        stream = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from exc
    with stream:
        yield stream


def parse_shard(value: str) -> tuple[int, int]:
    """``K/N`` (``1 <= K <= N``) as ``(K, N)``."""
    try:
        k, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise BadInput(f"--shard {value!r} is not K/N (e.g. 1/4)") from None
    if not 1 <= k <= n:
        raise BadInput(f"--shard {value!r}: K must be between 1 and N")
    return k, n


def shard_of(target: str, n: int) -> int:
    """The shard (1 to ``n``) of ``target``: from a hash of the target string, so a target
    stays on its shard however the list around it changes, on every machine and Python."""
    import hashlib  # with --shard only: its import costs more than reading a short list

    digest = hashlib.sha256(target.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def in_shard(targets: Iterable[str], shard: tuple[int, int] | None) -> Iterator[str]:
    """The targets of shard ``(K, N)``, in their order (all of them for ``None``)."""
    if shard is None:
        yield from targets
        return
    k, n = shard
    for target in targets:
        if shard_of(target, n) == k:
            yield target


def count_targets(
    hosts: Iterable[str], path: str | None, shard: tuple[int, int] | None
) -> int | None:
    """How many targets a run will trace (for its progress bar): the hosts and those of the
    file ``path``, in the shard; ``None`` when standard input or a pipe gives them (they are
    read once, as the run goes)."""
    if path is None:
        return sum(1 for _ in in_shard(hosts, shard))
    if path == "-" or not os.path.isfile(path):  # a pipe can be read once only
        return None
    try:
        with open(path, encoding="utf-8") as stream:
            return sum(1 for _ in in_shard(itertools.chain(hosts, parse_lines(stream)), shard))
    except OSError:
        return None  # it will fail as the run opens it
