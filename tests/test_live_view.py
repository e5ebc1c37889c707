"""The live view of a continuous run, in a real terminal: tmux runs tracekit in a pane of a
fixed size, and the test reads the screen as a user sees it (``tmux capture-pane``)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import pytest

from conftest import Pane
from tracekit.testing import Lab

pytestmark = pytest.mark.netns

COLUMNS = ["Host", "Loss%", "Snt", "Last", "Avg", "Best", "Wrst", "StDev", "Javg", "Lim%"]
ROW = re.compile(r"^\s*(\d+)\.\|-- (\S+)\s+(\S+)\s+(\d+)")
SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def tracekit(lab: Lab, *args: str) -> list[str]:
    return lab.command("client", [sys.executable, "-m", "tracekit", *args])


def expected_rows(lab: Lab, numeric: bool) -> list[str]:
    """The host column of each hop: its name (its address with ``-n``), ``???`` if silent."""
    names = {lab.address(node): lab.name(node) for node in lab.nodes}
    return [
        "???" if address is None else address if numeric else names[address]
        for address in lab.expected_hops()
    ]


def rows(screen: str) -> list[tuple[int, str, str, int]]:
    """``(ttl, host, loss, sent)`` of every table row on the screen."""
    out = []
    for line in SGR.sub("", screen).splitlines():
        match = ROW.match(line)
        if match:
            ttl, host, loss, sent = match.groups()
            out.append((int(ttl), host, loss, int(sent)))
    return out


def live_table(screen: str, title: str, hops: int) -> bool:
    """Whether the live view is up with the title, the header and all ``hops`` rows."""
    lines = screen.splitlines()
    return (
        any(line.startswith(title) for line in lines)
        and any(line.split() == COLUMNS for line in lines)
        and len(rows(screen)) == hops
    )


def colours(screen: str) -> list[str]:
    """The SGR parameters that set a colour (not bold, not a reset to the default colour)."""
    found = []
    for params in SGR.findall(screen):
        codes = [int(p) for p in re.split("[;:]", params) if p]
        for code in codes:
            if 30 <= code <= 38 or 40 <= code <= 48 or 90 <= code <= 97 or 100 <= code <= 107:
                found.append(params)
                break
    return found


@pytest.mark.parametrize("numeric", [False, True], ids=["names", "numeric"])
def test_live_view_follows_the_rounds_and_ctrl_c_prints_the_report(
    tracekit_lab: Lab, pane: Pane, numeric: bool
) -> None:
    server = tracekit_lab.address("server")
    expected = expected_rows(tracekit_lab, numeric)
    pane.start(tracekit(tracekit_lab, server, "-c", "0", "-i", "0.2", *(["-n"] if numeric else [])))
    title = f"tracekit to {server} ({server}), 30 hops max, icmp probes; round "

    first = pane.wait_for(lambda s: live_table(s, title, len(expected)))
    lines = first.splitlines()
    assert lines[0].startswith(title) and lines[0].endswith(" until Ctrl-C")
    assert lines[1].split() == COLUMNS
    table = rows(first)
    assert [(ttl, host) for ttl, host, _, _ in table] == list(enumerate(expected, start=1))
    for _, host, loss, _ in table:  # no loss here; a silent hop's loss cannot be told
        assert loss == ("---" if host == "???" else "0.0%")

    # Rounds go on: the count in the title and every hop's Snt grow.
    def later(screen: str) -> bool:
        now = rows(screen)
        return len(now) == len(table) and all(n[3] > t[3] for n, t in zip(now, table, strict=True))

    second = pane.wait_for(later)
    round_of = re.compile(r"; round (\d+) until Ctrl-C$")
    before = round_of.search(first.splitlines()[0])
    after = round_of.search(second.splitlines()[0])
    assert before and after and int(after[1]) > int(before[1])

    pane.tmux("send-keys", "-t", "live", "C-c")
    end = pane.wait_for(lambda s: "rc=" in s)
    shown = [line for line in end.splitlines() if line.strip()]
    # The live view is gone without a trace; the report, its end and the status remain.
    assert shown[0].startswith("Start: "), end
    assert shown[1].startswith("HOST: ") and shown[1].split()[2:] == COLUMNS[1:], end
    assert [(ttl, host) for ttl, host, _, _ in rows(end)] == list(enumerate(expected, start=1))
    assert shown[2 + len(expected) :] == ["(interrupted)", "tracekit: interrupted", "rc=130"]
    assert not any(line.startswith(title) for line in shown)


@pytest.fixture(scope="module")
def lossy_lab() -> Iterator[Lab]:
    """client - r1 - server, where the server drops every other echo request."""
    from tracekit.testing.pytest_plugin import _require_root

    _require_root()
    with Lab(routers=1) as lab:
        lab.nft(
            "server",
            "table inet lossy { chain input { type filter hook input priority 0; policy accept;"
            " icmp type echo-request numgen inc mod 2 == 0 drop; }; }",
        )
        yield lab


def test_rows_with_loss_are_red(lossy_lab: Lab, pane: Pane) -> None:
    pane.start(tracekit(lossy_lab, lossy_lab.address("server"), "-c", "0", "-i", "0.2"))
    name = lossy_lab.name("server")

    def lossy(screen: str) -> bool:
        return any(
            host == name and loss not in ("0.0%", "---") for _, host, loss, _ in rows(screen)
        )

    screen = pane.wait_for(lossy, escapes=True)
    lines = {line for line in screen.splitlines() if ".|-- " in line}
    server = next(line for line in lines if name in line)
    router = next(line for line in lines if lossy_lab.name("r1") in line)
    assert any(c.split(";")[-1] in ("31", "91") for c in colours(server)), repr(server)
    assert colours(router) == [], repr(router)  # a hop without loss keeps the default colour
    pane.tmux("send-keys", "-t", "live", "C-c")
    assert "rc=130" in pane.wait_for(lambda s: "rc=" in s)


def test_no_colour_with_no_color(lossy_lab: Lab, pane: Pane) -> None:
    command = tracekit(lossy_lab, lossy_lab.address("server"), "-c", "0", "-i", "0.2")
    pane.start(command, env={"NO_COLOR": "1"})
    name = lossy_lab.name("server")

    def lossy(screen: str) -> bool:
        return any(
            host == name and loss not in ("0.0%", "---") for _, host, loss, _ in rows(screen)
        )

    screen = pane.wait_for(lossy, escapes=True)
    assert colours(screen) == [], repr(screen)
    pane.tmux("send-keys", "-t", "live", "C-c")
    end = pane.wait_for(lambda s: "rc=" in s, escapes=True)
    assert colours(end) == [] and "rc=130" in end


def test_no_live_view_when_standard_output_is_not_a_terminal(tracekit_lab: Lab) -> None:
    server = tracekit_lab.address("server")
    process = tracekit_lab.tracekit(server, "-c", "3", "-i", "0.1")
    assert process.returncode == 0, process.stderr
    lines = process.stdout.splitlines()
    assert lines[0].startswith("Start: ") and lines[1].startswith("HOST: ")
    assert [(ttl, host) for ttl, host, _, _ in rows(process.stdout)] == list(
        enumerate(expected_rows(tracekit_lab, numeric=False), start=1)
    )
    assert all(sent == 3 for _, _, _, sent in rows(process.stdout))
    assert "\x1b" not in process.stdout and "round" not in process.stdout
    assert "\x1b" not in process.stderr
