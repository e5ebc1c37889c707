"""Shared helpers for tracekit's tests (the lab fixtures come from tracekit's pytest plugin)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="session")
def trace_schema() -> dict[str, Any]:
    """The JSON Schema of the trace report, as installed with the package."""
    from importlib.resources import files

    schema: dict[str, Any] = json.loads((files("tracekit") / "trace.schema.json").read_text())
    return schema


def hop_addresses(report: dict[str, Any]) -> list[str | None]:
    """One address per hop of a JSON report (``None`` for a silent hop).

    Fails if a hop shows more than one address: the lab's chains have one path.
    """
    out: list[str | None] = []
    for hop in report["hops"]:
        addresses = {p["address"] for p in hop["probes"] if p["address"] is not None}
        assert len(addresses) <= 1, f"hop {hop['ttl']} shows several addresses: {addresses}"
        out.append(addresses.pop() if addresses else None)
    return out
