"""pytest fixtures for tests that need a real routed network (loaded automatically by pytest
once tracekit is installed).

``tracekit_lab``
    A chain of three routers (``r2`` silent) between a client and a server, built once per
    test session and shared.
``tracekit_geodb``
    ``(city_path, asn_path)``: small GeoIP databases placing the shared lab in real cities.
``tracekit_lab_factory``
    ``tracekit_lab_factory(routers=..., silent=..., ratelimit=...)`` builds a lab of your own
    for one test; it is removed after the test, whether the test passed or not.

Both need root. Outside CI a test using them is skipped when not root; in CI (``CI`` set)
it fails instead, so a missing privilege can never pass for a green run. :func:`require`
does the same for a test's own requirements (a tool, a service).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tracekit.testing.netlab import Lab


def require(condition: bool, message: str) -> None:
    """Skip the test without ``condition`` (root, a tool...), but fail it in CI (``CI`` set),
    where every test must run: a missing requirement never passes for a green run."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{message}, and CI must run these tests", pytrace=False)
    pytest.skip(message)


def _require_root() -> None:
    require(os.geteuid() == 0, "the namespace network needs root")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "netns: uses a real network of Linux namespaces")


@pytest.fixture(scope="session")
def tracekit_lab() -> Iterator[Lab]:
    """A shared chain: client - r1 - r2 (silent) - r3 - server, without ICMP rate limits."""
    _require_root()
    with Lab(routers=3, silent=[2], ratelimit=0) as lab:
        yield lab


@pytest.fixture(scope="session")
def tracekit_geodb(
    tracekit_lab: Lab, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """City and ASN databases placing ``tracekit_lab``'s addresses in real cities
    (:data:`tracekit.testing.geodb.PLACES`); needs ``mmdb-writer``."""
    from tracekit.testing.geodb import write_databases

    return write_databases(tracekit_lab, tmp_path_factory.mktemp("geodb"))


@pytest.fixture
def tracekit_lab_factory() -> Iterator[Callable[..., Lab]]:
    """Build labs for one test: ``tracekit_lab_factory(routers=2, silent=[1])``."""
    _require_root()
    labs: list[Lab] = []

    def build(**options: Any) -> Lab:
        lab = Lab(**options)
        labs.append(lab)
        return lab.build()

    yield build
    for lab in labs:
        lab.close()
