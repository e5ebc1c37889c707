"""The rules of the Multipath Detection Algorithm, without I/O or state.

- :func:`probes_needed`: the stopping rule (MDA, Augustin et al. IMC 2007);
- :func:`meshed` and :func:`uneven`: MDA-Lite's tests (Vermeulen et al. IMC 2018) on the
  links seen between two hops, which decide whether the hop-level rule may stand or full
  MDA's per-interface rule is needed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

#: Probes needed having seen 1, 2, ... 10 interfaces: the table MDA implementations
#: publish (scamper's tracelb, libparistraceroute), at 95 % and 99 %.
TABLES = {
    0.95: (6, 11, 16, 21, 27, 33, 38, 44, 51, 57),
    0.99: (8, 15, 21, 28, 36, 43, 51, 58, 66, 74),
}


def probes_needed(seen: int, confidence: float) -> int:
    """Probes to send at a hop where ``seen`` interfaces answered, to rule out one more
    with the given confidence (0.95, 0.99): the published table up to ten interfaces,
    then Diamond-Miner's closed form ``ceil(ln(eps / k) / ln((k - 1) / k))``, ``k =
    seen + 1`` (at least one interface is assumed)."""
    seen = max(seen, 1)
    table = TABLES.get(confidence)
    if table is not None and seen <= len(table):
        return table[seen - 1]
    k = seen + 1
    return math.ceil(math.log((1 - confidence) / k) / math.log((k - 1) / k))


def meshed(links: Iterable[tuple[str, str]]) -> bool:
    """Whether links ``(from, to)`` between two hops are meshed: an interface with several
    successors, and an interface with several predecessors. Such hops cannot be read from
    their interfaces alone: each interface needs successors of its own."""
    links = set(links)
    out = Counter(a for a, _ in links)
    into = Counter(b for _, b in links)
    return any(n > 1 for n in out.values()) and any(n > 1 for n in into.values())


def uneven(links: Iterable[tuple[str, str]]) -> bool:
    """Whether interfaces of the first hop have different numbers of successors: the next
    hop's interfaces are then not equally likely, as the hop-level rule assumes."""
    out = Counter(a for a, _ in set(links))
    return len(set(out.values())) > 1
