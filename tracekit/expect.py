"""``--expect`` rules: checks on a finished trace, for CI jobs (see ``docs/ci.md``).

Pure logic: rules are parsed before anything is sent (a rule that does not parse is bad
input), and judged on the final :class:`~tracekit.model.Trace` (its hops, their hosts'
annotations and statistics) once the trace is over. The grammar::

    rule  = "reached"                 the destination answered
          | "hops<=" N                it is at most N hops away (N: 1 to 255)
          | "rtt<=" NUMBER "ms"       the median round trip of its answers
          | "loss<=" NUMBER "%"       its forwarding loss (over the rounds of -c)
          | "via=" WHERE              some hop's responder is WHERE
          | "not-via=" WHERE          no hop's responder is WHERE
          | "same-path"               the responders of --baseline FILE.json, hop by hop
    WHERE = ADDRESS | PREFIX | "AS" NUMBER     (10.0.3.2, 10.0.0.0/8, 2001:db8::/32, AS64500)

Keywords and units are case-insensitive; spaces around ``<=`` and ``=`` are allowed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracekit.errors import BadInput
from tracekit.model import Expectation, Hop, Host, Trace
from tracekit.stats import SAMPLE, fold

#: What ``--expect`` accepts, for messages and ``--help``.
GRAMMAR = "reached, hops<=N, rtt<=Nms, loss<=P%, via=X, not-via=X or same-path"

_NUMBER = r"(\d+(?:\.\d+)?)"
_PATTERNS = {
    "reached": re.compile(r"reached", re.I),
    "hops": re.compile(r"hops\s*<=\s*(\S*)", re.I),
    "rtt": re.compile(rf"rtt\s*<=\s*{_NUMBER}\s*ms", re.I),
    "loss": re.compile(rf"loss\s*<=\s*{_NUMBER}\s*%", re.I),
    "via": re.compile(r"via\s*=\s*(\S+)", re.I),
    "not-via": re.compile(r"not-via\s*=\s*(\S+)", re.I),
    "same-path": re.compile(r"same-path", re.I),
}
_AS = re.compile(r"AS(\d+)", re.I)
#: How each kind of rule is written, for the message about one that does not parse.
_FORMS = {
    "reached": "reached",
    "hops": "hops<=N",
    "rtt": "rtt<=Nms (milliseconds, e.g. rtt<=50ms)",
    "loss": "loss<=P% (a percentage, e.g. loss<=1%)",
    "via": "via=X (an address, a prefix such as 10.0.0.0/8, or an AS such as AS64500)",
    "not-via": "not-via=X (an address, a prefix such as 10.0.0.0/8, or an AS such as AS64500)",
    "same-path": "same-path",
}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Where:
    """What ``via=`` and ``not-via=`` look for: an address or prefix, or an AS."""

    text: str
    network: Network | None = None
    asn: int | None = None

    def matches(self, host: Host) -> bool:
        if self.asn is not None:
            return host_asn(host) == self.asn
        assert self.network is not None
        try:
            return ipaddress.ip_address(host.address) in self.network
        except ValueError:
            return False


@dataclass(frozen=True)
class Rule:
    """One parsed ``--expect`` rule."""

    #: The rule as the user wrote it (stripped), shown in every verdict.
    text: str
    #: ``reached``, ``hops``, ``rtt``, ``loss``, ``via``, ``not-via`` or ``same-path``.
    kind: str
    limit: float | None = None
    where: Where | None = None


@dataclass(frozen=True)
class Baseline:
    """The responders of a previous trace (``--baseline FILE.json``), by TTL."""

    path: str
    hops: dict[int, frozenset[str]] = field(default_factory=dict)
    reached: bool = False
    #: The TTL at which the destination answered, if it did.
    destination: int | None = None


def parse(text: str) -> Rule:
    """One rule from its text; :class:`ValueError` with a one-line reason if it is none."""
    rule = text.strip()
    for kind, pattern in _PATTERNS.items():
        m = pattern.fullmatch(rule)
        if m is None:
            continue
        if kind == "hops":
            if not m.group(1).isdigit() or not 1 <= int(m.group(1)) <= 255:
                raise ValueError(f"{rule!r}: N in hops<=N is a whole number of hops, 1 to 255")
            return Rule(rule, kind, float(m.group(1)))
        if kind == "loss":
            if float(m.group(1)) > 100:
                raise ValueError(f"{rule!r}: P in loss<=P% is a percentage, 0 to 100")
            return Rule(rule, kind, float(m.group(1)))
        if kind == "rtt":
            return Rule(rule, kind, float(m.group(1)))
        if kind in ("via", "not-via"):
            return Rule(rule, kind, where=_where(rule, m.group(1)))
        return Rule(rule, kind)
    keyword = re.match(r"[a-z-]*", rule.lower())
    form = _FORMS.get(keyword.group(0) if keyword else "")
    if form is not None:
        raise ValueError(f"{rule!r} is not a rule: write {form}")
    raise ValueError(f"{rule!r} is not a rule: use {GRAMMAR}")


def _where(rule: str, text: str) -> Where:
    m = _AS.fullmatch(text)
    if m is not None:
        number = int(m.group(1))
        if number > 4294967295:
            raise ValueError(f"{rule!r}: AS numbers go up to 4294967295")
        return Where(text, asn=number)
    try:
        return Where(text, network=ipaddress.ip_network(text))
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"{rule!r}: {text!r} is no address, prefix (10.0.0.0/8) or AS (AS64500)"
        ) from None
    raise ValueError(f"{rule!r}: {text} has host bits set; the prefix is {loose}")


def prepare(rules: list[Rule], baseline: str | None) -> Baseline | None:
    """Check that ``same-path`` and ``--baseline`` come together, and read the baseline.
    Called before anything is sent; raises :class:`BadInput`."""
    wants = any(r.kind == "same-path" for r in rules)
    if wants and baseline is None:
        raise BadInput("--expect same-path needs --baseline FILE.json (a previous JSON report)")
    if baseline is None:
        return None
    if not wants:
        raise BadInput("--baseline is only used by --expect same-path")
    return load_baseline(baseline)


def load_baseline(path: str) -> Baseline:
    """The hops of a tracekit JSON report (``--format json``, ``--out FILE.json``), or of
    the ``finish`` line of JSON Lines."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read the baseline {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"the baseline {path} is not a tracekit JSON report") from None
    report: Any
    try:
        report = json.loads(text)
    except ValueError:
        report = None
        lines = text.strip().splitlines()
        try:
            last = json.loads(lines[-1]) if lines else None
        except ValueError:
            last = None
        if isinstance(last, dict) and last.get("type") == "finish":
            report = last.get("report")
    try:
        hops = {
            int(hop["ttl"]): frozenset(str(h["address"]) for h in hop["hosts"])
            for hop in report["hops"]
        }
        reached = report["reached"] is True
        address = report["address"]
    except (TypeError, KeyError, ValueError):
        raise BadInput(f"the baseline {path} is not a tracekit JSON report") from None
    destination = None
    if reached:
        destination = min((t for t, hosts in hops.items() if address in hosts), default=None)
        if destination is None and hops:
            destination = max(hops)
    return Baseline(path, hops, reached, destination)


