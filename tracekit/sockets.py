"""Raw sockets owned by the engine: one to send whole IP packets, one per protocol to listen.

Probes are sent with their IP header included (``IPPROTO_RAW``), so a probe method controls
every header field. Answers are read with the kernel's receive timestamp, so round-trip times
do not include the time Python takes to get to them.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import sys
import time

from tracekit.errors import CannotProbe, NoPrivilege
from tracekit.packets import internet_checksum, ipv6_header
from tracekit.probes import Received

IPPROTO_ICMPV6 = 58
_SO_TIMESTAMPNS = 35  # SCM_TIMESTAMPNS on Linux; not exported by the socket module
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1
#: ICMP types passed up to tracekit; the kernel drops the rest before we see them.
_ICMP4_TYPES = (0, 3, 11, 12)  # echo reply, unreachable, time exceeded, parameter problem
_ICMP6_TYPES = (1, 2, 3, 4, 129)  # unreachable, too big, time exceeded, parameter, echo reply
#: Receive buffer of a trace's own sockets (bytes asked for; the kernel doubles it).
_RCVBUF = 1 << 20
#: Receive buffer of the sockets a run of many targets shares: answers come at up to the
#: run's ``--rate``, and a packet takes about 1 KiB of buffer (its ``truesize``), so this
#: holds a few seconds' answers at 10,000 probes a second while the run does other work.
#: Asked for with ``SO_RCVBUFFORCE`` (beyond ``net.core.rmem_max``; root, or
#: ``CAP_NET_ADMIN``), else with ``SO_RCVBUF`` (capped at ``rmem_max``).
SHARED_RCVBUF = 32 << 20
_SO_RCVBUFFORCE = 33  # Linux; not exported by the socket module


#: ``struct timespec`` of ``SO_TIMESTAMPNS``: seconds and nanoseconds.
_TIMESPEC = struct.Struct("qq")


def privilege_hint() -> str:
    """The exact fix for a missing raw-socket privilege."""
    python = os.path.realpath(sys.executable)
    return (
        "raw sockets need privilege: run tracekit as root (sudo tracekit ...) "
        f"or grant CAP_NET_RAW once with: sudo setcap cap_net_raw+ep {python}"
    )


def raw_sockets_allowed() -> bool:
    """Whether this process may open raw sockets (root, or ``CAP_NET_RAW``)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).close()
    except PermissionError:
        return False
    except OSError:
        return True  # refused for another reason: opening the real ones will say which
    return True


def _open(family: int, proto: int) -> socket.socket:
    try:
        return socket.socket(family, socket.SOCK_RAW, proto)
    except PermissionError as exc:
        raise NoPrivilege(privilege_hint()) from exc
    except OSError as exc:
        raise CannotProbe(f"cannot open a raw socket: {exc.strerror}") from exc


