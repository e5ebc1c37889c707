"""JUnit XML for CI test reporters (GitLab, Jenkins, GitHub): ``--junit FILE``, or
``--out report.xml``, or ``--format junit``. Written when the trace is over::

    <testsuites name="tracekit" tests="2" failures="1" errors="0" time="0.021">
      <testsuite name="tracekit to 10.0.4.2" tests="2" failures="1" ...>
        <testcase classname="tracekit" name="reached" time="0"/>
        <testcase classname="tracekit" name="hops&lt;=3" time="0">
          <failure type="expectation" message="hops&lt;=3 failed: 4 hops">4 hops</failure>
          <system-out>(the trace as text)</system-out>
        </testcase>
        <system-out>(the trace as text)</system-out>
      </testsuite>
    </testsuites>

One testcase per ``--expect`` rule; without any rule, one testcase ``reached`` (the exit
status 0 or 1). The trace, as the text output shows it, is the suite's ``system-out``, and
that of every failed testcase (some reporters show only a testcase's).
"""

from __future__ import annotations

import io
import socket
from typing import TYPE_CHECKING

from tracekit import hookimpl
from tracekit.outputs import Output, OutputTarget
from tracekit.sanitize import printable

if TYPE_CHECKING:
    from tracekit.hookspecs import RegisterOutput
    from tracekit.model import Expectation, Trace


def trace_text(trace: Trace, numeric: bool) -> str:
    """The trace as ``--format text`` writes it (the report, in continuous mode)."""
    from tracekit.outputs.text import TextOutput

    buffer = io.StringIO()
    text = TextOutput(OutputTarget(buffer, None, numeric))
    if not trace.continuous:
        text.start(trace)
        for hop in trace.hops:
            text.hop(trace, hop)
    text.finish(trace)
    return buffer.getvalue()


def verdicts(trace: Trace) -> list[Expectation]:
    """The rules' verdicts, or the implicit ``reached`` when no rule was given."""
    if trace.expectations is not None:
        return trace.expectations
    from tracekit.expect import destination, not_reached

    dest = destination(trace)
    seen = f"reached at hop {dest.ttl}" if dest is not None else not_reached(trace)
    from tracekit.model import Expectation  # (tracekit --help loads this module)

    return [Expectation("reached", dest is not None, seen)]


def _xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (shown as escapes)."""
    return "".join(
        ch if ch in "\t\n" or (ch >= " " and ch not in "\ufffe\uffff") else printable(ch)
        for ch in text
    )


def junit(trace: Trace, numeric: bool = False) -> str:
    """The JUnit XML document of a finished trace."""
    results = verdicts(trace)
    failures = sum(not r.passed for r in results)
    seconds = 0.0
    if trace.started and trace.finished:
        seconds = (trace.finished - trace.started).total_seconds()
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": "0"}
    import xml.etree.ElementTree as ET  # here: tracekit --help loads this module

    root = ET.Element("testsuites", {"name": "tracekit", **counts, "time": f"{seconds:.3f}"})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": _xml_text(f"tracekit to {trace.target}"),
            **counts,
            "skipped": "0",
            "time": f"{seconds:.3f}",
            "timestamp": trace.started.isoformat(timespec="seconds") if trace.started else "",
            "hostname": _xml_text(socket.gethostname()),
        },
    )
    output = _xml_text(trace_text(trace, numeric))
    for r in results:
        case = ET.SubElement(
            suite, "testcase", {"classname": "tracekit", "name": _xml_text(r.rule), "time": "0"}
        )
        if not r.passed:
            message = _xml_text(f"{r.rule} failed: {r.seen}")
            failure = ET.SubElement(case, "failure", {"type": "expectation", "message": message})
            failure.text = _xml_text(r.seen)
            ET.SubElement(case, "system-out").text = output
    ET.SubElement(suite, "system-out").text = output
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


class JUnitOutput(Output):
    """Writes the JUnit XML report when the trace is over."""

    def finish(self, trace: Trace) -> None:
        self.target.stream.write(junit(trace, self.target.numeric))
        self.target.stream.flush()


@hookimpl
def tracekit_register_outputs(register: RegisterOutput) -> None:
    register("junit", JUnitOutput, "JUnit XML: one testcase per --expect rule", [".xml"])
