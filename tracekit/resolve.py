"""From what the user typed to addresses: the destination, and our source towards it."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket

from tracekit.errors import BadInput, CannotProbe, UnknownHost


def resolve(target: str, ip_version: int | None = None) -> tuple[str, int]:
    """Resolve ``target`` to ``(address, ip_version)``, preferring IPv4 unless told."""
    try:
        literal = ipaddress.ip_address(target.split("%")[0])
    except ValueError:
        literal = None
    if literal is not None:
        if ip_version is not None and literal.version != ip_version:
            raise BadInput(
                f"{target} is an IPv{literal.version} address, but -{ip_version} was given"
            )
        return str(literal), literal.version
    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(ip_version or 0, socket.AF_UNSPEC)
    try:
        infos = socket.getaddrinfo(target, None, family, socket.SOCK_RAW)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "invalid name"
        raise UnknownHost(f"cannot resolve {target!r}: {reason}") from exc
    addresses = [(str(info[4][0]), 4 if info[0] == socket.AF_INET else 6) for info in infos]
    if not addresses:
        raise UnknownHost(f"cannot resolve {target!r}: no address")
    for address, version in addresses:
        if version == 4:  # like traceroute, IPv4 first when both exist
            return address, version
    return addresses[0]


def source_for(
    destination: str, ip_version: int, interface: str | None = None, source: str | None = None
) -> str:
    """The source address the kernel would use towards ``destination`` (sends nothing).

    ``source`` (``-s``) must be an address of this host, of the trace's IP version; it is
    then the answer, once a route from it to ``destination`` is known to exist.
    """
    if source is not None:
        source = _own_address(source, ip_version)
    if interface is not None:
        try:
            socket.if_nametoindex(interface)
        except OSError as exc:
            raise CannotProbe(f"no such interface: {interface}") from exc
    family = socket.AF_INET if ip_version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if interface is not None:
            # Without privilege this fails; the raw sockets then report that clearly.
            with contextlib.suppress(PermissionError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        if source is not None:
            try:
                sock.bind((source, 0))
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise CannotProbe(f"{source} is not an address of this host") from exc
                raise CannotProbe(f"cannot send from {source}: {exc.strerror}") from exc
        try:
            sock.connect((destination, 33434))
        except OSError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
                raise CannotProbe(f"no route to {destination}") from exc
            raise CannotProbe(f"cannot reach {destination}: {exc.strerror}") from exc
        address: str = sock.getsockname()[0]
        return address


def _own_address(source: str, ip_version: int) -> str:
    """``source`` as an address of ``ip_version``, checked (whether it is ours comes later)."""
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        raise BadInput(f"--source {source!r} is not an IP address") from None
    if address.version != ip_version:
        raise BadInput(
            f"--source {source} is an IPv{address.version} address, "
            f"but the trace is over IPv{ip_version}"
        )
    return str(address)
