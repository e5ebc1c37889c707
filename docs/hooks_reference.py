"""Generate the hook reference, ``docs/hooks.md``, from ``tracekit/hookspecs.py``.

``docs/hooks.md`` holds the reference between the lines ``<!-- hook-reference -->`` and
``<!-- /hook-reference -->``: the API overview and ``HOOKSPEC_VERSION``, the call order (both
from the module docstring), the types named in hook signatures, and one section per hook in
source order: its signature, its pluggy options (firstresult, historic) and its docstring.

- ``python docs/hooks_reference.py`` writes that part of ``docs/hooks.md`` anew (after a
  change to ``tracekit/hookspecs.py``); ``--check`` only says whether it is up to date. A test
  (``tests/test_docs.py``) fails while it is not, so the file in the repository is complete.
- As an mkdocs hook (``mkdocs.yml`` lists this file under ``hooks:``) it renders the part anew
  into the page being built, so the site never drifts from the code either.

The build fails (it does not warn and go on) if the markers or the call order are missing, or
if ``tracekit.hookspecs`` cannot be imported.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

try:
    from mkdocs.exceptions import PluginError
except ImportError:  # run as a script, where mkdocs is not installed

    class PluginError(Exception):  # type: ignore[no-redef]
        """A reference that cannot be generated."""


MARKER = "<!-- hook-reference -->"
END_MARKER = "<!-- /hook-reference -->"
PAGE = "hooks.md"
ROOT = Path(__file__).resolve().parent.parent
MODULE = "tracekit.hookspecs"
CALL_ORDER_INTRO = "in this order"

_ROLE = re.compile(r":(?:py:)?(class|func|meth|data|mod|attr|exc|obj):`~?([^`]+)`")


def on_config(config: Any) -> Any:
    # Document the checkout mkdocs.yml sits in, even if another tracekit is installed.
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    return regenerated(markdown)


def regenerated(markdown: str) -> str:
    """``markdown`` (the text of hooks.md) with the reference between its markers anew."""
    start, end = markdown.find(MARKER), markdown.find(END_MARKER)
    if start < 0 or end < start:
        raise PluginError(f"{PAGE}: the marker lines {MARKER} and {END_MARKER} are missing")
    try:
        module = importlib.import_module(MODULE)
    except Exception as exc:
        raise PluginError(f"cannot import {MODULE} to document it: {exc}") from exc
    before, after = markdown[: start + len(MARKER)], markdown[end:]
    return f"{before}\n\n{render(module).strip()}\n\n{after}"


def main(argv: list[str]) -> int:
    """Write the reference into docs/hooks.md, or with ``--check`` say if it is stale."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    page = ROOT / "docs" / PAGE
    text = page.read_text(encoding="utf-8")
    fresh = regenerated(text)
    if "--check" in argv:
        if fresh != text:
            print(f"{page} is out of date: run python docs/hooks_reference.py", file=sys.stderr)
            return 1
        return 0
    page.write_text(fresh, encoding="utf-8")
    return 0


# -- rendering --------------------------------------------------------------------------------


def render(module: ModuleType) -> str:
    overview, call_order = _split_module_doc(inspect.getdoc(module) or "")
    hooks = _hookspecs(module)
    parts = [
        "## Overview",
        "",
        overview,
        "",
        f"`HOOKSPEC_VERSION = {module.HOOKSPEC_VERSION}`",
        "",
        "## Call order",
        "",
        call_order,
        "",
        "## Types used in signatures",
        "",
        _aliases(module, hooks),
        "## Hooks",
        "",
        "| Hook | firstresult | historic |",
        "| --- | --- | --- |",
    ]
    for name, _function, opts in hooks:
        parts.append(
            f"| [`{name}`](#{name}) | {_yes(opts.get('firstresult'))} "
            f"| {_yes(opts.get('historic'))} |"
        )
    parts.append("")
    for name, function, opts in hooks:
        parts += [
            f"### {name}",
            "",
            "```python",
            f"@hookimpl\ndef {name}{_signature(function)}:\n    ...",
            "```",
            "",
            f"*firstresult:* {_yes(opts.get('firstresult'))} · "
            f"*historic:* {_yes(opts.get('historic'))}"
            + (f" · *warns on use:* {opts['warn_on_impl']}" if opts.get("warn_on_impl") else ""),
            "",
            _rest_to_markdown(inspect.getdoc(function) or "(undocumented)"),
            "",
        ]
    return "\n".join(parts)


def _yes(flag: object) -> str:
    return "yes" if flag else "no"


