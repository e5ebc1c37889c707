"""The documentation that lives in the repository: complete, and in step with the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_hook_reference_in_the_repository_is_up_to_date() -> None:
    process = subprocess.run(
        [sys.executable, str(DOCS / "hooks_reference.py"), "--check"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    page = (DOCS / "hooks.md").read_text()
    for hook in ("tracekit_register_probes", "tracekit_configure", "tracekit_trace_finished"):
        assert f"### {hook}" in page


def test_schema_prints_the_installed_json_schema() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "tracekit", "schema"], capture_output=True, text=True
    )
    assert (process.returncode, process.stderr) == (0, "")
    installed = (files("tracekit") / "trace.schema.json").read_text()
    assert process.stdout == installed
    assert process.stdout == (DOCS / "trace.schema.json").read_text()  # the published copy
    assert json.loads(process.stdout)["$schema"].startswith("https://json-schema.org/")


def test_index_lists_each_page_once() -> None:
    links = re.findall(r"^- \[[^]]+\]\(([^)]+)\)", (DOCS / "index.md").read_text(), re.M)
    assert len(links) == len(set(links)), links
