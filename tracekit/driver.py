"""The driver: the only place that sends, waits and receives for an engine.

It owns no policy: it sends what the engine says is due, sleeps until the engine's next
wake-up or until packets arrive, feeds them in, and hands out the engine's events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Protocol

from tracekit.engine import Engine
from tracekit.events import Event
from tracekit.probe import Received


class Transport(Protocol):
    """Sends probe packets and delivers what arrives (see :mod:`tracekit.sockets`)."""

    def send(self, data: bytes) -> float:
        """Send one packet; return the send time (seconds since the epoch)."""
        ...

    def receive(self, timeout: float) -> list[Received]:
        """Wait up to ``timeout`` seconds; return what arrived (possibly nothing)."""
        ...


def drive(
    engine: Engine, transport: Transport, clock: Callable[[], float] = time.time
) -> Iterator[Event]:
    """Run ``engine`` to its end over ``transport``, yielding its events as they happen.

    Closing the generator early (Ctrl-C in the consumer) leaves the engine as it is; call
    :meth:`Engine.stop` and :func:`drain` to get its final events.
    """
    while True:
        for probe in engine.due(clock()):
            engine.sent(probe, transport.send(probe.packet))
        yield from engine.take_events()
        if engine.finished:
            return
        wake = engine.wakeup()
        timeout = 1.0 if wake is None else min(1.0, max(0.0, wake - clock()))
        for received in transport.receive(timeout):
            engine.feed(received)
        yield from engine.take_events()


def drain(engine: Engine, clock: Callable[[], float] = time.time) -> list[Event]:
    """Stop ``engine`` now and return its last events (``TraceFinished`` among them)."""
    engine.stop(clock())
    return engine.take_events()
