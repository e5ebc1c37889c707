"""Per-router pacing: keep each router's ICMP errors within what it is willing to send.

Routers limit the ICMP errors they send to one destination (Linux: a burst of 6, then one a
second; Cisco IOS: one per 500 ms). A continuous run at the default interval sends each
router one probe a second, within those budgets. Faster runs would drain them, so once a
router is seen withholding answers its probes are spaced :attr:`Pacer.spacing` apart; a round
skips that router's TTL until the spacing has passed. Pacing is per router address, learnt
from the answers, not per TTL: with load balancing one TTL can be several routers.
"""

from __future__ import annotations

import math

#: Seconds between two probes to a router that withholds answers: Linux's default budget.
SPACING = 1.0
#: Timer jitter, in seconds, allowed for when telling a probe was within a router's budget.
_JITTER = 0.005


class Pacer:
    """Remembers which router answers each (TTL, flow), and spaces the probes of routers
    that withhold answers."""

    def __init__(self, spacing: float = SPACING) -> None:
        self.spacing = spacing
        self._router: dict[tuple[int, int], str] = {}
        self._last: dict[str, float] = {}
        self._answered: dict[str, float] = {}
        #: Routers seen withholding answers.
        self.paced: set[str] = set()

    def learn(self, ttl: int, flow: int, address: str, sent: float) -> None:
        """``address`` answered a probe sent at ``sent`` with ``ttl`` on ``flow``."""
        self._router[(ttl, flow)] = address
        answered = self._answered.get(address)
        if answered is None or sent > answered:
            self._answered[address] = sent

    def router(self, ttl: int, flow: int) -> str | None:
        """The router expected to answer at (``ttl``, ``flow``), if one has."""
        return self._router.get((ttl, flow))

    def allowed(self, ttl: int, flow: int, now: float) -> bool:
        """Whether a probe at (``ttl``, ``flow``) may go now."""
        router = self._router.get((ttl, flow))
        if router is None or router not in self.paced:
            return True
        last = self._last.get(router)
        return last is None or now - last >= self.spacing - _JITTER

    def sent(self, ttl: int, flow: int, now: float) -> bool:
        """A probe went to (``ttl``, ``flow``) at ``now``. True if it was within the
        router's budget: a full :attr:`spacing` after a probe the router answered. A token
        bucket like Linux's has a token again by then, so a rate limit cannot explain its
        silence; before the router's first answer that cannot be told (False)."""
        router = self._router.get((ttl, flow))
        if router is None:
            return False
        self._last[router] = now
        answered = self._answered.get(router)
        return answered is not None and now - answered >= self.spacing - _JITTER

    def withheld(self, ttl: int, flow: int) -> None:
        """The router at (``ttl``, ``flow``) withheld an answer that later hops gave."""
        router = self._router.get((ttl, flow))
        if router is not None:
            self.paced.add(router)


#: Probes per second when several targets are traced and ``--rate`` is not given: a list of
#: targets is a long stream of probes, into networks that did not ask for it (scamper's
#: default is 20, yarrp's 10; 100 traces a few hundred targets in a minute or so). One
#: target has no cap, as traceroute has none: its window (``-N``) bounds it.
BULK_RATE = 100.0
#: A whole token, give or take the rounding of refills (else a wake-up at the very moment
#: a token is due could find it a hair short, and wait again for nothing).
_ONE = 1.0 - 1e-9
#: The longest burst a :class:`Rate` allows, in seconds of its rate (at least one probe).
BURST = 0.01


class Rate:
    """At most ``pps`` probes a second, whichever trace sends them (``--rate``): a token
    bucket, shared by every engine of a run, that holds at most :data:`BURST` seconds'
    worth of probes (at least one), so probes go out evenly spread."""

    def __init__(self, pps: float, burst: float = BURST) -> None:
        if pps <= 0:
            raise ValueError("the rate must be positive")
        self.pps = pps
        self.capacity = max(1.0, pps * burst)
        self._tokens = self.capacity
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        if self._at is not None:
            self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._at) * self.pps)
        self._at = now

    def take(self, now: float) -> bool:
        """Spend one probe's token if there is one."""
        self._refill(now)
        if self._tokens < _ONE:
            return False
        self._tokens = max(0.0, self._tokens - 1.0)
        return True

    def ready_at(self, now: float) -> float:
        """When the next probe may go: ``now`` exactly when :meth:`take` would give a token
        now, else later. (A token a hair short is due less than a clock tick ahead, which
        rounds to ``now`` on an epoch clock: a caller serving probes while ``ready_at(now) <=
        now`` would then spin forever.)"""
        self._refill(now)
        if self._tokens >= _ONE:
            return now
        return max(now + (1.0 - self._tokens) / self.pps, math.nextafter(now, math.inf))
