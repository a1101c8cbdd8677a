"""The library's layering: no import cycle among t2wlib's modules, and the shipped text ->
classifier path (classifier, generator loading and sampling) imports no training, zoo or data code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "t2wlib"
TRAINING = {"train", "generator_training", "zoo", "zoo_export", "data", "features", "head_training", "subtasks",
            "comparison", "ablation", "baselines", "evaluate", "runner"}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(module: str) -> set[str]:
    """The t2wlib modules `module` imports anywhere (lazy imports in functions too), except under
    `if TYPE_CHECKING:` (annotations only)."""
    tree = ast.parse((LIB / f"{module}.py").read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node)
            for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(a.name for a in node.names)
            elif node.module and node.module.startswith("t2wlib."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("t2wlib."))
    return found & {p.stem for p in LIB.glob("*.py")}


GRAPH = {p.stem: imports_of(p.stem) for p in LIB.glob("*.py") if p.stem != "__init__"}


def closure(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        for dep in GRAPH[m] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def test_the_walk_sees_the_imports_it_should():
    assert {"generator", "backbones", "head"} <= GRAPH["classifier"]  # top level
    assert "backbones" in GRAPH["generator"]  # a lazy import inside a function
    assert "zoo" not in GRAPH["generator_training"]  # only under TYPE_CHECKING


def test_no_import_cycle():
    cycles = [m for m in GRAPH if m in closure(m)]
    assert not cycles, {m: sorted(GRAPH[m]) for m in cycles}


@pytest.mark.parametrize("shipped", ["classifier", "generator"])
def test_the_shipped_path_imports_no_training_code(shipped):
    assert not closure(shipped) & TRAINING, sorted(closure(shipped) & TRAINING)
