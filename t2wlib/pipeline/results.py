"""RESULTS.md: one generated page per figures folder, assembled from the run's own outputs.

It opens with a summary (Table 1's accuracies on unseen tasks and its differences with their
intervals, when the run made them), then the time. For every notebook of the run, in order: a link to
its executed copy, the reading it closes with (its last markdown cell), then each table (the Markdown
copy inline) and figure it wrote, found through provenance.json's `notebook` field and in the order
they were made. Outputs of the study scripts (no notebook) come last. No number is typed here:
everything is read from the folder.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..core.files import atomic_write_text
from .provenance import PROVENANCE_FILE

RESULTS_FILE = "RESULTS.md"


def closing_reading(notebook: Path) -> str:
    """The last markdown cell of a notebook (its reading of the results), or ""."""
    cells = json.loads(notebook.read_text())["cells"]
    texts = ["".join(c["source"]).strip() for c in cells if c["cell_type"] == "markdown"]
    return texts[-1] if texts else ""


def _output(figures: Path, name: str) -> str:
    path = figures / name
    if name.endswith(".png"):
        return f"![{path.stem}]({name})\n"
    if name.endswith(".md"):
        return f"**{path.stem}** ([CSV]({path.stem}.csv))\n\n{path.read_text().strip()}\n"
    if name.endswith(".csv.gz"):
        return f"**{name[:-len('.csv.gz')]}**: [gzipped CSV]({name}) (per-task rows)\n"
    if name.endswith(".csv") and not (figures / f"{path.stem}.md").exists():
        return f"**{path.stem}**: [CSV]({name}) (per-task rows)\n"
    if name.endswith(".json"):
        return f"**{path.stem}**: [JSON]({name})\n"
    return ""


def summary_section(figures: Path) -> list[str]:
    """The page's first screen: on unseen tasks, each method's accuracy (table1.csv) and the differences
    Table 1 gives intervals for (table1_differences.csv); nothing when the run has no Table 1."""
    import pandas as pd  # here: `t2w` imports this module, and starts fast

    table, differences = figures / "table1.csv", figures / "table1_differences.csv"
    if not (table.exists() and differences.exists()):
        return []
    unseen = pd.read_csv(table).query("split == 'unseen'")
    accuracy = unseen.pivot(index="method", columns="dataset", values="accuracy_mean").reindex(unseen.method.unique())
    lines = ["## Summary", "", "Unseen tasks (new combinations of seen classes), mean accuracy over tasks and seeds "
             "([table1](table1.md)):", "", "| method | " + " | ".join(accuracy.columns) + " |",
             "|---|" + "---:|" * len(accuracy.columns)]
    lines += [f"| {method} | " + " | ".join(f"{100 * v:.1f} %" for v in row) + " |" for method, row in accuracy.iterrows()]
    diff = pd.read_csv(differences).query("split == 'unseen'")
    diff = diff[~diff.method.str.endswith("-NL")]  # one text variant on the first screen; the table has both
    lines += ["", "Differences in accuracy, points, with 95 % intervals (paired, tasks and classes resampled; the "
              "class-name prompts' methods; all in [table1_differences](table1_differences.md)):", "",
              "| dataset | difference | points | 95 % interval |", "|---|---|---:|---|"]
    lines += [f"| {r.dataset} | {r.method} − {r.compared_with} | {r.difference_pt:+.1f} | [{r.low_pt:.1f}, {r.high_pt:.1f}] |"
              for r in diff.itertuples()]
    return lines + [""]


def time_section(timings: dict, entries) -> list[str]:
    """RESULTS.md's account of the run's time: each notebook's seconds, the wall time of a run in
    lanes, and the machine the outputs' provenance names (the same code takes very different times
    on different CPUs, so a time means little without it)."""
    seconds, overrides = timings["seconds"], timings.get("overrides") or {}
    lanes = timings.get("parallel", 1) > 1 and timings.get("wall_s")
    lines = ["## Time", "", "| notebook | seconds |", "|---|---:|"]
    lines += [f"| {name} | {value:,.0f} |" for name, value in seconds.items()]
    lines += [f"| sum | {sum(seconds.values()):,.0f} |"]
    if lanes:  # a whole run with lanes: its wall time is less than the sum
        lines += [f"| **wall** ({timings['parallel']} notebooks at a time after the first two, "
                  f"{timings['threads']} thread(s) each) | **{timings['wall_s']:,.0f}** |"]
    machines = sorted({(m.get("cpu", "?"), m.get("cores", "?"), m.get("torch", "?"), m.get("python", "?"))
                       for m in (e.get("machine", {}) for e in entries) if m})
    lines += ["", *(f"Machine: {cpu}, {cores} cores, torch {torch}, Python {python}."
                    for cpu, cores, torch, python in machines)]
    if overrides:
        lines += ["", f"Overrides: {overrides}."]
    return lines + [""]


def write_results(figures: str | Path, notebooks: str | Path) -> Path:
    """Write `figures/RESULTS.md` from the folder's provenance and outputs and the executed notebooks
    in `notebooks` (with their timings.json, when present)."""
    figures, notebooks = Path(figures), Path(notebooks)
    entries = json.loads((figures / PROVENANCE_FILE).read_text())
    present = {name: e for name, e in entries.items() if (figures / name).exists()}
    by_notebook: dict[str, list[str]] = {}
    for name, entry in sorted(present.items(), key=lambda kv: (kv[1].get("created", ""), kv[0])):
        by_notebook.setdefault(entry.get("notebook", ""), []).append(name)
    timings_path = notebooks / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    seconds = timings.get("seconds", {})
    profiles = sorted({e["profile"] for e in present.values()})
    commits = sorted({e["commit"] for e in present.values()})
    lines = [f"# Results: the `{'`, `'.join(profiles)}` profile", "",
             f"Generated by `t2w run` (`t2wlib/pipeline/results.py`) from this folder's tables, figures and "
             f"`{PROVENANCE_FILE}`, and the executed notebooks in `{os.path.relpath(notebooks, figures)}/`; "
             "do not edit by hand.", ""]
    lines += summary_section(figures)
    if seconds:
        lines += time_section(timings, present.values())
    if commits:
        lines += [f"Code: commit {', '.join(f'`{c[:12]}`' for c in commits)}.", ""]
    for notebook in sorted(k for k in by_notebook if k):
        executed = notebooks / f"{notebook}.ipynb"
        link = f" ([executed notebook]({os.path.relpath(executed, figures)}))" if executed.exists() else ""
        lines += [f"## {notebook}{link}", ""]
        if executed.exists() and (reading := closing_reading(executed)):
            lines += [re.sub(r"^(#+) ", r"##\1 ", reading, flags=re.M), ""]  # its headings below the notebook's
        lines += [_output(figures, name) for name in by_notebook[notebook] if _output(figures, name)]
    if by_notebook.get(""):
        lines += ["## Studies outside the pipeline (`scripts/`)", ""]
        lines += [_output(figures, name) for name in by_notebook[""] if _output(figures, name)]
    path = figures / RESULTS_FILE
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path
