"""Readings that cannot go stale: every percentage with a decimal ("79.4 %") in a notebook's "Reading"
cell, and in the README's State section, is a value, to its last digit, of a table that the text names
(`table1.md`, `fig3_trajectories.png`, ...) in the committed run (figures/cpu/); and the committed
executed notebooks carry the same readings as notebooks/. A number typed from an older run, or from a
table the reading does not name, fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from t2wlib.pipeline.runner import REPO

FIGURES = REPO / "figures" / "cpu"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PERCENT = re.compile(r"(\d+\.\d)\s?%")
CITED = re.compile(r"`([A-Za-z0-9_\-]+)(?:_<dataset>)?\.(?:md|csv|json|png)`")
# Long tables whose readings quote their means: the views a reading may quote from.
DERIVED = {
    "fig3_trajectories": lambda t: t.groupby(["panel", "step"]).accuracy.mean(),  # the curves drawn
}


def reading(path: Path) -> str:
    """A notebook's Reading cell, or the README's State section."""
    if path.suffix == ".md":
        return path.read_text().split("## State\n", 1)[1].split("\n## ", 1)[0]
    cells = [c.source for c in nbformat.read(path, as_version=4).cells
             if c.cell_type == "markdown" and c.source.startswith("## Reading")]
    assert len(cells) <= 1, f"{path.name}: more than one Reading cell"
    return cells[0] if cells else ""


def table_values(stem: str) -> np.ndarray:
    """Every number of figures/cpu/<stem>.csv (and its DERIVED view) and .json, and of the per-dataset
    files a `<name>_<dataset>` citation stands for."""
    found = []
    for csv in FIGURES.glob(f"{stem}*.csv"):
        table = pd.read_csv(csv)
        found += [pd.to_numeric(table[c], errors="coerce").dropna().to_numpy(float) for c in table.columns]
        if stem in DERIVED:
            found.append(np.asarray(DERIVED[stem](table), float))
    for path in FIGURES.glob(f"{stem}*.json"):
        found.append(np.asarray(json_numbers(json.loads(path.read_text())), float))
    return np.concatenate(found) if found else np.zeros(0)


def json_numbers(node) -> list[float]:
    if isinstance(node, dict):
        return [x for value in node.values() for x in json_numbers(value)]
    if isinstance(node, list):
        return [x for value in node for x in json_numbers(value)]
    return [float(node)] if isinstance(node, (int, float)) and not isinstance(node, bool) else []


@pytest.mark.parametrize("notebook", [*NOTEBOOKS, REPO / "README.md"], ids=[p.stem for p in NOTEBOOKS] + ["README"])
def test_every_percentage_in_a_reading_is_in_a_table_it_names(notebook):
    text = reading(notebook)
    cited = sorted(set(CITED.findall(text)))
    values = np.concatenate([table_values(stem) for stem in cited]) if cited else np.zeros(0)
    values = np.concatenate([values, 100 * values])  # fractions are quoted as percentages
    missing = [n for n in PERCENT.findall(text) if not np.any(np.abs(values - float(n)) <= 0.05 + 1e-9)]
    assert not missing, (f"{notebook.name}: {missing} are in none of the tables its reading names ({cited}); "
                         "quote the committed tables, and name the table a number comes from")


def test_a_reading_names_tables_that_exist():
    for notebook in NOTEBOOKS:
        absent = [s for s in set(CITED.findall(reading(notebook))) if not list(FIGURES.glob(f"{s}*"))]
        assert not absent, f"{notebook.name} names {absent}, which figures/cpu/ does not hold"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_committed_run_carries_the_same_reading(notebook):
    assert reading(FIGURES / "notebooks" / notebook.name) == reading(notebook)


def test_the_check_catches_a_stale_number(tmp_path):
    text = reading(REPO / "notebooks" / "07_enhancement.ipynb")
    quoted = PERCENT.findall(text)[0]
    stale = text.replace(f"{quoted} %", f"{float(quoted) + 0.3:.1f} %", 1)
    cited = sorted(set(CITED.findall(stale)))
    values = np.concatenate([table_values(s) for s in cited])
    values = np.concatenate([values, 100 * values])
    assert any(not np.any(np.abs(values - float(n)) <= 0.05 + 1e-9) for n in PERCENT.findall(stale))
