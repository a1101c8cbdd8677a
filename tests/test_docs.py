"""Prose that names code names code that exists: every `t2wlib.module[.attribute]` and `t2wlib/path`
in the notebooks, scripts, benchmarks, docs and README resolves, so a reader never follows a name to
nothing (a module renamed or moved must take its mentions along)."""

from __future__ import annotations

import importlib
import importlib.util
import re

import pytest

from t2wlib.pipeline.runner import REPO

SOURCES = [*sorted((REPO / "notebooks").glob("*.ipynb")), *sorted((REPO / "scripts").glob("*.py")),
           *sorted((REPO / "benchmarks").glob("*.py")), *sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
DOTTED = re.compile(r"\bt2wlib(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
PATH = re.compile(r"\bt2wlib/[A-Za-z0-9_/]+(?:\.py)?")


def resolves(dotted: str) -> bool:
    """The longest importable module prefix of `dotted`, then the rest as attributes of it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            obj = importlib.import_module(name)
            for attribute in parts[cut:]:
                if not hasattr(obj, attribute):
                    return False
                obj = getattr(obj, attribute)
            return True
    return False


@pytest.mark.parametrize("source", SOURCES, ids=[p.relative_to(REPO).as_posix() for p in SOURCES])
def test_every_module_and_path_named_exists(source):
    text = source.read_text()
    missing = sorted({m for m in DOTTED.findall(text) if not resolves(m)})
    missing += sorted({p for p in PATH.findall(text) if not (REPO / p.rstrip("/")).exists()})
    assert not missing, f"{source.relative_to(REPO)} names what does not exist: {missing}"
