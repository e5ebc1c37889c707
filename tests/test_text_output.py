"""The text layout, and that text from the network cannot reach the terminal raw."""

from __future__ import annotations

import io

from tracekit.model import AutonomousSystem, Hop, Host, ProbeInfo, ProbeResult, Trace
from tracekit.outputs import OutputTarget
from tracekit.outputs.text import TextOutput, hop_line
from tracekit.sanitize import printable


def hop(ttl: int, *probes: tuple[str | None, float | None, str | None]) -> Hop:
    h = Hop(ttl, [ProbeResult(a, r, rep, 64 if a else None) for a, r, rep in probes])
    for p in h.probes:
        if p.address and p.address not in h.hosts:
            h.hosts[p.address] = Host(p.address)
    return h


def test_hop_line_like_traceroute() -> None:
    h = hop(1, *[("10.0.1.2", 0.1234, "time-exceeded")] * 3)
    h.hosts["10.0.1.2"].name = "r1.example"
    assert hop_line(h) == " 1  r1.example (10.0.1.2)  0.123 ms  0.123 ms  0.123 ms"
    assert hop_line(h, numeric=True) == " 1  10.0.1.2  0.123 ms  0.123 ms  0.123 ms"


def test_silent_hop_and_lost_probes_are_stars() -> None:
    assert hop_line(hop(12, (None, None, None), (None, None, None))) == "12  * *"
    mixed = hop(3, (None, None, None), ("10.0.3.2", 1.0, "time-exceeded"))
    assert hop_line(mixed, numeric=True) == " 3  * 10.0.3.2  1.000 ms"


def test_address_is_repeated_when_it_changes_and_markers_follow_rtts() -> None:
    h = hop(
        4,
        ("10.0.4.1", 1.0, "host-unreachable"),
        ("10.0.5.1", 2.0, "host-unreachable"),
        ("10.0.5.1", 3.0, "host-unreachable"),
    )
    assert hop_line(h, numeric=True) == (
        " 4  10.0.4.1  1.000 ms !H 10.0.5.1  2.000 ms !H  3.000 ms !H"
    )


def test_name_without_lookup_falls_back_to_the_address() -> None:
    h = hop(2, ("10.0.2.2", 0.5, "time-exceeded"))
    assert hop_line(h) == " 2  10.0.2.2 (10.0.2.2)  0.500 ms"


def test_control_characters_in_names_never_reach_the_terminal() -> None:
    h = hop(1, ("10.0.1.2", 0.5, "time-exceeded"))
    h.hosts["10.0.1.2"].name = "evil\x1b]0;pwned\x07\x1b[2J\r\nname\u202e.example"
    line = hop_line(h)
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in line)
    assert "\u202e" not in line
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x0aname\\u202e.example" in line


def test_printable_leaves_ordinary_names_alone() -> None:
    assert printable("r1.tracekit.test") == "r1.tracekit.test"
    assert printable("bücher.example") == "bücher.example"


def test_header_and_streaming_writes() -> None:
    stream = io.StringIO()
    trace = Trace("host\x1b[31m", "10.0.4.2", 4, ProbeInfo("icmp"))
    out = TextOutput(OutputTarget(stream))
    out.start(trace)
    out.hop(trace, hop(1, ("10.0.1.2", 0.5, "time-exceeded")))
    assert stream.getvalue().splitlines() == [
        "tracekit to host\\x1b[31m (10.0.4.2), 30 hops max, icmp probes",
        " 1  10.0.1.2 (10.0.1.2)  0.500 ms",
    ]


def test_a_probe_methods_own_marker_replaces_the_standard_one() -> None:
    h = hop(5, ("10.0.5.2", 1.0, "udp-reply"), ("10.0.5.2", 1.0, "dns-reply"))
    h.probes[1].marker = "[dns]"
    assert hop_line(h, numeric=True) == " 5  10.0.5.2  1.000 ms [open]  1.000 ms [dns]"


def traced(*asns: int | None) -> Trace:
    """A finished trace whose hop k is answered from AS ``asns[k-1]`` (``None``: unknown)."""
    trace = Trace("server", "10.0.9.2", 4, ProbeInfo("icmp"), end="reached", reached=True)
    for ttl, asn in enumerate(asns, start=1):
        h = hop(ttl, (f"10.0.{ttl}.2", 1.0, "time-exceeded"))
        if asn is not None:
            h.hosts[f"10.0.{ttl}.2"].asn = AutonomousSystem(number=asn, organization="x")
        trace.hops.append(h)
    return trace


def finished_text(trace: Trace, stream: io.StringIO | io.TextIOWrapper) -> str:
    TextOutput(OutputTarget(stream)).finish(trace)
    if isinstance(stream, io.TextIOWrapper):
        stream.flush()
        text: str = stream.buffer.getvalue().decode("ascii")  # type: ignore[attr-defined]
        return text
    return stream.getvalue()


def test_as_path_line_follows_the_hops_when_asns_are_known() -> None:
    trace = traced(64500, 64500, None, 64501, 64502, 64502)
    text = finished_text(trace, io.StringIO())
    assert text == "AS path: AS64500 → AS64501 → AS64502\n"


def test_no_as_path_line_without_asns() -> None:
    assert finished_text(traced(None, None), io.StringIO()) == ""


def test_as_path_on_an_ascii_stream_uses_an_ascii_arrow() -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert finished_text(traced(64500, 64501), stream) == "AS path: AS64500 -> AS64501\n"
