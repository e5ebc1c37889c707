"""Classic traceroute text, one line per hop, printed as soon as the hop is complete::

tracekit to server.example (10.0.4.2), 30 hops max, icmp probes
 1  r1.example (10.0.1.2)  0.081 ms  0.032 ms  0.029 ms
 2  * * *
 3  10.0.3.2 (10.0.3.2)  0.110 ms !H  0.049 ms !H  0.045 ms !H

When GeoIP knows the autonomous systems of the hops, a last line sums them up::

AS path: AS64500 → AS64501 → AS64502
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracekit import hookimpl
from tracekit.outputs import Output
from tracekit.replies import marker
from tracekit.sanitize import printable

if TYPE_CHECKING:
    from tracekit.events import Round
    from tracekit.hookspecs import RegisterOutput
    from tracekit.model import Hop, Host, ProbeResult, Trace


def header(trace: Trace) -> str:
    """The first line: what is traced, and how."""
    return (
        f"tracekit to {printable(trace.target)} ({trace.address}), "
        f"{trace.max_ttl} hops max, {trace.probe.method} probes"
    )


def geo_label(host: Host | None) -> str:
    """`` [AS64500 Frankfurt, DE]`` from a host's ASN and location, or ``""``."""
    if host is None:
        return ""
    parts = []
    if host.asn is not None:
        parts.append(f"AS{host.asn.number}")
    location = host.location
    if location is not None:
        place = ", ".join(p for p in (location.city, location.country_code) if p)
        if place:
            parts.append(place)
    return f" [{printable(' '.join(parts))}]" if parts else ""


def hop_line(hop: Hop, numeric: bool = False) -> str:
    """One hop as ``traceroute`` prints it; the host is repeated when it changes."""
    parts = [f"{hop.ttl:2d} "]
    shown: str | None = None
    for probe in hop.probes:
        if probe.address is None:
            parts.append(" *")
            continue
        if probe.address != shown:
            shown = probe.address
            host = hop.hosts.get(shown)
            if numeric:
                parts.append(f" {shown}")
            else:
                name = host.name if host is not None else None
                parts.append(f" {printable(name or shown)} ({shown})")
            parts.append(geo_label(host))
        parts.append(f"  {probe.rtt_ms:.3f} ms")
        mark = probe.marker or marker(probe.reply)
        if mark:
            parts.append(f" {mark}")
        for entry in probe.mpls:
            parts.append(f" <MPLS:L={entry.label},E={entry.tc},S={int(entry.s)},T={entry.ttl}>")
    withheld = sum(p.rate_limited for p in hop.probes)
    if withheld:
        parts.append(f"  ({withheld} withheld by an ICMP rate limit, not lost)")
    return "".join(parts)


def as_path(trace: Trace) -> list[int]:
    """The autonomous systems of the hops in TTL order, each once per stretch of hops."""
    path: list[int] = []
    for hop in trace.hops:
        for host in hop.hosts.values():
            number = host.asn.number if host.asn is not None else None
            if number is not None and (not path or path[-1] != number):
                path.append(number)
    return path


def as_path_line(trace: Trace, arrow: str = "→") -> str | None:
    """``AS path: AS64500 → AS64501``, or ``None`` when no hop's AS is known."""
    path = as_path(trace)
    return "AS path: " + f" {arrow} ".join(f"AS{n}" for n in path) if path else None


def links_text(trace: Trace) -> str:
    """Multipath discovery: each hop's interfaces and their successors."""
    successors: dict[tuple[int, str], list[str]] = {}
    for link in trace.links or []:
        successors.setdefault((link.ttl, link.source), []).append(link.target)
    lines = [f"links ({trace.probes_sent} probes, {trace.confidence or 0:.0%} confidence):"]
    for (ttl, source), targets in sorted(successors.items()):
        lines.append(f"{ttl:2d}  {source} -> {', '.join(targets)}")
    return "\n".join(lines)


class TextOutput(Output):
    """Streams the trace in the familiar ``traceroute`` layout. In continuous mode: a live
    view on a terminal (:mod:`tracekit.outputs.live`), and an mtr-style report at the end
    (:mod:`tracekit.outputs.report`)."""

    live: Any = None
    list_separator = "\n"  # a blank line between the traces of several targets

    def start(self, trace: Trace) -> None:
        if not trace.continuous:
            self._write(header(trace))
            return
        stream = self.target.stream
        if not trace.settings.get("report") and self.target.path is None and stream.isatty():
            from tracekit.outputs.live import LiveView

            self.live = LiveView(stream, trace, self.target.numeric)
            self.live.start()

    def answer(self, trace: Trace, ttl: int, result: ProbeResult) -> None:
        if self.live is not None:
            self.live.changed()

    def round(self, trace: Trace, round: Round) -> None:
        if self.live is not None:
            self.live.changed()

    def hop(self, trace: Trace, hop: Hop) -> None:
        self._write(hop_line(hop, self.target.numeric))

    def finish(self, trace: Trace) -> None:
        if trace.address is None:  # several targets: this one failed before probing
            self._write(f"tracekit to {printable(trace.target)}: error: {trace.error}")
            return
        if self.live is not None:
            live, self.live = self.live, None
            live.stop()
        if trace.links is not None:
            self._write(links_text(trace))
        if trace.continuous:
            from tracekit.outputs.report import report

            self._write(report(trace, self.target.numeric))
        if trace.end == "interrupted":
            self._write("(interrupted)")
        elif trace.error is not None and self.target.several:
            self._write(f"(error: {trace.error})")
        line = as_path_line(trace, self._arrow())
        if line is not None:
            self._write(line)

    def _arrow(self) -> str:
        """``→``, or ``->`` where the stream cannot encode it (an ASCII terminal)."""
        try:
            "→".encode(getattr(self.target.stream, "encoding", None) or "utf-8")
        except (UnicodeEncodeError, LookupError):
            return "->"
        return "→"

    def _write(self, line: str) -> None:
        self.target.stream.write(line + "\n")
        self.target.stream.flush()


@hookimpl
def tracekit_register_outputs(register: RegisterOutput) -> None:
    register("text", TextOutput, "traceroute-style text, streamed hop by hop", [".txt"])
