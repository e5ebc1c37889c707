"""A server for the lab: accepts TCP connections on the given ports and closes them; with
``udp:PORT`` (or ``udp:FIRST-LAST``) it also answers every UDP datagram to those ports.

Run as ``python -m tracekit.testing.listener PORT... [udp:PORT...]`` (in the server's
namespace); it prints ``listening`` once every port is open.
"""

from __future__ import annotations

import selectors
import signal
import socket
import sys


def _bind(kind: int, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::", port))
    return sock


def parse(args: list[str]) -> tuple[list[int], list[int]]:
    """TCP and UDP ports from ``80 443 udp:53 udp:33434-33533``."""
    tcp: list[int] = []
    udp: list[int] = []
    for arg in args:
        if not arg.startswith("udp:"):
            tcp.append(int(arg))
            continue
        first, _, last = arg[4:].partition("-")
        udp.extend(range(int(first), int(last or first) + 1))
    return tcp, udp


def main(args: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the lab stops it with SIGTERM
    tcp, udp = parse(args)
    selector = selectors.DefaultSelector()
    for port in tcp:
        sock = _bind(socket.SOCK_STREAM, port)
        sock.listen(64)
        selector.register(sock, selectors.EVENT_READ, "tcp")
    for port in udp:
        selector.register(_bind(socket.SOCK_DGRAM, port), selectors.EVENT_READ, "udp")
    print("listening", flush=True)
    while True:
        for key, _ in selector.select():
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            if key.data == "udp":
                data, peer = ready.recvfrom(2048)
                ready.sendto(data, peer)
            else:
                connection, _ = ready.accept()
                connection.close()


if __name__ == "__main__":
    main(sys.argv[1:])
