"""Continuous mode, sequence numbers and the statistics, on a simulated path (pure logic:
virtual clock, no sockets)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from test_engine import CountingMethod, SimulatedPath

from tracekit.driver import drive
from tracekit.engine import Engine
from tracekit.events import Event, HopCompleted, ProbeAnswered, RoundCompleted, TraceFinished
from tracekit.model import Hop
from tracekit.pacing import Pacer
from tracekit.stats import HopStats, RttStats, attribute, withheld
from tracekit.strategies import Wait
from tracekit.strategies.classic import Classic, Schedule
from tracekit.strategies.rounds import Rounds


class SmallSpace(CountingMethod):
    """A method that can carry only a few sequence numbers, so they are recycled soon."""

    sequence_space = 8


def run_rounds(
    path: SimulatedPath, cycles: int, interval: float = 1.0, method: CountingMethod | None = None,
    **schedule: object,
) -> tuple[Rounds, list[Event]]:  # fmt: skip
    strategy = Rounds(Schedule(**schedule), cycles, interval)  # type: ignore[arg-type]
    engine = Engine(method or CountingMethod(path), strategy)
    events = list(drive(engine, path, clock=path.clock))
    return strategy, events


def by_ttl(strategy: Rounds) -> dict[int, Hop]:
    return {h.ttl: h for h in strategy.hops()}


def test_rounds_come_in_order_and_every_hop_is_counted() -> None:
    path = SimulatedPath(length=4, silent={2})
    strategy, events = run_rounds(path, cycles=5)
    rounds = [e.round.number for e in events if isinstance(e, RoundCompleted)]
    assert rounds == [1, 2, 3, 4, 5]
    assert isinstance(events[-1], TraceFinished) and events[-1].end == "reached"
    assert not any(isinstance(e, HopCompleted) for e in events)
    hops = by_ttl(strategy)
    assert sorted(hops) == [1, 2, 3, 4]
    for ttl in (1, 3, 4):
        stats = hops[ttl].stats
        assert stats is not None
        assert (stats.sent, stats.received, stats.loss_pct) == (5, 5, 0.0)
        assert list(hops[ttl].hosts) == [f"10.0.{ttl}.2"]
    silent = hops[2].stats
    assert silent is not None and silent.received == 0 and silent.loss_pct is None


def test_rounds_start_one_interval_apart_and_the_run_ends_soon_after_the_last() -> None:
    path = SimulatedPath(length=3, delay=0.001)
    start = path.now
    run_rounds(path, cycles=4, interval=0.5)
    firsts = sorted({round(when - start, 6) for when, ttl, _, _ in path.sent if ttl == 1})
    assert firsts == [0.0, 0.5, 1.0, 1.5]
    assert path.now - start < 1.6


def test_a_silent_hop_does_not_hold_the_last_round_for_the_maximum_wait() -> None:
    path = SimulatedPath(length=4, silent={2})
    start = path.now
    run_rounds(path, cycles=2, interval=1.0, wait=Wait(max=5.0))
    assert path.now - start < 1.5


def test_probes_past_the_destination_are_not_counted() -> None:
    path = SimulatedPath(length=3)
    strategy, _ = run_rounds(path, cycles=3, window=10)
    assert sorted(by_ttl(strategy)) == [1, 2, 3]
    # later rounds probe only up to the destination
    assert max(ttl for when, ttl, _, _ in path.sent if when > path.sent[0][0]) == 3


def test_stopping_reports_what_is_complete_and_finishes_interrupted() -> None:
    path = SimulatedPath(length=3)
    strategy = Rounds(Schedule(), 0, 1.0)
    engine = Engine(CountingMethod(path), strategy)
    events: list[Event] = []
    for event in drive(engine, path, clock=path.clock):
        events.append(event)
        if isinstance(event, RoundCompleted) and event.round.number == 3:
            break
    engine.stop(path.now)
    events.extend(engine.take_events())
    assert isinstance(events[-1], TraceFinished) and events[-1].end == "interrupted"
    assert strategy.reached and engine.finished
    stats = by_ttl(strategy)[3].stats
    assert stats is not None and stats.sent == stats.received == 3


def test_sequence_numbers_are_recycled_for_a_long_run() -> None:
    path = SimulatedPath(length=3)
    strategy = Rounds(Schedule(window=3), 40, 1.0)
    engine = Engine(SmallSpace(path), strategy, quarantine=0.5)
    events = list(drive(engine, path, clock=path.clock))
    seqs = {seq for _, _, _, seq in path.sent}
    assert seqs == set(range(8)) and len(path.sent) >= 120
    hops = by_ttl(strategy)
    assert all(h.stats is not None and h.stats.received == 40 for h in hops.values())
    answered = [e for e in events if isinstance(e, ProbeAnswered)]
    assert all(e.result.address == f"10.0.{e.probe.ttl}.2" for e in answered)


class Space13(CountingMethod):
    sequence_space = 13


def late_answer_run(quarantine: float) -> tuple[Rounds, list[Event]]:
    # The first probe to TTL 2 is answered 6.1 s late, after its number was released
    # (MAX 2 s). Thirteen numbers at four probes a second come round again within about
    # 3 s; TTL 3 is silent, so its probes hold their numbers for MAX seconds.
    path = SimulatedPath(length=4, late={(2, 0): 6.1}, silent={3})
    strategy = Rounds(Schedule(wait=Wait(max=2.0), window=4), 12, 1.0)
    engine = Engine(Space13(path), strategy, quarantine=quarantine)
    return strategy, list(drive(engine, path, clock=path.clock))


def misattributed(events: list[Event]) -> list[ProbeAnswered]:
    return [
        e
        for e in events
        if isinstance(e, ProbeAnswered) and e.result.address != f"10.0.{e.probe.ttl}.2"
    ]


def test_a_late_answer_to_a_recycled_number_is_never_taken_for_a_newer_probe() -> None:
    strategy, events = late_answer_run(quarantine=6.0)
    assert misattributed(events) == []
    hops = by_ttl(strategy)
    assert hops[3].silent
    assert hops[2].stats is not None and (hops[2].stats.sent, hops[2].stats.received) == (12, 11)
    # Without the rest, a newer probe to the silent TTL 3 holds that number by then, and
    # the late answer would invent a host there.
    strategy, events = late_answer_run(quarantine=0.0)
    assert [(e.probe.ttl, e.result.address) for e in misattributed(events)] == [(3, "10.0.2.2")]


def test_an_answer_after_the_adaptive_wait_but_while_held_still_counts() -> None:
    path = SimulatedPath(length=3, late={(2, 1): 0.5})
    strategy, events = run_rounds(path, cycles=3, interval=1.0, wait=Wait(max=3.0))
    hop2 = by_ttl(strategy)[2].stats
    assert hop2 is not None and (hop2.sent, hop2.received, hop2.unanswered) == (3, 3, 0)
    assert any(isinstance(e, ProbeAnswered) and e.late for e in events)


def test_withheld_answers_are_rate_limited_not_lost() -> None:
    # Ten rounds a second; the routers allow a burst of 6 errors, then one a second.
    path = SimulatedPath(length=3, ratelimited={1, 2})
    strategy, _ = run_rounds(path, cycles=40, interval=0.1)
    hop2 = by_ttl(strategy)[2].stats
    assert hop2 is not None
    assert hop2.loss_pct == 0.0 and hop2.rate_limited == hop2.unanswered > 0
    # ... and the router got paced: fewer probes than rounds
    assert hop2.sent < 20
    assert strategy.pacer.paced == {"10.0.1.2", "10.0.2.2"}


def test_loss_that_carries_on_behind_a_hop_is_real() -> None:
    # Every third probe to TTL 2 and 3 is lost: the path loses them, not a rate limit.
    lost = {(t, a) for t in (2, 3) for a in range(20) if a % 3 == 0}
    path = SimulatedPath(length=3, lost=lost)
    strategy, _ = run_rounds(path, cycles=20, interval=1.0)
    hops = by_ttl(strategy)
    for ttl in (2, 3):
        stats = hops[ttl].stats
        assert stats is not None and stats.rate_limited == 0
        assert stats.loss_pct is not None and round(stats.loss_pct) == 35  # 7 of 20
    first = hops[1].stats
    assert first is not None and first.loss_pct == 0.0


def test_one_shot_marks_withheld_probes_where_later_hops_answered() -> None:
    path = SimulatedPath(length=4, lost={(2, 1), (2, 2)})
    strategy = Classic(Schedule())
    events = list(drive(Engine(CountingMethod(path), strategy), path, clock=path.clock))
    hops = [e.hop for e in events if isinstance(e, HopCompleted)]
    assert [p.rate_limited for p in hops[1].probes] == [False, True, True]
    assert hops[1].stats is not None and hops[1].stats.rate_limited == 2
    assert hops[1].stats.loss_pct == 0.0


def test_one_shot_loss_that_carries_on_is_not_marked() -> None:
    lost = {(t, 1) for t in (2, 3, 4)}
    path = SimulatedPath(length=4, lost=lost)
    events = list(drive(Engine(CountingMethod(path), Classic(Schedule())), path, path.clock))
    hops = [e.hop for e in events if isinstance(e, HopCompleted)]
    assert not any(p.rate_limited for h in hops for p in h.probes)


# -- the statistics ------------------------------------------------------------------------


def test_rtt_statistics_match_the_textbook() -> None:
    samples = [1.0, 3.0, 2.0, 7.0, 4.0]
    stats = RttStats()
    for s in samples:
        stats.add(s)
    assert stats.avg_ms == statistics.mean(samples)
    assert abs((stats.stdev_ms or 0) - statistics.stdev(samples)) < 1e-9
    assert (stats.best_ms, stats.worst_ms, stats.last_ms) == (1.0, 7.0, 4.0)
    jitters = [2.0, 1.0, 5.0, 3.0]
    assert stats.jitter_ms == 3.0 and stats.jmax_ms == 5.0
    assert stats.javg_ms == statistics.mean(jitters)


def test_attribution_rules() -> None:
    def hop(sent: int, unanswered: int, budgeted: tuple[int, int] = (0, 0)) -> HopStats:
        stats = HopStats(sent=sent, unanswered=unanswered)
        stats.received = sent - unanswered
        stats.sent_budgeted, stats.unanswered_budgeted = budgeted
        return stats

    # rate-limited first hop, clean path behind
    hops = [hop(10, 6), hop(10, 0)]
    attribute(hops)
    assert (hops[0].rate_limited, hops[0].lost) == (6, 0)
    # the last hop has nothing behind it: its silence is loss
    hops = [hop(10, 0), hop(10, 3)]
    attribute(hops)
    assert (hops[1].rate_limited, hops[1].lost) == (0, 3)
    # rate-limited first hop with real loss behind: its probes within budget all answered
    hops = [hop(20, 8, budgeted=(8, 0)), hop(20, 6), hop(20, 6)]
    attribute(hops)
    assert (hops[0].lost, hops[0].rate_limited) == (0, 8)
    assert hops[2].lost == 6
    assert withheld(3, 3, []) == 0


def test_pacer_spaces_a_router_only_once_it_withholds() -> None:
    pacer = Pacer(spacing=1.0)
    assert pacer.allowed(2, 0, 0.0) and not pacer.sent(2, 0, 0.0)  # unknown router
    pacer.learn(2, 0, "10.0.2.2", 0.0)
    assert pacer.allowed(2, 0, 0.1)
    pacer.withheld(2, 0)
    pacer.sent(2, 0, 0.1)
    assert not pacer.allowed(2, 0, 0.5) and pacer.allowed(2, 0, 1.1)
    assert pacer.sent(2, 0, 1.1)  # a second after an answer: within budget
    pacer.learn(2, 0, "10.0.2.2", 1.1)
    assert not pacer.sent(2, 0, 1.5)  # 0.4 s after an answer: a rate limit may withhold it


@dataclass
class StampedPath(SimulatedPath):
    """A simulated path whose answers carry their arrival times, as raw sockets' do: a
    patient driver may read them late. Counts the driver's sleeps."""

    stamped: bool = True
    sleeps: int = 0

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1


