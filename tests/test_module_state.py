"""No module of tracekit keeps mutable state at module level: what a trace needs lives in the
trace (``trace.stash``), so many traces in one process never share it."""

from __future__ import annotations

import ast
from pathlib import Path

import tracekit

PACKAGE = Path(tracekit.__file__).parent
#: Calls that make a mutable container.
MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque"}
MUTABLE_NODES = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)


def _mutable(value: ast.expr | None) -> bool:
    if isinstance(value, MUTABLE_NODES):
        return True
    if isinstance(value, ast.Tuple):  # a, b = [], 1
        return any(_mutable(element) for element in value.elts)
    if isinstance(value, ast.Call):
        function = value.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        return name in MUTABLE_CALLS
    return False


def _names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for element in target.elts for n in _names(element)]
    return [ast.unparse(target)]  # an attribute or subscript: never a constant


def module_state(source: str) -> list[str]:
    """Module-level names bound to a mutable container, other than ALL_CAPS constants and
    dunders (``__all__``); and ``global`` statements in functions (state rebound at run time)."""
    tree = ast.parse(source)
    found = []
    for node in tree.body:
        targets: list[ast.expr]
        value: ast.expr | None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        if not _mutable(value):
            continue
        for target in targets:
            names = [n for n in _names(target) if not n.isupper() and not n.startswith("__")]
            found += [f"{name} (line {node.lineno})" for name in names]
    for walked in ast.walk(tree):
        if isinstance(walked, ast.Global):
            found += [f"global {name} (line {walked.lineno})" for name in walked.names]
    return found


def test_the_check_finds_module_state() -> None:
    source = (
        "_state: dict[str, int] = {}\n"
        "_cache = dict()\n"
        "seen = set()\n"
        "a, b = [], 1\n"
        "KNOWN = {'x': 1}\n"
        "NAMES = ('a', 'b')\n"
        "KINDS = frozenset({'a'})\n"
        "def f():\n    global counter\n    counter = 1\n"
    )
    assert module_state(source) == [
        "_state (line 1)",
        "_cache (line 2)",
        "seen (line 3)",
        "a (line 4)",
        "b (line 4)",
        "global counter (line 9)",
    ]


def test_no_module_of_tracekit_keeps_mutable_state() -> None:
    found = {
        str(path.relative_to(PACKAGE)): state
        for path in sorted(PACKAGE.rglob("*.py"))
        if (state := module_state(path.read_text(encoding="utf-8")))
    }
    assert found == {}