# -- judging ----------------------------------------------------------------------------------


def host_asn(host: Host) -> int | None:
    """The AS number the ASN enrichment gave ``host``, if any."""
    return host.asn.number if host.asn is not None else None


def destination(trace: Trace) -> Hop | None:
    """The hop at which the destination answered; ``None`` when it was not reached."""
    if not trace.reached or not trace.hops:
        return None
    return next((h for h in trace.hops if trace.address in h.hosts), trace.hops[-1])


def not_reached(trace: Trace) -> str:
    """Why there is no destination hop, in words."""
    if trace.end == "unreachable" and trace.hops:
        return f"not reached: unreachable at hop {trace.hops[-1].ttl}"
    if trace.end == "interrupted":
        return "not reached before the interruption"
    if trace.end == "max-ttl":
        return f"not reached within {trace.max_ttl} hops"
    return "not reached"


def _ms(value: float) -> str:
    return f"{value:.3f} ms"


def _path(trace: Trace) -> str:
    """The responders hop by hop, ``*`` for a silent hop: ``10.0.1.2 * 10.0.3.2``."""
    return " ".join("/".join(h.hosts) if h.hosts else "*" for h in trace.hops) or "no hops"


def evaluate(
    rules: list[Rule], trace: Trace, baseline: Baseline | None = None
) -> list[Expectation]:
    """The verdict on every rule, in order."""
    return [Expectation(r.text, *_judge(r, trace, baseline)) for r in rules]


