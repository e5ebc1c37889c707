"""The one-shot strategy on a simulated path (pure logic: virtual clock, no sockets)."""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from dataclasses import dataclass, field

from tracekit.driver import drive
from tracekit.engine import Engine
from tracekit.events import HopCompleted, TraceFinished
from tracekit.model import Hop
from tracekit.probes import Match, Outcome, ProbeMethod, Received
from tracekit.strategies import Wait
from tracekit.strategies.classic import Classic, Schedule
from tracekit.strategies.rounds import Rounds


@dataclass
class SimulatedPath:
    """A path of ``length`` hops (the last is the destination) answering after ``delay`` s
    per hop; hops in ``silent`` never answer; ``lost`` holds (ttl, attempt) never answered."""

    length: int
    delay: float = 0.001
    silent: set[int] = field(default_factory=set)
    lost: set[tuple[int, int]] = field(default_factory=set)
    late: dict[tuple[int, int], float] = field(default_factory=dict)
    now: float = 1000.0
    sent: list[tuple[float, int, int, int]] = field(default_factory=list)
    _queue: list[tuple[float, int, bytes]] = field(default_factory=list)
    _attempts: dict[int, int] = field(default_factory=dict)
    #: Hops that limit their ICMP errors as Linux does by default: a burst of 6, then one
    #: a second (a token bucket).
    ratelimited: set[int] = field(default_factory=set)
    _buckets: dict[int, tuple[float, float]] = field(default_factory=dict)

    def _allowed(self, hop: int) -> bool:
        if hop not in self.ratelimited:
            return True
        tokens, at = self._buckets.get(hop, (6.0, self.now))
        tokens = min(6.0, tokens + self.now - at)
        allowed = tokens >= 1
        self._buckets[hop] = (tokens - 1 if allowed else tokens, self.now)
        return allowed

    def clock(self) -> float:
        return self.now

    # -- Transport --
    def send(self, data: bytes) -> float:
        ttl, seq = data[0], int.from_bytes(data[2:4], "big")
        attempt = self._attempts[ttl] = self._attempts.get(ttl, -1) + 1
        self.sent.append((self.now, ttl, attempt, seq))
        hop = min(ttl, self.length)
        if hop in self.silent or (ttl, attempt) in self.lost or not self._allowed(hop):
            return self.now
        arrival = self.now + self.late.get((ttl, attempt), 2 * self.delay * hop)
        heapq.heappush(self._queue, (arrival, len(self.sent), bytes([hop]) + data[2:4]))
        return self.now

    def receive(self, timeout: float) -> list[Received]:
        deadline = self.now + timeout
        if self._queue and self._queue[0][0] <= deadline:
            self.now = max(self.now, self._queue[0][0])
        else:
            self.now = deadline
        out = []
        while self._queue and self._queue[0][0] <= self.now:
            when, _, payload = heapq.heappop(self._queue)
            out.append(Received(payload, 4, f"10.0.{payload[0]}.2", when, 64))
        return out


class CountingMethod(ProbeMethod):
    """Encodes (ttl, flow, seq) in the 'packet'; answers name the hop that sent them."""

    def __init__(self, path: SimulatedPath) -> None:
        self.path = path

    def parameters(self) -> dict[str, object]:
        return {}

    def build(self, ttl: int, flow: int, seq: int) -> bytes:
        return bytes([ttl, flow]) + seq.to_bytes(2, "big")

    def match(self, received: Received) -> Match | None:
        hop = received.data[0]
        seq = int.from_bytes(received.data[1:3], "big")
        if hop == 0xFF:
            return None  # unrelated traffic
        outcome = Outcome.REACHED if hop == self.path.length else Outcome.HOP
        return Match(seq, "echo-reply" if outcome is Outcome.REACHED else "time-exceeded", outcome)


def run(engine: Engine, path: SimulatedPath) -> list[Hop]:
    events = list(drive(engine, path, clock=path.clock))
    assert isinstance(events[-1], TraceFinished)
    return [e.hop for e in events if isinstance(e, HopCompleted)]


def trace(path: SimulatedPath, **schedule: object) -> tuple[Classic, list[Hop]]:
    strategy = Classic(Schedule(**schedule))  # type: ignore[arg-type]
    return strategy, run(Engine(CountingMethod(path), strategy), path)


def addresses(hops: list[Hop]) -> list[str | None]:
    return [h.addresses[0] if h.addresses else None for h in hops]


def test_hops_come_in_ttl_order_and_stop_at_the_destination() -> None:
    path = SimulatedPath(length=4)
    engine, hops = trace(path)
    assert [h.ttl for h in hops] == [1, 2, 3, 4]
    assert addresses(hops) == ["10.0.1.2", "10.0.2.2", "10.0.3.2", "10.0.4.2"]
    assert engine.end_outcome is Outcome.REACHED
    assert all(len(h.probes) == 3 and not h.silent for h in hops)


def test_rtt_is_measured_from_the_send_time() -> None:
    _, hops = trace(SimulatedPath(length=3, delay=0.010))
    assert [round(p.rtt_ms or 0) for p in hops[2].probes] == [60, 60, 60]