class RawTransport:
    """Sends probe packets to one destination (or, shared by the traces of a run, to any:
    :meth:`send_to`) and receives packets of chosen protocols."""

    #: Every packet received carries the kernel's arrival time (``SO_TIMESTAMPNS``).
    stamped = True

    def __init__(
        self,
        ip_version: int,
        destination: str | None,
        local: str,
        protocols: tuple[int, ...] = (),
        interface: str | None = None,
        buffer: int = _RCVBUF,
    ) -> None:
        self.ip_version = ip_version
        self._buffer = buffer
        self.family = socket.AF_INET if ip_version == 4 else socket.AF_INET6
        self.destination = destination
        self.local = local
        #: Our address and those of senders, packed (IPv6 headers are rebuilt per packet).
        self._packed_local = socket.inet_pton(self.family, local)
        self._packed: dict[str, bytes] = {}
        self._sockets: list[socket.socket] = []
        try:
            self._sender = self._add(_open(self.family, socket.IPPROTO_RAW), interface)
            icmp = socket.IPPROTO_ICMP if ip_version == 4 else IPPROTO_ICMPV6
            self._receivers: dict[socket.socket, int] = {}
            for proto in (icmp, *[p for p in protocols if p != icmp]):
                sock = self._add(_open(self.family, proto), interface)
                self._listen(sock, proto)
                self._receivers[sock] = proto
        except BaseException:
            self.close()
            raise

    def _add(self, sock: socket.socket, interface: str | None) -> socket.socket:
        self._sockets.append(sock)
        if interface:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            except OSError as exc:
                raise CannotProbe(f"cannot use interface {interface}: {exc.strerror}") from exc
        return sock

    def _listen(self, sock: socket.socket, proto: int) -> None:
        sock.setblocking(False)
        if self._buffer > _RCVBUF:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, self._buffer)
            except OSError:  # no CAP_NET_ADMIN: as much as rmem_max allows
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._buffer)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._buffer)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        if self.ip_version == 6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        if proto == socket.IPPROTO_ICMP:
            blocked = 0xFFFFFFFF & ~sum(1 << t for t in _ICMP4_TYPES)
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", blocked))
        elif proto == IPPROTO_ICMPV6:
            words = [0xFFFFFFFF] * 8  # a set bit blocks that type
            for t in _ICMP6_TYPES:
                words[t >> 5] &= ~(1 << (t & 31))
            sock.setsockopt(IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *words))

    def send(self, data: bytes) -> float:
        """Send one whole IP packet to the destination; return the send time."""
        assert self.destination is not None, "a shared transport sends with send_to"
        return self.send_to(data, self.destination)

    def send_to(self, data: bytes, destination: str) -> float:
        """Send one whole IP packet to ``destination``; return the send time.

        The time is taken just before the packet is handed to the kernel: on a fast path the
        answer can arrive (and be timestamped) before ``sendto`` returns.
        """
        sent = time.time()
        try:
            self._sender.sendto(data, (destination, 0))
        except OSError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                raise CannotProbe(f"no route to {destination}") from exc
            if exc.errno == errno.EPERM:
                raise NoPrivilege(privilege_hint()) from exc
            raise CannotProbe(f"cannot send to {destination}: {exc.strerror}") from exc
        return sent

    @property
    def receivers(self) -> list[socket.socket]:
        """The sockets answers arrive on (for a driver that waits on several transports)."""
        return list(self._receivers)

    def receive(self, timeout: float) -> list[Received]:
        """Wait up to ``timeout`` seconds for packets; return all that are queued (with no
        wait, the sockets are read without asking which have something)."""
        if timeout > 0.0:
            ready = select.select(list(self._receivers), [], [], timeout)[0]
        else:
            ready = list(self._receivers)
        out: list[Received] = []
        for sock in ready:
            out += self.read(sock)
        return out

    def read(self, sock: socket.socket) -> list[Received]:
        """All that is queued on ``sock``, one of :attr:`receivers`."""
        out: list[Received] = []
        proto = self._receivers[sock]
        received = self._received
        recvmsg = sock.recvmsg
        while True:
            try:
                data, ancillary, _flags, addr = recvmsg(65535, 256)
            except (BlockingIOError, InterruptedError):
                return out
            packet = received(data, ancillary, addr[0], proto)
            if packet is not None:
                out.append(packet)

    def _received(
        self, data: bytes, ancillary: list[tuple[int, int, bytes]], address: str, proto: int
    ) -> Received | None:
        stamp = None
        hop_limit = None
        for level, kind, value in ancillary:
            if kind == _SO_TIMESTAMPNS and level == socket.SOL_SOCKET:
                sec, nsec = _TIMESPEC.unpack_from(value)
                stamp = sec + nsec / 1e9
            elif kind == socket.IPV6_HOPLIMIT and level == socket.IPPROTO_IPV6:
                hop_limit = int.from_bytes(value[:4], sys.byteorder, signed=True)
        when = stamp if stamp is not None else time.time()
        if self.ip_version == 4:
            if len(data) < 20:
                return None
            if proto == socket.IPPROTO_ICMP and internet_checksum(data[(data[0] & 0x0F) * 4 :]):
                return None  # the kernel passes ICMPv4 with bad checksums to raw sockets
            return Received(data, 4, address, when, data[8])
        # IPv6 raw sockets deliver the payload only: put back the header scapy expects.
        packed = self._packed.get(address)
        if packed is None:
            if len(self._packed) > 4096:
                self._packed.clear()  # a flood of senders: keep the table small
            packed = self._packed[address] = socket.inet_pton(
                socket.AF_INET6, address.split("%")[0]
            )
        header = ipv6_header(proto, packed, self._packed_local, len(data), hop_limit or 0)
        return Received(header + data, 6, address, when, hop_limit)

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def __enter__(self) -> RawTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
