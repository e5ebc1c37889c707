"""tracekit's docs show this package as it is: its source, and example tests that pass."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tracekit.testing.pytest_plugin import require

ROOT = Path(__file__).resolve().parents[3]  # tracekit's checkout
DOCS = ROOT / "docs"
SOURCE = "plugins/tracekit-scope/src/tracekit_scope/__init__.py"

#: ``<!-- source: PATH -->`` and the fenced block after it: the whole file PATH.
SOURCE_BLOCK = re.compile(r"^<!-- source: (\S+) -->\n```\w*\n(.*?)^```$", re.M | re.S)


def python_block_after(text: str, heading: str) -> str:
    """The first Python code block after ``heading`` in a Markdown page."""
    section = text[text.index(f"\n{heading}\n") :]
    match = re.search(r"^```python\n(.*?)^```$", section, re.M | re.S)
    assert match, f"no Python block after {heading!r}"
    return match[1]


def test_blocks_marked_as_source_in_the_docs_are_the_files() -> None:
    blocks = [
        (page.name, path, block)
        for page in sorted(DOCS.glob("*.md"))
        for path, block in SOURCE_BLOCK.findall(page.read_text())
    ]
    assert ("plugins.md", SOURCE) in {(page, path) for page, path, _ in blocks}
    for page, path, block in blocks:
        assert block == (ROOT / path).read_text(), f"{page} shows an old {path}"


@pytest.mark.netns
def test_the_example_tests_of_the_testing_page_pass(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "the namespace network needs root")
    require(importlib.util.find_spec("tracekit_dns") is not None, "tracekit-dns is not installed")
    example = python_block_after((DOCS / "testing.md").read_text(), "## An example test")
    (tmp_path / "test_example.py").write_text(example)
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert re.search(r"^5 passed", process.stdout.splitlines()[-1]), process.stdout
