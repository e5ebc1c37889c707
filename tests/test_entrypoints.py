"""tracekit's entry-point reader gives importlib.metadata's answer, without its import cost."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from tracekit.entrypoints import distribution, entry_points


def listing(found: object) -> list[tuple[str, str, str | None]]:
    return sorted((ep.name, ep.value, ep.dist and ep.dist.name) for ep in found)  # type: ignore[attr-defined]


@pytest.mark.parametrize("group", ["tracekit", "console_scripts", "pytest11"])
def test_the_installed_entry_points_are_those_importlib_metadata_finds(group: str) -> None:
    assert listing(entry_points(group)) == listing(importlib.metadata.entry_points(group=group))


def install(site: Path, directory: str, name: str, entries: str, version: str = "1.0") -> None:
    info = site / directory
    info.mkdir(parents=True)
    header = "METADATA" if directory.endswith(".dist-info") else "PKG-INFO"
    (info / header).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody\n")
    (info / "entry_points.txt").write_text(entries)


def test_dist_info_and_egg_info_are_read_and_the_first_of_a_name_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    entries = "# a comment\n[tracekit]\nshout = shout_plugin:Plugin [extra]\n\n[other]\nx = y\n"
    install(first, "Shout_Plugin-2.0.dist-info", "Shout-Plugin", entries, "2.0")
    install(second, "shout_plugin-1.0.dist-info", "shout-plugin", "[tracekit]\nold = old\n")
    install(second, "quiet.egg-info", "quiet", "[tracekit]\nquiet = quiet_mod\n")
    path = [str(first), str(second), str(tmp_path / "missing")]
    found = {ep.name: ep for ep in entry_points("tracekit", path)}
    assert sorted(found) == ["quiet", "shout"]
    shout = found["shout"]
    assert (shout.module, shout.attribute) == ("shout_plugin", "Plugin")
    assert shout.dist is not None and (shout.dist.name, shout.dist.version) == (
        "Shout-Plugin",
        "2.0",
    )
    sys.path[:0] = path
    try:
        importlib.invalidate_caches()
        expected = importlib.metadata.entry_points(group="tracekit")
    finally:
        del sys.path[: len(path)]
    theirs = {ep.name: ep.value for ep in expected if ep.name in found}
    assert theirs == {name: ep.value for name, ep in found.items()}
    quiet = distribution("QUIET", path)
    assert quiet is not None and quiet.version == "1.0"
    assert distribution("nothing-like-it", path) is None


def test_an_entry_point_loads_the_attribute_it_names() -> None:
    ep = next(ep for ep in entry_points("tracekit") if ep.name == "icmp")
    module = ep.load()
    assert module.__name__ == "tracekit.probes.icmp" and hasattr(module, "tracekit_register_probes")