def patient_run(path: SimulatedPath, cycles: int, interval: float) -> tuple[Rounds, list[Event]]:
    strategy = Rounds(Schedule(), cycles, interval)
    sleep = path.sleep if isinstance(path, StampedPath) else None
    engine = Engine(CountingMethod(path), strategy)
    if sleep is None:
        return strategy, list(drive(engine, path, clock=path.clock))
    return strategy, list(drive(engine, path, clock=path.clock, sleep=sleep))


def test_a_patient_driver_wakes_once_a_round_and_counts_the_same() -> None:
    eager, _ = patient_run(SimulatedPath(length=4, silent={2}), 20, 0.05)
    path = StampedPath(length=4, silent={2})
    patient, events = patient_run(path, 20, 0.05)
    # one sleep a round, and a few to give up the last round's silent probe
    assert path.sleeps <= 20 + 3
    assert [e.round.number for e in events if isinstance(e, RoundCompleted)] == list(range(1, 21))
    for a, b in zip(eager.hops(), patient.hops(), strict=True):
        assert a.stats is not None and b.stats is not None
        assert (a.stats.sent, a.stats.received, a.stats.lost) == (
            b.stats.sent, b.stats.received, b.stats.lost,
        )  # fmt: skip
        assert a.stats.avg_ms == b.stats.avg_ms  # round trips from the arrival times
    assert by_ttl(patient)[4].stats.received == 20  # type: ignore[union-attr]


def test_an_answer_read_late_is_an_answer_not_a_withheld_one() -> None:
    # TTL 2's fourth answer comes 30 ms after it was sent: past its deadline (HERE x the
    # hop's 4 ms round trip), before the next round (50 ms), when the driver next wakes.
    # It is counted as an answer; giving the probe up first would have taken the hop for
    # one that withholds answers and paced it.
    assert Wait().timeout(0.004, None) < 0.030
    for path in (
        SimulatedPath(length=4, late={(2, 3): 0.030}),
        StampedPath(length=4, late={(2, 3): 0.030}),
    ):
        strategy, events = patient_run(path, 10, 0.05)
        assert not strategy.pacer.paced
        stats = by_ttl(strategy)[2].stats
        assert stats is not None and (stats.sent, stats.received, stats.lost) == (10, 10, 0)
        assert not any(e.late for e in events if isinstance(e, ProbeAnswered))
