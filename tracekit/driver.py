"""The driver: the only place that sends, waits and receives for an engine.

It owns no policy: it sends what the engine says is due, sleeps until the engine's next
wake-up or until packets arrive, feeds them in, and hands out the engine's events.

A *patient* strategy (continuous rounds) need not hear of an answer the moment it arrives:
where the transport stamps every packet with the kernel's arrival time (``stamped``), the
driver sleeps until the engine's wake-up, at most :data:`PATIENCE`, and then reads all that
came. Round trips are the same, from the kernel's stamps; but one wake-up serves a whole
round instead of one per answer, and on a virtual machine each wake-up costs tens of
microseconds of CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tracekit.engine import Engine
    from tracekit.events import Event
    from tracekit.probes import Received

#: Seconds a patient driver sleeps at most before it reads the sockets: what arrives meanwhile
#: waits in their buffers, which must not overflow on a host flooded with ICMP.
PATIENCE = 0.05


class Transport(Protocol):
    """Sends probe packets and delivers what arrives (see :mod:`tracekit.sockets`).

    A transport whose packets all carry the kernel's arrival time may say so with a true
    ``stamped`` attribute; then the driver may read them late (see above).
    """

    def send(self, data: bytes) -> float:
        """Send one packet; return the send time (seconds since the epoch)."""
        ...

    def receive(self, timeout: float) -> list[Received]:
        """Wait up to ``timeout`` seconds; return what arrived (possibly nothing)."""
        ...


def drive(
    engine: Engine,
    transport: Transport,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Event]:
    """Run ``engine`` to its end over ``transport``, yielding its events as they happen.

    Closing the generator early (Ctrl-C in the consumer) leaves the engine as it is; call
    :meth:`Engine.stop` and :func:`drain` to get its final events.
    """
    patient = engine.strategy.patient and getattr(transport, "stamped", False)
    send, sent, feed, receive = transport.send, engine.sent, engine.feed, transport.receive
    while True:
        for probe in engine.due(clock()):
            sent(probe, send(probe.packet))
        yield from engine.take_events()
        if engine.finished:
            return
        wake = engine.wakeup()
        timeout = 1.0 if wake is None else min(1.0, max(0.0, wake - clock()))
        if patient:
            if timeout > 0.0:
                sleep(min(timeout, PATIENCE))
            arrived = receive(0.0)
        else:
            arrived = receive(timeout)
        for received in arrived:
            feed(received)
        yield from engine.take_events()


def drain(engine: Engine, clock: Callable[[], float] = time.time) -> list[Event]:
    """Stop ``engine`` now and return its last events (``TraceFinished`` among them)."""
    engine.stop(clock())
    return engine.take_events()
