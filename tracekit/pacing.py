"""Per-router pacing: keep each router's ICMP errors within what it is willing to send.

Routers limit the ICMP errors they send to one destination (Linux: a burst of 6, then one a
second; Cisco IOS: one per 500 ms). A continuous run at the default interval sends each
router one probe a second, within those budgets. Faster runs would drain them, so once a
router is seen withholding answers its probes are spaced :attr:`Pacer.spacing` apart; a round
skips that router's TTL until the spacing has passed. Pacing is per router address, learnt
from the answers, not per TTL: with load balancing one TTL can be several routers.
"""

from __future__ import annotations

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