def _hookspecs(module: ModuleType) -> list[tuple[str, Any, dict[str, Any]]]:
    """``(name, function, options)`` of every hookspec, in source order."""
    attribute = f"{module.hookspec.project_name}_spec"
    found = [
        (name, value, getattr(value, attribute))
        for name, value in vars(module).items()
        if inspect.isfunction(value) and hasattr(value, attribute)
    ]
    if not found:
        raise PluginError(f"{module.__name__} declares no hooks")
    return sorted(found, key=lambda item: inspect.getsourcelines(item[1])[1])


def _annotation(annotation: Any) -> str:
    if isinstance(annotation, str):  # ``from __future__ import annotations``
        return annotation
    return inspect.formatannotation(annotation)


def _signature(function: Any) -> str:
    signature = inspect.signature(function)
    params = []
    for p in signature.parameters.values():
        text = p.name
        if p.annotation is not inspect.Parameter.empty:
            text += f": {_annotation(p.annotation)}"
        params.append(text)
    result = ""
    if signature.return_annotation is not inspect.Signature.empty:
        result = f" -> {_annotation(signature.return_annotation)}"
    return f"({', '.join(params)}){result}"


def _aliases(module: ModuleType, hooks: list[tuple[str, Any, dict[str, Any]]]) -> str:
    """Module-level type aliases used in hook signatures, as written, with their ``#:``."""
    used = set()
    for _name, function, _opts in hooks:
        for p in inspect.signature(function).parameters.values():
            used.update(re.findall(r"\w+", _annotation(p.annotation)))
    source = inspect.getsource(module)
    lines = source.splitlines()
    out = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if not (isinstance(target, ast.Name) and target.id in used):
            continue
        comment = []
        line = node.lineno - 2
        while line >= 0 and lines[line].lstrip().startswith("#:"):
            comment.insert(0, lines[line].lstrip()[2:].strip())
            line -= 1
        # Forward references ("ProbeContext") are quoted in the source only so that the
        # module imports nothing heavy at run time; the reader wants the type.
        code = re.sub(r'"(\w+)"', r"\1", ast.get_source_segment(source, node) or "")
        out += ["```python", code, "```", "", _rest_to_markdown(" ".join(comment)), ""]
    out.append(
        "Model types (`Trace`, `Hop`, `ProbeResult`) are in `tracekit.model`; `ProbeContext` "
        "and `ProbeMethod` in `tracekit.probes`; `Output` and `OutputTarget` in "
        "`tracekit.outputs`."
    )
    out.append("")
    return "\n".join(out)


def _split_module_doc(doc: str) -> tuple[str, str]:
    """The module docstring as Markdown without its title line, and the call order (the
    sentence that introduces it, then the block)."""
    lines = doc.splitlines()[1:]  # the first line is the title of the module
    overview: list[str] = []
    call_order: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::"):
            block, i = _literal_block(lines, i + 1)
            intro = line.rstrip()[:-1]  # "...::" reads as "...:"
            if CALL_ORDER_INTRO in line and call_order is None:
                # the whole paragraph that introduces the block moves with it
                while overview and overview[-1].strip():
                    intro = overview.pop().strip() + " " + intro
                call_order = f"{_rest_to_markdown(intro)}\n\n```text\n{block}\n```"
                continue
            overview += [_rest_to_markdown(intro), "", "```python", block, "```", ""]
            continue
        overview.append(_rest_to_markdown(line))
        i += 1
    if call_order is None:
        raise PluginError("the call order ('... in this order::') is missing from hookspecs.py")
    return "\n".join(overview).strip(), call_order


def _literal_block(lines: list[str], start: int) -> tuple[str, int]:
    """The indented block that follows a ``::`` line, dedented, and the index after it."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    block: list[str] = []
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
        block.append(lines[i])
        i += 1
    while block and not block[-1].strip():
        block.pop()
    return textwrap.dedent("\n".join(block)), i


def _rest_to_markdown(text: str) -> str:
    """The little reStructuredText the docstrings use: ``code`` and :role:`target`."""

    def role(match: re.Match[str]) -> str:
        kind, target = match.groups()
        short = target.rsplit(".", 1)[-1]
        if kind == "func" and short.startswith("tracekit_"):
            return f"[`{short}`](#{short})"  # a hook on this page
        if match.group(0).split("`")[1].startswith("~"):
            return f"`{short}`"
        return f"`{target}`"

    text = _ROLE.sub(role, text)
    return re.sub(r"``(.+?)``", r"`\1`", text)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