def test_silent_hop_is_reported_silent_not_invented() -> None:
    _, hops = trace(SimulatedPath(length=4, silent={2}))
    assert addresses(hops) == ["10.0.1.2", None, "10.0.3.2", "10.0.4.2"]
    assert hops[1].silent and all(p.address is None and p.rtt_ms is None for p in hops[1].probes)


def test_silent_hop_waits_near_times_a_later_rtt_not_the_maximum() -> None:
    path = SimulatedPath(length=4, delay=0.001, silent={2})
    start = path.now
    trace(path, wait=Wait(max=5.0, here=3.0, near=10.0))
    # The farthest answer takes 8 ms; a silent probe is given up after NEAR x (rtt + 1 ms).
    assert path.now - start < 0.2


def test_without_later_answers_a_silent_hop_costs_the_maximum_wait() -> None:
    path = SimulatedPath(length=5, silent={3, 4, 5})
    start = path.now
    _, hops = trace(path, max_ttl=4, wait=Wait(max=2.0, here=3.0, near=10.0))
    assert addresses(hops) == ["10.0.1.2", "10.0.2.2", None, None]
    assert 2.0 <= path.now - start < 2.1


def test_window_limits_probes_in_flight() -> None:
    path = SimulatedPath(length=10, delay=0.005)
    strategy = Classic(Schedule(window=4))
    engine = Engine(CountingMethod(path), strategy)
    in_flight_max = 0
    original_send = path.send

    def send(data: bytes) -> float:
        nonlocal in_flight_max
        in_flight_max = max(in_flight_max, len(strategy._in_flight))
        return original_send(data)

    path.send = send  # type: ignore[method-assign]
    hops = run(engine, path)
    assert len(hops) == 10
    assert in_flight_max == 4


def test_probes_past_the_destination_are_not_reported() -> None:
    path = SimulatedPath(length=3)
    _, hops = trace(path, window=30)
    assert len(hops) == 3
    # probes beyond TTL 3 may have gone out in the first burst, but none is reported
    assert max(ttl for _, ttl, _, _ in path.sent) > 3


def test_lost_probe_is_a_star_and_the_others_still_count() -> None:
    _, hops = trace(SimulatedPath(length=3, lost={(2, 1)}))
    assert [p.address for p in hops[1].probes] == ["10.0.2.2", None, "10.0.2.2"]


def test_late_answer_fills_its_probe_while_its_hop_is_not_out_yet() -> None:
    # TTL 1 is silent, so its line waits NEAR x a later RTT (about 50 ms). Probe (2, 0)
    # answers after 30 ms, past its own wait (HERE x 4 ms), but before TTL 2 is reported.
    path = SimulatedPath(length=3, silent={1}, late={(2, 0): 0.030})
    _, hops = trace(path)
    assert hops[0].silent
    assert [p.address for p in hops[1].probes] == ["10.0.2.2"] * 3
    assert round(hops[1].probes[0].rtt_ms or 0) == 30


def test_answer_after_its_hop_was_reported_is_dropped() -> None:
    path = SimulatedPath(length=3, late={(2, 0): 0.030})
    _, hops = trace(path)
    assert [p.address for p in hops[1].probes] == [None, "10.0.2.2", "10.0.2.2"]


def test_max_ttl_ends_the_trace_unreached() -> None:
    engine, hops = trace(SimulatedPath(length=6), max_ttl=3)
    assert [h.ttl for h in hops] == [1, 2, 3]
    assert engine.end_outcome is None


def test_first_ttl_skips_near_hops() -> None:
    _, hops = trace(SimulatedPath(length=4), first_ttl=3)
    assert [h.ttl for h in hops] == [3, 4]


def test_hop_interval_spaces_probes_of_one_ttl() -> None:
    path = SimulatedPath(length=3, delay=0.001)
    trace(path, hop_interval=0.5)
    by_ttl: dict[int, list[float]] = {}
    for when, ttl, _, _ in path.sent:
        by_ttl.setdefault(ttl, []).append(when)
    for times in by_ttl.values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= 0.5 - 1e-9 for g in gaps), gaps
    # ... while probes of different TTLs still go out together
    assert path.sent[1][0] == path.sent[0][0]


def test_unrelated_packets_are_ignored() -> None:
    path = SimulatedPath(length=2)
    heapq.heappush(path._queue, (path.now + 0.0001, 0, bytes([0xFF, 0, 0])))
    _, hops = trace(path)
    assert addresses(hops) == ["10.0.1.2", "10.0.2.2"]


def test_sequence_numbers_are_forgotten_once_rested() -> None:
    """A long continuous run keeps the sequence numbers still resting, not one per probe."""
    path = SimulatedPath(3)
    engine = Engine(CountingMethod(path), Rounds(Schedule(), 200, 0.05), quarantine=1.0)
    events = list(drive(engine, path, clock=path.clock))
    assert isinstance(events[-1], TraceFinished)
    assert len(path.sent) >= 600
    # Three probes a round, twenty rounds a second, one second of rest; the first round
    # probes up to the window (16 TTLs).
    assert len(engine._resting) <= 3 * 20 + 16


