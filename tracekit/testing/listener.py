"""A TCP server for the lab: accepts connections on the given ports and closes them.

Run as ``python -m tracekit.testing.listener PORT...`` (in the server's namespace); it prints
``listening`` once every port is open.
"""

from __future__ import annotations

import selectors
import signal
import socket
import sys


def main(ports: list[int]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the lab stops it with SIGTERM
    selector = selectors.DefaultSelector()
    for port in ports:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", port))
        sock.listen(64)
        selector.register(sock, selectors.EVENT_READ)
    print("listening", flush=True)
    while True:
        for key, _ in selector.select():
            server = key.fileobj
            assert isinstance(server, socket.socket)
            connection, _ = server.accept()
            connection.close()


if __name__ == "__main__":
    main([int(port) for port in sys.argv[1:]])
