"""Tracing without privilege: ICMP through ping sockets, UDP and TCP through ordinary sockets.

Linux lets any user trace, within limits:

- **ICMP**: ``socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`` (and ICMPv6), a *ping socket*,
  allowed for the groups in ``net.ipv4.ping_group_range`` (the kernel default allows none).
  The kernel sets the echo identifier to the port the socket is bound to, so the socket is
  bound to the method's identifier; the checksum it computes is the one the method steered.
- **UDP**: the method's own socket, bound to its source port.
- **TCP**: a non-blocking ``connect`` per probe (Linux queues the ICMP errors of a SYN on the
  socket's error queue since 5.8); the connection made or refused is the destination's
  SYN-ACK or RST. Each probe has a source port of its own (not flow-stable), and is given up
  after :data:`_TCP_LIFETIME`, before the kernel would send its SYN again.

The TTL (hop limit) and type of service of each probe go through ``setsockopt``, read from the
packet the method built. With ``IP_RECVERR``/``IPV6_RECVERR``, the ICMP errors a probe
provokes arrive on the socket's error queue: what was sent, where to, and who answered with
which type and code. This transport turns each into the packet a raw socket would have
delivered (an ICMP error quoting the probe's headers), so probe methods match both alike.
Times come from the kernel (``SO_TIMESTAMPNS``), as on the raw path; the TTL an error arrived
with is not reported on the error queue.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time
from typing import Any

from tracekit.errors import BadInput, CannotProbe
from tracekit.packets import internet_checksum, ipv6_header
from tracekit.probes import ProbeMethod, Received

IPPROTO_ICMPV6 = 58
_SO_TIMESTAMPNS = 35
_IP_RECVERR, _IPV6_RECVERR = 11, 25
#: Linux's per-socket switch of IPv6 flow labels made from the flow's hash (since 4.10).
_IPV6_AUTOFLOWLABEL = 70
_IP_RECVTTL, _IP_TTL_CMSG = 12, 2
_ORIGIN_ICMP, _ORIGIN_ICMP6 = 2, 3
_EE = struct.Struct("=IBBBBII")  # struct sock_extended_err
_RCVBUF = 1 << 20
_SYN, _RST, _ACK = 0x02, 0x04, 0x10
#: Seconds a TCP probe's socket lives: the kernel sends the SYN again after one second,
#: and that second SYN's answer must not be taken for the first one's.
_TCP_LIFETIME = 0.9
#: What an ICMP error sets on a socket with IP_RECVERR, reported by the next call on it.
_ASYNC_ERRORS = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNREFUSED, errno.EPROTO, errno.EACCES,
     errno.EMSGSIZE, errno.ENOPROTOOPT}
)  # fmt: skip


def ping_hint() -> str:
    """The exact fix when ping sockets are refused."""
    return (
        "ICMP without privilege needs ping sockets, which net.ipv4.ping_group_range does not "
        "allow for your group: sudo sysctl -w net.ipv4.ping_group_range='0 2147483647' "
        "(or run as root, or use --probe udp)"
    )


class DatagramTransport:
    """Sends the probes of an icmp or udp method without raw sockets."""

    def __init__(
        self,
        ip_version: int,
        destination: str,
        local: str,
        method: ProbeMethod,
        interface: str | None = None,
    ) -> None:
        self.ip_version = ip_version
        self.family = socket.AF_INET if ip_version == 4 else socket.AF_INET6
        self.destination = destination
        self.local = local
        self.interface = interface
        self._packed_local = socket.inet_pton(self.family, local)
        self._packed_destination = socket.inet_pton(self.family, destination)
        self._udp: socket.socket | None = getattr(method, "datagram_socket", None)
        self._ping: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._ttl: dict[socket.socket, int] = {}
        self._tos: dict[socket.socket, int] = {}
        self._protocol = 0
        self._udp_port = 0
        #: TCP: one socket per probe, connecting; what its SYN carried, and when it went.
        self._connecting: dict[int, tuple[socket.socket, bytes, float]] = {}
        probe = method.build(1, 0, 0)
        self._protocol = probe[9] if ip_version == 4 else probe[6]
        l4 = probe[(probe[0] & 0x0F) * 4 if ip_version == 4 else 40 :]
        if self._protocol in (socket.IPPROTO_ICMP, IPPROTO_ICMPV6):
            (identifier,) = struct.unpack_from("!H", l4, 4)
            self._ping = self._open_ping(identifier)
            self._setup(self._ping)
        elif self._protocol == socket.IPPROTO_UDP and self._udp is not None:
            self._udp_port = self._udp.getsockname()[1]
            self._setup(self._udp)
        elif self._protocol != socket.IPPROTO_TCP or l4[13] != _SYN:
            raise BadInput(
                "this probe method needs raw sockets (root or CAP_NET_RAW): without "
                "privilege, tracekit traces with --probe icmp, udp or tcp"
            )
        #: TCP: each probe comes from a port of its own (no --paris, no --source-port).
        self.port_per_probe = self._protocol == socket.IPPROTO_TCP
        #: Answers carry the kernel's arrival time, except a connection made (TCP), which is
        #: timed when it is seen: the driver must look at once (``tracekit.driver``).
        self.stamped = not self.port_per_probe
        self._poll = select.poll()
        for sock in self._sockets_in_use():
            self._poll.register(sock, select.POLLIN)

    def _open_ping(self, identifier: int) -> socket.socket:
        proto = socket.IPPROTO_ICMP if self.ip_version == 4 else IPPROTO_ICMPV6
        try:
            sock = socket.socket(self.family, socket.SOCK_DGRAM, proto)
        except PermissionError as exc:
            raise CannotProbe(ping_hint()) from exc
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise CannotProbe(ping_hint()) from exc
            raise CannotProbe(f"cannot open a ping socket: {exc.strerror}") from exc
        self._sockets.append(sock)
        try:
            sock.bind((self.local, identifier))
        except OSError as exc:
            raise CannotProbe(f"cannot bind a ping socket: {exc.strerror}") from exc
        return sock

    def _setup(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        if self.interface:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
            except OSError as exc:
                raise CannotProbe(f"cannot use interface {self.interface}: {exc.strerror}") from exc
        if self.ip_version == 4:
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVTTL, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            # Flow label 0, as on the raw path. The automatic label also leaves the flow's
            # hash on each packet, which Linux routers sharing the kernel (namespaces,
            # containers) balance on instead of hashing for themselves: all alike, so a
            # mesh of them shows no crossing link.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_AUTOFLOWLABEL, 0)

    # -- sending ----------------------------------------------------------------------------

    def send(self, data: bytes) -> float:
        """Send the layer-4 part of a whole probe packet with its TTL and TOS."""
        if self.ip_version == 4:
            start, ttl, tos = (data[0] & 0x0F) * 4, data[8], data[1]
        else:
            start, ttl = 40, data[7]
            tos = ((data[0] & 0x0F) << 4) | (data[1] >> 4)
        l4 = data[start:]
        if self._protocol == socket.IPPROTO_TCP:
            return self._connect(l4, ttl, tos)
        sock = self._ping if self._ping is not None else self._udp
        assert sock is not None
        level = socket.IPPROTO_IP if self.ip_version == 4 else socket.IPPROTO_IPV6
        if self._ttl.get(sock) != ttl:
            name = socket.IP_TTL if self.ip_version == 4 else socket.IPV6_UNICAST_HOPS
            sock.setsockopt(level, name, ttl)
            self._ttl[sock] = ttl
        if self._tos.get(sock, 0) != tos:
            sock.setsockopt(level, socket.IP_TOS if self.ip_version == 4 else 67, tos)
            self._tos[sock] = tos
        port = 0
        if sock is self._udp:
            port = struct.unpack_from("!H", l4, 2)[0]
            l4 = l4[8:]  # the kernel writes the UDP header (and the same checksum)
        for attempt in (1, 2):
            sent = time.time()
            try:
                sock.sendto(l4, (self.destination, port))
                return sent
            except OSError as exc:
                # The first failure may be an earlier probe's ICMP error, which the kernel
                # also reports on the socket once (its copy is on the error queue): again.
                if attempt == 1 and exc.errno in _ASYNC_ERRORS:
                    continue
                if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                    raise CannotProbe(f"no route to {self.destination}") from exc
                raise CannotProbe(f"cannot send to {self.destination}: {exc.strerror}") from exc
        raise AssertionError("unreachable")

    def _connect(self, syn: bytes, ttl: int, tos: int) -> float:
        """TCP: a non-blocking connect with the probe's TTL; the kernel sends the SYN."""
        (dport,) = struct.unpack_from("!H", syn, 2)
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            self._setup(sock)
            level = socket.IPPROTO_IP if self.ip_version == 4 else socket.IPPROTO_IPV6
            name = socket.IP_TTL if self.ip_version == 4 else socket.IPV6_UNICAST_HOPS
            sock.setsockopt(level, name, ttl)
            if tos:
                sock.setsockopt(level, socket.IP_TOS if self.ip_version == 4 else 67, tos)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
            sock.bind((self.local, 0))
            sent = time.time()
            code = sock.connect_ex((self.destination, dport))
        except OSError as exc:
            sock.close()
            raise CannotProbe(f"cannot connect to {self.destination}: {exc.strerror}") from exc
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                raise CannotProbe(f"no route to {self.destination}")
            raise CannotProbe(f"cannot connect to {self.destination}: {os.strerror(code)}")
        self._connecting[sock.fileno()] = (sock, syn[:20], sent)
        self._poll.register(sock, select.POLLOUT)
        self._forget_old(sent)
        return sent

    def _forget_old(self, now: float) -> None:
        """Close connecting sockets before the kernel would send their SYN again (1 s)."""
        for fd, (sock, _, sent) in list(self._connecting.items()):
            if now - sent >= _TCP_LIFETIME:
                self._close_tcp(fd, sock)

    def _close_tcp(self, fd: int, sock: socket.socket) -> None:
        # Reset rather than close: no connection of ours lingers at the destination.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._poll.unregister(fd)
        del self._connecting[fd]
        sock.close()

    # -- receiving --------------------------------------------------------------------------

    def receive(self, timeout: float) -> list[Received]:
        """Wait up to ``timeout`` seconds; return answers and errors, as raw packets."""
        out: list[Received] = []
        for fd, events in self._poll.poll(max(0.0, timeout) * 1000):
            connecting = self._connecting.get(fd)
            if connecting is not None:
                self._tcp_event(fd, connecting, events, out)
                continue
            sock = self._ping if self._ping is not None and fd == self._ping.fileno() else self._udp
            assert sock is not None
            for flags in (socket.MSG_ERRQUEUE, 0):
                out.extend(self._drain(sock, flags))
        if self._connecting:
            self._forget_old(time.time())
        return out

    def _drain(self, sock: socket.socket, flags: int) -> list[Received]:
        out: list[Received] = []
        while True:
            try:
                data, ancillary, _flags, addr = sock.recvmsg(65535, 512, flags)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # an error reported on the socket itself: nothing to read
            received = (
                self._error(sock, data, ancillary, addr)
                if flags
                else self._answer(sock, data, ancillary, addr)
            )
            if received is not None:
                out.append(received)
        return out

    def _tcp_event(
        self, fd: int, connecting: tuple[socket.socket, bytes, float], events: int,
        out: list[Received],
    ) -> None:  # fmt: skip
        """A probe's socket: an ICMP error on its queue, or the connection done or refused."""
        sock, syn, _ = connecting
        errors = self._drain(sock, socket.MSG_ERRQUEUE)
        if errors:
            out.extend(errors)
            self._close_tcp(fd, sock)
            return
        if not events & (select.POLLOUT | select.POLLERR | select.POLLHUP):
            return
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code in (0, errno.ECONNREFUSED):
            sport, dport, seq = struct.unpack_from("!HHI", syn)
            flags = _SYN | _ACK if code == 0 else _RST | _ACK
            segment = struct.pack("!HHIIBBHHH", dport, sport, 0, (seq + 1) & 0xFFFFFFFF,
                                  0x50, flags, 0, 0, 0)  # fmt: skip
            out.append(self._packet(self._packed_destination, segment, time.time(), None,
                                    socket.IPPROTO_TCP))  # fmt: skip
        self._close_tcp(fd, sock)

    def _sockets_in_use(self) -> list[socket.socket]:
        return [s for s in (self._ping, self._udp) if s is not None]

    def _ancillary(self, ancillary: list[tuple[int, int, bytes]]) -> tuple[float, int | None, Any]:
        stamp, ttl, error = time.time(), None, None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                stamp = sec + nsec / 1e9
            elif (level, kind) in ((socket.IPPROTO_IP, _IP_TTL_CMSG),
                                   (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)):  # fmt: skip
                (ttl,) = struct.unpack("i", value[:4])
            elif (level, kind) in ((socket.IPPROTO_IP, _IP_RECVERR),
                                   (socket.IPPROTO_IPV6, _IPV6_RECVERR)):  # fmt: skip
                error = value
        return stamp, ttl, error

    def _error(
        self, sock: socket.socket, data: bytes, ancillary: list[tuple[int, int, bytes]], addr: Any
    ) -> Received | None:
        """An ICMP error from the error queue, as the packet a raw socket would deliver."""
        stamp, _, error = self._ancillary(ancillary)
        if error is None or len(error) < _EE.size + 8:
            return None
        _errno, origin, kind, code, _pad, _info, _data = _EE.unpack_from(error)
        if origin not in (_ORIGIN_ICMP, _ORIGIN_ICMP6):
            return None
        offender = self._sockaddr(error[_EE.size :])
        if offender is None:
            return None
        connecting = self._connecting.get(sock.fileno())
        if connecting is not None:
            quoted_l4 = connecting[1]  # the SYN the method built: its ports and sequence
            protocol = socket.IPPROTO_TCP
        elif sock is self._udp:
            port = addr[1] if addr else 0
            quoted_l4 = self._udp_header(self._udp_port, port, data) + data
            protocol = socket.IPPROTO_UDP
        else:
            quoted_l4 = data
            protocol = self._protocol
        quoted = self._ip_header(protocol, self._packed_local, self._packed_destination,
                                 len(quoted_l4), 1)  # fmt: skip
        icmp = struct.pack("!BBHI", kind, code, 0, 0) + quoted + quoted_l4
        return self._packet(offender, icmp, stamp, None)

    def _answer(
        self, sock: socket.socket, data: bytes, ancillary: list[tuple[int, int, bytes]], addr: Any
    ) -> Received | None:
        """What arrived on the socket itself: an echo reply, or a UDP datagram."""
        if not addr:
            return None
        stamp, ttl, _ = self._ancillary(ancillary)
        sender = addr[0].split("%")[0]
        if sock is self._udp:
            data = self._udp_header(addr[1], self._udp_port, data, reverse=True) + data
            return self._packet(socket.inet_pton(self.family, sender), data, stamp, ttl, 17)
        return self._packet(socket.inet_pton(self.family, sender), data, stamp, ttl)

    def _udp_header(self, sport: int, dport: int, payload: bytes, reverse: bool = False) -> bytes:
        """The UDP header the kernel wrote (its checksum too, which may carry a probe's id)."""
        length = 8 + len(payload)
        src, dst = self._packed_local, self._packed_destination
        if reverse:
            src, dst = dst, src
        header = struct.pack("!HHHH", sport, dport, length, 0)
        if self.ip_version == 4:
            pseudo = src + dst + struct.pack("!BBH", 0, 17, length)
        else:
            pseudo = src + dst + struct.pack("!IxxxB", length, 17)
        checksum = internet_checksum(pseudo + header + payload) or 0xFFFF
        return struct.pack("!HHHH", sport, dport, length, checksum)

    def _sockaddr(self, raw: bytes) -> bytes | None:
        (family,) = struct.unpack_from("=H", raw)
        if family == socket.AF_INET and len(raw) >= 8:
            return raw[4:8]
        if family == socket.AF_INET6 and len(raw) >= 24:
            return raw[8:24]
        return None

    def _ip_header(self, protocol: int, src: bytes, dst: bytes, length: int, ttl: int) -> bytes:
        if self.ip_version == 4:
            return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0, ttl, protocol, 0,
                               src, dst)  # fmt: skip
        return ipv6_header(protocol, src, dst, length, ttl)

    def _packet(
        self, src: bytes, l4: bytes, stamp: float, ttl: int | None, protocol: int | None = None
    ) -> Received:
        if protocol is None:
            protocol = socket.IPPROTO_ICMP if self.ip_version == 4 else IPPROTO_ICMPV6
        header = self._ip_header(protocol, src, self._packed_local, len(l4), ttl or 0)
        address = socket.inet_ntop(self.family, src)
        return Received(header + l4, self.ip_version, address, stamp, ttl)

    def close(self) -> None:
        for sock, _, _ in self._connecting.values():
            sock.close()
        self._connecting.clear()
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def __enter__(self) -> DatagramTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