def _judge(rule: Rule, trace: Trace, baseline: Baseline | None) -> tuple[bool, str]:
    dest = destination(trace)
    if rule.kind == "reached":
        return (True, f"reached at hop {dest.ttl}") if dest else (False, not_reached(trace))
    if rule.kind in ("via", "not-via"):
        assert rule.where is not None
        return _via(rule.where, trace, rule.kind == "via")
    if rule.kind == "same-path":
        assert baseline is not None
        return _same_path(trace, baseline)
    if dest is None:
        return False, not_reached(trace)
    assert rule.limit is not None
    if rule.kind == "hops":
        return dest.ttl <= rule.limit, f"{dest.ttl} hops"
    if rule.kind == "rtt":
        host = dest.hosts.get(trace.address or "") or next(iter(dest.hosts.values()), None)
        stats = host.stats if host is not None else None
        median = stats.median_ms if stats is not None else None
        if stats is None or median is None:
            return False, "no round trip from the destination"
        of = f"the latest {SAMPLE}" if stats.received > SAMPLE else str(stats.received)
        answers = "answer" if stats.received == 1 else "answers"
        return median <= rule.limit, f"median {_ms(median)} of {of} {answers}"
    # loss
    stats = dest.stats or fold(dest.probes)
    loss = stats.loss_pct
    if loss is None:
        return False, "no answer from the destination"
    seen = f"loss {loss:.1f}% ({stats.lost} of {stats.sent} probes lost)"
    return loss <= rule.limit, seen


def _via(where: Where, trace: Trace, wanted: bool) -> tuple[bool, str]:
    if where.asn is not None and not any(
        host_asn(h) is not None for hop in trace.hops for h in hop.hosts.values()
    ):
        return False, "no AS numbers known: an ASN database is needed (--asn-db)"
    found = [
        (hop.ttl, host) for hop in trace.hops for host in hop.hosts.values() if where.matches(host)
    ]
    silent = [hop.ttl for hop in trace.hops if not hop.hosts]
    if found:
        ttl, host = found[0]
        seen = f"{host.address} at hop {ttl}"
        if where.asn is not None:
            seen = f"AS{where.asn} at hop {ttl} ({host.address})"
        return wanted, seen
    if where.asn is not None:
        path = " ".join(
            f"AS{n}" if (n := _hop_asn(hop)) is not None else ("*" if not hop.hosts else "?")
            for hop in trace.hops
        )
        seen = f"not on the path (AS by hop: {path or 'no hops'})"
    else:
        seen = f"not on the path ({_path(trace)})"
    if silent and not wanted:
        seen += f"; silent hops not seen: {', '.join(map(str, silent))}"
    return not wanted, seen


def _hop_asn(hop: Hop) -> int | None:
    return next((n for h in hop.hosts.values() if (n := host_asn(h)) is not None), None)


def _same_path(trace: Trace, baseline: Baseline) -> tuple[bool, str]:
    dest = destination(trace)
    if trace.reached != baseline.reached:
        if trace.reached:
            return False, f"reached now, not in the baseline {baseline.path}"
        return False, f"{not_reached(trace)}; the baseline reached hop {baseline.destination}"
    if dest is not None and dest.ttl != baseline.destination:
        return (
            False,
            f"destination at hop {dest.ttl}, at hop {baseline.destination} in the baseline",
        )
    run = {hop.ttl: frozenset(hop.hosts) for hop in trace.hops}
    ttls = sorted(set(run) | set(baseline.hops))
    if dest is not None:
        ttls = [t for t in ttls if t <= dest.ttl]
    compared = 0
    silent_now: list[int] = []
    silent_before: list[int] = []
    for ttl in ttls:
        now, before = run.get(ttl, frozenset()), baseline.hops.get(ttl, frozenset())
        if not now or not before:
            if before:
                silent_now.append(ttl)
            elif now:
                silent_before.append(ttl)
            continue
        if not now & before:
            return False, (
                f"hop {ttl}: {', '.join(sorted(now))}, in the baseline {', '.join(sorted(before))}"
            )
        compared += 1
    seen = f"same responders at {compared} of {len(ttls)} hops"
    notes = []
    if silent_now:
        notes.append(f"silent now, not compared: hop {', '.join(map(str, silent_now))}")
    if silent_before:
        notes.append(f"silent in the baseline: hop {', '.join(map(str, silent_before))}")
    return True, "; ".join([seen, *notes])


# -- reporting --------------------------------------------------------------------------------


def failure_lines(results: list[Expectation]) -> list[str]:
    """One line per failed rule, for standard error."""
    return [f"tracekit: --expect {r.rule} failed: {r.seen}" for r in results if not r.passed]


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_lines(results: list[Expectation], trace: Trace) -> list[str]:
    """GitHub Actions workflow commands (``::error title=...::message``), one per failed
    rule."""
    return [
        f"::error title={_escape_property(f'tracekit --expect {r.rule}')}::"
        + _escape_data(f"{r.rule} failed for {trace.target}: {r.seen}")
        for r in results
        if not r.passed
    ]
