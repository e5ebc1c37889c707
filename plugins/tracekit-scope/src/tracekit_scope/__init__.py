"""Annotates every host with the scope of its address: "private", "shared", "global"...

:func:`scope` classifies an address. The hooks show how an enrichment plugin keeps slow work
from holding up the trace: a lookup starts in a thread pool as soon as an address answers
(``tracekit_probe_answered``), and each hop collects its results (``tracekit_enrich_hop``),
waiting at most :data:`TIMEOUT` seconds. Classifying is fast; put a GeoIP or whois query in
its place and the pattern stays the same.

It also shows how a plugin adds to the command line: an option of ``tracekit trace``
(``--no-scope``, :func:`tracekit_add_options`; its value is ``trace.settings["no_scope"]``)
and a command of its own (``tracekit scope ADDRESS...``, :func:`tracekit_register_commands`).
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
from typing import TYPE_CHECKING

from tracekit import hookimpl
from tracekit.stash import StashKey

if TYPE_CHECKING:
    import click

    from tracekit.hookspecs import AddOption
    from tracekit.model import Hop, ProbeResult, Trace

#: Seconds a hop waits for its lookups; a host whose lookup is not done by then (or failed)
#: gets no scope.
TIMEOUT = 1.0

#: Named scopes and their networks. No two overlap; an address in none of them is
#: "reserved" if ipaddress says it is not globally reachable (IANA's special-purpose
#: registries), else "global".
SCOPES = {
    name: [ipaddress.ip_network(n) for n in networks]
    for name, networks in {
        "loopback": ["127.0.0.0/8", "::1/128"],
        "link-local": ["169.254.0.0/16", "fe80::/10"],
        "multicast": ["224.0.0.0/4", "ff00::/8"],
        # RFC 1918 and unique local addresses (RFC 4193).
        "private": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
        # RFC 6598: between carrier-grade NAT and its customers.
        "shared": ["100.64.0.0/10"],
        # RFC 5737, RFC 3849, RFC 9637.
        "documentation": [
            "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"
        ],
    }.items()
}  # fmt: skip


def scope(address: str) -> str:
    """The scope of an IPv4 or IPv6 address: a key of :data:`SCOPES`, "reserved" or
    "global". An IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) has the IPv4 address's."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for name, networks in SCOPES.items():
        if any(ip in network for network in networks if network.version == ip.version):
            return name
    return "global" if ip.is_global else "reserved"


class _Lookups:
    """The lookups of one trace, each address's started once."""

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="tracekit-scope")
        self.pending: dict[str, concurrent.futures.Future[str]] = {}

    def start(self, address: str) -> concurrent.futures.Future[str]:
        if address not in self.pending:
            self.pending[address] = self.pool.submit(scope, address)
        return self.pending[address]


#: Each trace's lookups, kept in the trace (``trace.stash``).
LOOKUPS = StashKey[_Lookups]()


@hookimpl
def tracekit_add_options(add: AddOption) -> None:
    add("--no-scope", is_flag=True, help="Leave hosts without the scope of their address "
        "(tracekit-scope).")  # fmt: skip


@hookimpl
def tracekit_register_commands(cli: click.Group) -> None:
    import click  # here, not at the top: this runs for every 'tracekit --help'

    @cli.command("scope")
    @click.argument("addresses", nargs=-1, required=True, metavar="ADDRESS...")
    def scope_command(addresses: tuple[str, ...]) -> int:
        """Print the scope of each ADDRESS: private, shared, global... (tracekit-scope)."""
        for address in addresses:
            try:
                click.echo(f"{address}  {scope(address)}")
            except ValueError:
                raise click.BadParameter(f"{address!r} is not an IP address") from None
        return 0


@hookimpl
def tracekit_trace_started(trace: Trace) -> None:
    if not trace.settings.get("no_scope"):
        trace.stash[LOOKUPS] = _Lookups()


@hookimpl
def tracekit_probe_answered(trace: Trace, result: ProbeResult) -> None:
    # Called from the probing loop for every answer: only start the work here.
    lookups = trace.stash.get(LOOKUPS)
    if lookups is not None and result.address is not None:
        lookups.start(result.address)


@hookimpl
def tracekit_enrich_hop(trace: Trace, hop: Hop) -> None:
    lookups = trace.stash.get(LOOKUPS)
    if lookups is None:
        return
    futures = {host.address: lookups.start(host.address) for host in hop.hosts.values()}
    # One wait for the whole hop: at most TIMEOUT, however many hosts answered.
    done, _ = concurrent.futures.wait(futures.values(), timeout=TIMEOUT)
    for address, future in futures.items():
        # Late or failed: leave the host without a scope rather than hold up or stop the trace.
        if future in done and future.exception() is None:
            hop.hosts[address].annotations["scope"] = future.result()


@hookimpl
def tracekit_trace_finished(trace: Trace) -> None:
    lookups = trace.stash.pop(LOOKUPS)
    if lookups is not None:
        lookups.pool.shutdown(wait=False, cancel_futures=True)
