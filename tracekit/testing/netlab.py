"""Build a routed network of Linux network namespaces: a client, routers, a server.

Nothing here touches the machine's own network: every address lives inside namespaces this
module creates, and :meth:`Lab.close` removes them (and every process in them) again.
Needs root and the ``ip`` command (iproute2); nothing else.

The default topology is a chain::

    client --(link 1)-- r1 --(link 2)-- r2 -- ... -- rN --(link N+1)-- server

Link ``k`` has the IPv4 subnet ``10.0.k.0/24`` and the IPv6 subnet ``2001:db8:k::/64``; the
end nearer the client is ``.1``/``::1``, the other ``.2``/``::2``. So router ``k`` answers
from ``10.0.k.2`` and the server of a chain of two routers is ``10.0.3.2``. Names for every
address (``r1.tracekit.test``...) are in the namespaces' own ``/etc/hosts``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Namespaces of labs start with this; the rest is ``<pid>-<random>-<node>``.
PREFIX = "tk-"
DOMAIN = "tracekit.test"
#: TCP ports the server listens on (others are closed, as are all UDP ports).
TCP_PORTS = (80, 443, 8080)
NETNS_ETC = Path("/etc/netns")
#: A load-balanced topology for ``Lab(topology=DIAMOND, multipath_hash=1)``: r1 reaches r3
#: through r2a and r2b, two equal-cost paths.
DIAMOND = [
    ("client", "r1"),
    ("r1", "r2a"),
    ("r1", "r2b"),
    ("r2a", "r3"),
    ("r2b", "r3"),
    ("r3", "server"),
]

#: Four equal-cost paths: r1 reaches r3 through r2a, r2b, r2c and r2d.
WIDE_DIAMOND = [
    ("client", "r1"),
    *(("r1", f"r2{x}") for x in "abcd"),
    *((f"r2{x}", "r3") for x in "abcd"),
    ("r3", "server"),
]
#: A split that merges in steps: four paths from r1, two by two into r3a and r3b, then r4.
STEPPED = [
    ("client", "r1"),
    *(("r1", f"r2{x}") for x in "abcd"),
    ("r2a", "r3a"),
    ("r2b", "r3a"),
    ("r2c", "r3b"),
    ("r2d", "r3b"),
    ("r3a", "r4"),
    ("r3b", "r4"),
    ("r4", "server"),
]
#: Routers meshed: r2a and r2b each reach both r3a and r3b, which both reach r4.
MESHED = [
    ("client", "r1"),
    ("r1", "r2a"),
    ("r1", "r2b"),
    *((f"r2{x}", f"r3{y}") for x in "ab" for y in "ab"),
    ("r3a", "r4"),
    ("r3b", "r4"),
    ("r4", "server"),
]


class LabError(RuntimeError):
    """The network could not be built (not root, no ``ip`` command...)."""


@dataclass(frozen=True)
class Link:
    """A veth pair between two nodes; ``a`` is the end nearer the client."""

    index: int
    a: str
    b: str

    def address(self, node: str, ip_version: int) -> str:
        host = 1 if node == self.a else 2
        return f"10.0.{self.index}.{host}" if ip_version == 4 else f"2001:db8:{self.index}::{host}"

    def subnet(self, ip_version: int) -> str:
        return f"10.0.{self.index}.0/24" if ip_version == 4 else f"2001:db8:{self.index}::/64"

    def peer(self, node: str) -> str:
        return self.b if node == self.a else self.a


@dataclass
class Lab:
    """A throwaway network. Use as a context manager, or call :meth:`build` and :meth:`close`.

    ``routers`` routers in a chain, or any ``topology``: a list of links as node pairs, which
    must include the nodes ``client`` and ``server``; every other node is a router. Where
    several shortest paths lead on, routers spread traffic over them (ECMP), hashing on
    ports too when ``multipath_hash=1`` (``fib_multipath_hash_policy``).

    With ``single_return``, routes back to the client take one path (the first) instead of
    spreading: over IPv4 a router then answers from one address whichever way a probe came
    in (as routers answering from a loopback do), so meshed routers show as meshed
    interfaces. Over IPv6, Linux answers from the address a probe came in by, either way.
    Without it, Linux hashes an ICMP error's way back as the probe's way in, and each router
    answers from the address the probe came in by where the paths mirror each other (each
    router splitting over its own neighbours, as in ``DIAMOND``).

    With ``hash_seeds`` (Linux 6.11 or later), each router hashes flows with a seed of its
    own (``fib_multipath_hash_seed``), so routers choose independently, as real ones do;
    otherwise they share one hash, and a flow that r1 sends to its first path, r2 sends to
    its first path too (a mesh then shows no crossing link).

    Routers named (``"r2"``) or numbered (``2``) in ``silent`` send no ICMP errors at all.
    ``ratelimit`` is the routers' ICMP rate limit in milliseconds (0: none; ``None``: the
    kernel default, about one error per second after a small burst). The kernel's separate
    limit on errors for unroutable destinations (``ip route add prohibit``...) is
    machine-wide and stays as it is: to make a router refuse traffic in a test, use
    nftables ``reject`` (see :meth:`nft`).
    """

    routers: int = 3
    silent: Iterable[int | str] = ()
    ratelimit: int | None = 0
    tcp_ports: Sequence[int] = TCP_PORTS
    #: UDP ports on which the server answers every datagram (an echo service).
    udp_ports: Sequence[int] = ()
    topology: Sequence[tuple[str, str]] | None = None
    multipath_hash: int | None = None
    single_return: bool = False
    hash_seeds: bool = False
    tag: str = field(default_factory=lambda: f"{os.getpid()}-{secrets.token_hex(2)}")
    links: list[Link] = field(default_factory=list)
    _built: list[str] = field(default_factory=list, repr=False)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.silent = tuple(f"r{s}" if isinstance(s, int) else s for s in self.silent)
        if self.topology is None:
            chain = ["client", *(f"r{i}" for i in range(1, self.routers + 1)), "server"]
            self.topology = list(itertools.pairwise(chain))
        self.links = [Link(i + 1, a, b) for i, (a, b) in enumerate(self.topology)]
        if not {"client", "server"} <= set(self.nodes):
            raise LabError("a topology needs a client and a server")

    # -- topology -----------------------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        """Every node: the client, the routers in order of appearance, the server."""
        seen = dict.fromkeys(node for link in self.links for node in (link.a, link.b))
        return ["client", *(n for n in seen if n not in ("client", "server")), "server"]

    @property
    def router_names(self) -> list[str]:
        return self.nodes[1:-1]

    def netns(self, node: str) -> str:
        """The namespace name of ``node``."""
        return f"{PREFIX}{self.tag}-{node}"

    def links_of(self, node: str) -> list[Link]:
        return [link for link in self.links if node in (link.a, link.b)]

    def neighbours(self, node: str) -> list[str]:
        return [link.peer(node) for link in self.links_of(node)]

    def address(self, node: str, ip_version: int = 4) -> str:
        """The main address of ``node``: where traffic from the client first reaches it."""
        path = self.path("client", node)
        if len(path) < 2:
            return self.links_of(node)[0].address(node, ip_version)
        return self._link_between(path[-2], node).address(node, ip_version)

    def name(self, node: str) -> str:
        return f"{node}.{DOMAIN}"

    def distances(self, src: str) -> dict[str, int]:
        """Hops from ``src`` to every node."""
        distance = {src: 0}
        todo = deque([src])
        while todo:
            node = todo.popleft()
            for peer in self.neighbours(node):
                if peer not in distance:
                    distance[peer] = distance[node] + 1
                    todo.append(peer)
        return distance

    def next_hops(self, node: str, dst: str) -> list[str]:
        """The neighbours of ``node`` on a shortest path to ``dst`` (several: ECMP)."""
        distance = self.distances(dst)
        if node not in distance:
            raise LabError(f"{dst} is not connected to {node}")
        return [p for p in self.neighbours(node) if distance.get(p) == distance[node] - 1]

    def path(self, src: str, dst: str) -> list[str]:
        """Nodes on one shortest path from ``src`` to ``dst``, both included."""
        out = [src]
        while out[-1] != dst:
            out.append(self.next_hops(out[-1], dst)[0])
        return out

    def hop_choices(self, ip_version: int = 4, dst: str = "server") -> list[set[str | None]]:
        """For each TTL from the client to ``dst``: the addresses that may answer there
        (``None`` for a silent router). More than one where paths split (ECMP)."""
        from_client = self.distances("client")
        to_dst = self.distances(dst)
        total = to_dst["client"]
        hops: list[set[str | None]] = []
        for ttl in range(1, total + 1):
            choices: set[str | None] = set()
            for node in self.nodes:
                if from_client.get(node) != ttl or to_dst.get(node) != total - ttl:
                    continue
                for before in self.neighbours(node):
                    if from_client.get(before) == ttl - 1:
                        address = self._answering(node, before, ip_version)
                        choices.add(None if node in self.silent else address)
            hops.append(choices)
        return hops

    def hop_links(self, ip_version: int = 4, dst: str = "server") -> set[tuple[int, str, str]]:
        """The links a multipath trace from the client to ``dst`` can find: ``(ttl, from,
        to)``, ``from`` answering at ``ttl`` and ``to`` at ``ttl + 1`` (shortest paths,
        ECMP), each router answering as the class docstring says."""
        from_client, to_dst = self.distances("client"), self.distances(dst)
        total = to_dst["client"]
        on_path = {n for n in self.nodes if from_client.get(n, -1) + to_dst.get(n, -1) == total}
        out: set[tuple[int, str, str]] = set()
        for node in on_path - {"client", dst}:
            ttl = from_client[node]
            before = [p for p in self.neighbours(node) if p in on_path and from_client[p] < ttl]
            after = [n for n in self.neighbours(node) if n in on_path and from_client[n] > ttl]
            for p in before:
                source = self._answering(node, p, ip_version)
                for n in after:
                    out.add((ttl, source, self._answering(n, node, ip_version)))
        return out

    def _answering(self, node: str, before: str, ip_version: int) -> str:
        """The address ``node`` answers from, for a probe that came from ``before``."""
        if self.single_return and ip_version == 4 and node != "client":
            before = self.next_hops(node, "client")[0]
        return self._link_between(before, node).address(node, ip_version)

    def expected_hops(self, ip_version: int = 4, dst: str = "server") -> list[str | None]:
        """The addresses a trace from the client to ``dst`` must show, ``None`` for silent."""
        hops = []
        for ttl, choices in enumerate(self.hop_choices(ip_version, dst), start=1):
            if len(choices) != 1:
                raise LabError(f"TTL {ttl} has several possible hops: use hop_choices()")
            hops.append(next(iter(choices)))
        return hops

    def own_prefix(self, router: str, prefix: str) -> None:
        """Make every address of ``prefix`` (IPv4 or IPv6) one of ``router``'s, routed to it
        from the client: targets without number whose trace ends at ``router``
        (``ip route add local``). A built lab only."""
        version = 6 if ":" in prefix else 4
        ip = ["ip", f"-{version}", "route"]
        self.exec(router, [*ip, "add", "local", prefix, "dev", "lo"])
        chain = self.path("client", router)
        for before, after in itertools.pairwise(chain):
            via = self._link_between(before, after).address(after, version)
            self.exec(before, [*ip, "add", prefix, "via", via])

    def _link_between(self, a: str, b: str) -> Link:
        for link in self.links_of(a):
            if link.peer(a) == b:
                return link
        raise LabError(f"no link between {a} and {b}")

    # -- building -----------------------------------------------------------------------------

    def build(self) -> Lab:
        """Create the namespaces, links, addresses and routes; start the server's listener."""
        if shutil.which("ip") is None:
            raise LabError("the ip command is missing: install iproute2")
        if os.geteuid() != 0:
            raise LabError("building network namespaces needs root (sudo tracekit demo)")
        remove_stale_labs()
        try:
            for node in self.nodes:
                self._add_namespace(node)
            for link in self.links:
                self._ip(
                    "link", "add", link.b, "netns", self.netns(link.a), "type", "veth",
                    "peer", "name", link.a, "netns", self.netns(link.b),
                )  # fmt: skip
            for node in self.nodes:
                self._configure(node)
            self._write_hosts()
            self._start_listener()
            self.warm_up()
        except BaseException:
            self.close()
            raise
        return self

    def _add_namespace(self, node: str) -> None:
        ns = self.netns(node)
        self._ip("netns", "add", ns)
        self._built.append(ns)
        router = node in self.router_names
        settings = {
            "net/ipv6/conf/all/accept_dad": 0,
            "net/ipv6/conf/default/accept_dad": 0,
            "net/ipv6/conf/default/accept_ra": 0,
            "net/ipv4/ip_forward": int(router),
            "net/ipv6/conf/all/forwarding": int(router),
        }
        if self.ratelimit is not None:
            settings["net/ipv4/icmp_ratelimit"] = self.ratelimit
            settings["net/ipv6/icmp/ratelimit"] = self.ratelimit
        if router and self.multipath_hash is not None:
            settings["net/ipv4/fib_multipath_hash_policy"] = self.multipath_hash
            settings["net/ipv6/fib_multipath_hash_policy"] = self.multipath_hash
        if router and self.hash_seeds:  # one per router, the same on every run
            settings["net/ipv4/fib_multipath_hash_seed"] = 7919 * (self.nodes.index(node) + 1)
        if self.ratelimit == 0:  # the per-namespace budget for all ICMP errors, too
            settings["net/ipv4/icmp_msgs_per_sec"] = 1_000_000
            settings["net/ipv4/icmp_msgs_burst"] = 1_000_000
        script = "; ".join(f"echo {v} > /proc/sys/{k}" for k, v in settings.items())
        self.exec(node, ["sh", "-c", script])

    def _configure(self, node: str) -> None:
        ip = ["-n", self.netns(node)]
        self._ip(*ip, "link", "set", "lo", "up")
        for link in self.links_of(node):
            ifname = link.peer(node)
            self._ip(*ip, "addr", "add", f"{link.address(node, 4)}/24", "dev", ifname)
            self._ip(
                *ip, "-6", "addr", "add", f"{link.address(node, 6)}/64", "dev", ifname, "nodad"
            )
            self._ip(*ip, "link", "set", ifname, "up")
        for link in self.links:
            if node in (link.a, link.b):
                continue
            # Route each subnet via the neighbours on shortest paths to it (several: ECMP).
            near = min((link.a, link.b), key=lambda end: self.distances(end).get(node, 1 << 30))
            gateways = self.next_hops(node, near)
            if self.single_return and "client" in (link.a, link.b):
                gateways = gateways[:1]
            for version in (4, 6):
                vias = [self._link_between(node, g).address(g, version) for g in gateways]
                if len(vias) == 1:
                    route = ["via", vias[0]]
                else:
                    route = [word for via in vias for word in ("nexthop", "via", via)]
                self._ip(*ip, f"-{version}", "route", "add", link.subnet(version), *route)
        if node in self.silent:
            self.make_silent(node)

    def make_silent(self, node: str) -> None:
        """Stop ``node`` from sending anything of its own, ICMP errors included.

        Locally generated packets find only an unreachable route, while forwarded traffic is
        untouched: the router forwards, but never answers.
        """
        ip = ["-n", self.netns(node)]
        for version in (4, 6):
            self._ip(*ip, f"-{version}", "rule", "add", "iif", "lo", "table", "100", "prio", "100")
            self._ip(*ip, f"-{version}", "route", "add", "unreachable", "default", "table", "100")

    def nft(self, node: str, ruleset: str) -> None:
        """Load an nftables ``ruleset`` (``nft -f`` syntax) into ``node``'s namespace."""
        if shutil.which("nft") is None:
            raise LabError("the nft command is missing: install nftables")
        self.exec(node, ["nft", "-f", "-"], input=ruleset)

    def _write_hosts(self) -> None:
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        for node in self.nodes:
            for link in self.links_of(node):
                for version in (4, 6):
                    lines.append(f"{link.address(node, version)} {self.name(node)} {node}")
        for node in self.nodes:
            directory = NETNS_ETC / self.netns(node)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "hosts").write_text("\n".join(lines) + "\n")
            # Names not in hosts go to a resolver that is not there: they fail at once.
            (directory / "resolv.conf").write_text("nameserver 127.0.0.1\noptions attempts:1\n")

    def _start_listener(self) -> None:
        if not self.tcp_ports and not self.udp_ports:
            return
        ports = [*map(str, self.tcp_ports), *(f"udp:{port}" for port in self.udp_ports)]
        command = [sys.executable, "-m", "tracekit.testing.listener", *ports]
        process = self.popen("server", command, stdout=subprocess.PIPE)
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"listening":
            raise LabError("the server's listener did not start")

    def warm_up(self) -> None:
        """Send one packet to the server and back, so no router has a cold neighbour cache."""
        script = (
            "import socket\n"
            "for family, address in ((socket.AF_INET, {!r}), (socket.AF_INET6, {!r})):\n"
            "    s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(2)\n"
            "    s.connect((address, 9)); s.send(b'warm-up')\n"
            "    try: s.recv(1)\n"
            "    except OSError: pass\n"
        ).format(self.address("server", 4), self.address("server", 6))
        self.exec("client", [sys.executable, "-c", script])

    # -- using --------------------------------------------------------------------------------

    def command(self, node: str, args: Sequence[str]) -> list[str]:
        """``args`` as a command that runs inside ``node``'s namespace."""
        return ["ip", "netns", "exec", self.netns(node), *args]

    def exec(
        self, node: str, args: Sequence[str], check: bool = True, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` inside ``node``'s namespace and wait for it; output is captured."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("start_new_session", True)  # see _run
        process = subprocess.run(self.command(node, args), text=True, **kwargs)
        if check and process.returncode != 0:
            raise LabError(f"{' '.join(args)} failed in {node}: {process.stderr.strip()}")
        return process

    def tracekit(
        self, *args: str, node: str = "client", timeout: float = 60, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``tracekit ARGS`` inside ``node`` (the client by default); output is captured."""
        command = [sys.executable, "-m", "tracekit", *args]
        return self.exec(node, command, check=False, timeout=timeout, **kwargs)

    def popen(self, node: str, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``args`` inside ``node``'s namespace; it is stopped by :meth:`close`.

        It runs in a session of its own, so Ctrl-C at the terminal does not reach it.
        """
        kwargs.setdefault("start_new_session", True)
        process = subprocess.Popen(self.command(node, args), **kwargs)
        self._processes.append(process)
        return process

    def _ip(self, *args: str) -> None:
        process = _run(["ip", *args])
        if process.returncode != 0:
            raise LabError(f"ip {' '.join(args)}: {process.stderr.strip()}")

    # -- removing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process in the lab's namespaces and delete them. Safe to call twice."""
        for process in self._processes:
            process.terminate()
        for ns in reversed(self._built):
            remove_namespace(ns)
        for process in self._processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        self._built.clear()
        self._processes.clear()

    def __enter__(self) -> Lab:
        return self.build()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a command that builds or removes a lab, in a session of its own: a signal sent to
    the caller's process group (Ctrl-C, ``timeout``) never cuts it short half way."""
    return subprocess.run(args, capture_output=True, text=True, start_new_session=True)


def remove_namespace(ns: str) -> None:
    """Kill every process inside namespace ``ns`` and delete it, with its ``/etc/netns``."""
    pids = _run(["ip", "netns", "pids", ns]).stdout
    for pid in pids.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _run(["ip", "netns", "del", ns])
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)


def remove_stale_labs() -> None:
    """Delete namespaces, and ``/etc/netns`` entries, left by labs whose process has died
    (e.g. after ``kill -9``). No lab depends on this: each removes its own in :meth:`close`."""
    listing = _run(["ip", "netns", "list"]).stdout
    names = {line.split()[0] for line in listing.splitlines() if line.split()}
    with contextlib.suppress(OSError):
        names |= {path.name for path in NETNS_ETC.iterdir()}
    for ns in sorted(names):
        if not ns.startswith(PREFIX):
            continue
        pid = ns[len(PREFIX) :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            remove_namespace(ns)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
