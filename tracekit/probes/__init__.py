"""The interface between the engine and a probe method (the objects probe plugins provide).

A probe plugin registers a factory through the ``tracekit_register_probes`` hook. The engine
calls the factory once per trace with a :class:`ProbeContext`, then talks to the returned
:class:`ProbeMethod` directly: :meth:`~ProbeMethod.build` for every probe sent and
:meth:`~ProbeMethod.match` for every packet received. These two are plain method calls, not
hook calls, because they sit on the per-packet path.

The built-in probe methods are the modules of this package, plugins like any other.
"""

from __future__ import annotations

import enum
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from tracekit.model import MplsLabel
    from tracekit.wire import Reply

_T = TypeVar("_T")


class _cached(Generic[_T]):
    """``functools.cached_property`` without its lock: before Python 3.12 that takes an
    ``RLock`` on every first access, microseconds for each packet received."""

    def __init__(self, function: Callable[[Any], _T]) -> None:
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _cached[_T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> _T | _cached[_T]:
        if instance is None:
            return self
        # In the instance's __dict__: later reads never come here.
        value = instance.__dict__[self.name] = self.function(instance)
        return value


@functools.cache
def _parser() -> Callable[[bytes, int], Reply | None]:
    """:func:`tracekit.wire.parse`, imported on first use (``tracekit --help`` reads no
    packets) and then at the cost of a cached call, not of an import statement per packet
    (microseconds each, as much as the parse)."""
    from tracekit.wire import parse

    return parse


class Outcome(enum.Enum):
    """What a reply means for the trace."""

    #: A router on the way answered (ICMP time exceeded): go on.
    HOP = "hop"
    #: The destination itself answered: the trace ends here, reached.
    REACHED = "reached"
    #: An error other than time exceeded (e.g. host unreachable): the trace ends here,
    #: not reached.
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ProbeContext:
    """What a probe method needs to know to build probes for one trace."""

    #: 4 or 6.
    ip_version: int
    #: Our source address for this destination.
    source: str
    #: The destination address.
    destination: str
    #: Options from the command line: ``port`` (``-p``, int or None), ``paris`` (bool),
    #: ``source_port`` (int or None), ``packet_size`` (``--packet-size``, int or None),
    #: ``tos`` (``-t``, int or None). A method declares the ones it uses (``options``).
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Received:
    """One packet the engine received while a trace was running (read-only: made for every
    packet, so not a frozen dataclass, which costs a microsecond more to make)."""

    #: The whole packet, starting with its IPv4 or IPv6 header.
    data: bytes
    #: 4 or 6.
    ip_version: int
    #: Address the packet came from.
    address: str
    #: Arrival time (seconds since the epoch, from the kernel's timestamp where available).
    time: float
    #: IP TTL / IPv6 hop limit the packet arrived with.
    ttl: int | None = None

    @_cached
    def reply(self) -> Reply | None:
        """The packet read from its bytes (:mod:`tracekit.wire`): cheap, no scapy."""
        return _parser()(self.data, self.ip_version)

    @_cached
    def packet(self) -> Any:
        """The packet parsed by scapy (an ``IP`` or ``IPv6`` layer), parsed on first use."""
        from tracekit.packets import skip_scapy_routes

        skip_scapy_routes()
        if self.ip_version == 4:
            from scapy.layers.inet import IP

            return IP(self.data)
        from scapy.layers.inet6 import IPv6

        return IPv6(self.data)


@dataclass(slots=True)
class Match:
    """A received packet recognised as the answer to one of our probes (read-only)."""

    #: The sequence number the engine gave the probe when it asked for it to be built.
    seq: int
    #: What the answer was, e.g. ``"time-exceeded"``, ``"echo-reply"``, ``"admin-prohibited"``.
    reply: str
    outcome: Outcome
    #: MPLS label stack entries the answering router reported (see
    #: :func:`tracekit.replies.icmp_error`).
    mpls: tuple[MplsLabel, ...] = ()
    #: How the text output marks this answer after its RTT, e.g. ``"[dns]"``; empty for
    #: the standard marker of ``reply`` (``"!H"``, ``"[open]"``...: ``replies.marker``).
    marker: str = ""


@dataclass(frozen=True)
class ProbeOption:
    """An option of ``tracekit trace`` that probe methods take: ``ProbeContext.options[name]``.

    A method lists the options it takes in :attr:`ProbeMethod.options`; methods that take
    the same option (``port`` for udp and tcp) share one declaration, so share these
    constants. ``tracekit trace --help`` shows every option some method takes; given with a
    method that does not take it, it is a one-line error (exit status 2). Declaring an
    option needs no import of click.
    """

    #: The key in ``ProbeContext.options``, e.g. ``"source_port"``.
    name: str
    #: The command-line spellings, e.g. ``("-p", "--port")``.
    flags: tuple[str, ...]
    help: str
    #: ``int`` or ``str``; ignored for a flag.
    type: type = str
    #: For ``int`` options: the smallest and largest values allowed.
    minimum: int | None = None
    maximum: int | None = None
    metavar: str | None = None
    #: An on/off option (``--paris``): True when given, else False.
    is_flag: bool = False


PORT = ProbeOption(
    "port", ("-p", "--port"), type=int, minimum=1, maximum=65535, metavar="PORT",
    help="Destination port: tcp 80 by default; for udp, a fixed port (flow-stable) instead "
    "of 33434 and up.",
)  # fmt: skip
PARIS = ProbeOption(
    "paris", ("--paris",), is_flag=True,
    help="Flow-stable probing: the same addresses, ports and flow hash for every probe "
    "(udp, icmp; tcp always is).",
)  # fmt: skip
SOURCE_PORT = ProbeOption(
    "source_port", ("--source-port",), type=int, minimum=1, maximum=65535, metavar="PORT",
    help="Source port for udp and tcp (default: a free one).",
)  # fmt: skip
PACKET_SIZE = ProbeOption(
    "packet_size", ("--packet-size",), type=int, minimum=30, maximum=65000, metavar="BYTES",
    help="Size of each probe packet, IP header included (icmp and udp; traceroute's "
    "packet_len). Default: 60 (IPv4), 80 (IPv6).",
)  # fmt: skip
TOS = ProbeOption(
    "tos", ("-t", "--tos"), type=int, minimum=0, maximum=255, metavar="N",
    help="IPv4 type of service / IPv6 traffic class of the probes (traceroute -t), e.g. 184 "
    "for DSCP EF.",
)  # fmt: skip


def option_names(options: Iterable[ProbeOption | str]) -> frozenset[str]:
    """The names of a method's :attr:`ProbeMethod.options` (hook API 2 gave plain names)."""
    return frozenset(o if isinstance(o, str) else o.name for o in options)


class ProbeMethod(ABC):
    """Builds the probes of one trace and recognises their answers.

    A method chooses an identity for its trace when it is created (an ICMP identifier, a
    source port...) and must match only packets that carry it, so that two traces running at
    the same time, or unrelated traffic, are never mistaken for its answers.
    """

    #: IP protocol numbers, besides ICMP/ICMPv6, whose incoming packets :meth:`match` must
    #: see (for example ``(6,)`` for a method that expects TCP answers).
    extra_protocols: tuple[int, ...] = ()

    #: How many distinct sequence numbers the method can carry: ``seq`` passed to
    #: :meth:`build` is always below this. Numbers are recycled (see ``docs/architecture.md``).
    sequence_space: int = 0x10000

    #: How many distinct flows :meth:`build` can make (1: every probe is the same flow).
    flows: int = 1

    #: Whether the method imports scapy's layers (to build its packets): tracekit then
    #: first tells scapy not to read the routing tables (a third of its import time). The
    #: built-in methods build their packets from bytes and say ``False``.
    uses_scapy: bool = True

    #: The options this method takes (:class:`ProbeOption`; their values are in
    #: ``ProbeContext.options``). Giving one it does not take is an error (exit status 2)
    #: rather than an option silently ignored. The default takes the ports and ``--paris``;
    #: a method that honours ``--packet-size`` or ``--tos`` says so. (Hook API 2 gave a
    #: frozenset of names, which still works for the built-in options.)
    options: tuple[ProbeOption, ...] | frozenset[str] = (PORT, PARIS, SOURCE_PORT)

    @abstractmethod
    def parameters(self) -> dict[str, Any]:
        """The parameters of this method for reports (JSON ``probe``), e.g. ``{"port": 80}``."""

    @abstractmethod
    def build(self, ttl: int, flow: int, seq: int) -> bytes:
        """Return the whole probe packet, IP header included, for ``ttl``.

        ``flow`` (``0 <= flow < flows``) chooses the flow: probes of one flow share what
        per-flow load balancers hash (addresses, ports, ICMP checksum). ``seq``
        (``0 <= seq < sequence_space``) is unique among this trace's probes in flight, and
        :meth:`match` must recover it from the answer. (Before hook API 2 the second
        argument was ``attempt``, which nothing used; it is passed positionally.)

        Called for every probe sent: keep it to patching a prepared packet (microseconds).
        """

    @abstractmethod
    def match(self, received: Received) -> Match | None:
        """Recognise ``received`` as the answer to one of this trace's probes, else ``None``.

        Called for every packet that arrives, most of them not ours: decide from
        ``received.reply`` (a few bytes, already read) before anything costly.
        """

    def close(self) -> None:  # noqa: B027 - optional hook for methods that hold resources
        """Release anything the method holds (reserved ports, sockets)."""