def test_a_closed_engine_is_freed_when_dropped_without_the_cyclic_collector() -> None:
    """A run of many targets ends thousands of traces a second: each must be freed when it
    is dropped, not when the cyclic collector next runs a full pass (they piled up)."""
    import gc
    import weakref

    path = SimulatedPath(3)
    strategy = Classic(Schedule())
    engine = Engine(CountingMethod(path), strategy)
    run(engine, path)
    freed: list[weakref.ref[object]] = [weakref.ref(engine), weakref.ref(strategy)]
    engine.close()
    gc.disable()
    try:
        del engine, strategy
        assert [ref() for ref in freed] == [None, None]
    finally:
        gc.enable()


def test_a_rate_spreads_the_probes_and_the_trace_stays_exact() -> None:
    from tracekit.pacing import Rate

    path = SimulatedPath(length=5, silent={3})
    wakeups = 0
    strategy = Classic(Schedule(wait=Wait(0.5, 3, 10)))
    engine = Engine(CountingMethod(path), strategy, rate=Rate(50))
    original = engine.due

    def due(now: float) -> list:  # type: ignore[type-arg]
        nonlocal wakeups
        wakeups += 1
        return original(now)

    engine.due = due  # type: ignore[method-assign]
    hops = run(engine, path)
    assert addresses(hops) == ["10.0.1.2", "10.0.2.2", None, "10.0.4.2", "10.0.5.2"]
    times = [when for when, *_ in path.sent]
    assert len(times) == 15
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / 50 - 1e-9  # never two at once: 50 a second, evenly
    assert times[-1] - times[0] < 15 / 50 + 0.05  # and no slower than the rate
    assert wakeups < 4 * len(times)  # it sleeps until the next token; it does not spin


def test_one_rate_caps_the_traces_that_share_it() -> None:
    from tracekit.pacing import Rate

    rate = Rate(100)
    paths = [SimulatedPath(length=3), SimulatedPath(length=3)]
    for path in paths:
        path.now = paths[0].now  # one clock: the second trace starts where the first ended
        run(Engine(CountingMethod(path), Classic(Schedule()), rate=rate), path)
    times = sorted(when for path in paths for when, *_ in path.sent)
    assert len(times) == 18
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1 / 100 - 1e-9


def test_a_rate_allows_a_burst_of_ten_milliseconds_worth() -> None:
    from tracekit.pacing import Rate

    rate = Rate(1000)
    assert [rate.take(5.0) for _ in range(11)] == [True] * 10 + [False]
    assert rate.ready_at(5.0) == 5.001
    assert rate.take(5.001) and not rate.take(5.001)
    slow = Rate(2)
    assert slow.take(0.0) and not slow.take(0.4) and slow.take(0.5)


def test_a_token_a_hair_short_is_not_ready_now_on_an_epoch_clock() -> None:
    """``ready_at(now) <= now`` exactly when ``take(now)`` gives a token. On an epoch clock
    a token due less than a tick ahead used to look ready now, while ``take`` refused it:
    the fleet, which serves starved traces while the rate is ready, spun forever (a run of
    10,000 targets hung at 100 % CPU)."""
    from tracekit.pacing import Rate

    t0 = 1_780_000_000.0  # seconds since the epoch, as time.time(): a tick is 2.4e-7 s
    tick = math.ulp(t0)
    rate = Rate(10_000)
    while rate.take(t0):
        pass
    t1 = t0 + math.floor(0.9995 / (tick * rate.pps)) * tick  # 0.9995 of a token refilled
    short = 1.0 - (t1 - t0) * rate.pps
    assert short > 0 and t1 + short / rate.pps == t1  # due within a tick: the case
    assert not rate.take(t1)
    ready = rate.ready_at(t1)
    assert ready > t1
    assert rate.take(ready)


def test_shuffled_ttls_go_a_window_at_a_time_in_a_random_order() -> None:
    """With ``shuffle`` (several targets), each run of ``window`` probes (in TTL order) goes
    out in a random order, one run after another (each shuffled only when it is reached),
    and the trace is as exact as in TTL order."""
    orders = set()
    for _ in range(20):
        path = SimulatedPath(length=12, delay=0.001, silent={3})
        _, hops = trace(path, window=8, queries=2, shuffle=True)
        assert addresses(hops) == [None if t == 3 else f"10.0.{t}.2" for t in range(1, 13)]
        assert all(len(h.probes) == 2 for h in hops)
        ttls = [ttl for _, ttl, _, _ in path.sent]
        in_order = [t for t in range(1, 31) for _ in range(2)]
        assert sorted(t for t in ttls if t <= 12) == in_order[:24]  # each probe once
        for start in range(0, len(ttls), 8):  # the last run: some are past the end
            run_sent = Counter(ttls[start : start + 8])
            assert run_sent <= Counter(in_order[start : start + 8])
        orders.add(tuple(ttls))
    assert len(orders) > 1
