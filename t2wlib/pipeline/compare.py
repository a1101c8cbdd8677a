"""A re-run against a reference run, table by table (`t2w compare RUN REFERENCE`).

Every table a run writes (`*.csv`, `*.csv.gz`, and the numbers of every `*.json` record) is compared with the file of
the same name in the reference folder: *identical* (every cell equal), *within* the tolerance (numbers
differ by at most atol + rtol x |reference|, everything else equal), *beyond* it (the worst cell named),
or *missing* from one side. What measures time (columns and keys ending in `_s`, `seconds`, the timings
and provenance records) is left out: it differs on every run. Figures (`*.png`) are counted, not
compared: their pixels follow the tables they draw. On the same machine and thread count a run is
identical to its reference; elsewhere floating-point sums run in another order, and trained weights
drift within the tolerance (README, "Checking a re-run").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RTOL, ATOL = 5e-3, 5e-3  # half a percent of a value, or half a point of an accuracy in [0, 1]
# Files that record how long things took or where they ran, not results.
SKIPPED_FILES = re.compile(r"(^provenance\.json$|timings|_seconds\.json$)")
TIMING_NAMES = re.compile(r"(_s$|_s_|seconds|^wall)")
STATUSES = ("identical", "within", "beyond", "missing", "extra")


@dataclass(frozen=True)
class Comparison:
    """One table: its file name, its status (one of STATUSES) and, unless identical, what differs most."""

    name: str
    status: str
    detail: str = ""


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _leaves(record, path: str = "") -> dict[str, object]:
    """A JSON record's values by path (`a.b[2].c`), timing keys left out."""
    if isinstance(record, dict):
        out = {}
        for key, value in record.items():
            if not TIMING_NAMES.search(str(key)):
                out.update(_leaves(value, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(record, list):
        out = {}
        for i, value in enumerate(record):
            out.update(_leaves(value, f"{path}[{i}]"))
        return out
    return {path: record}


def _table_cells(path: Path) -> dict[str, object]:
    """A table's cells by `column[row]` (timing columns left out), or a JSON record's leaves."""
    import pandas as pd  # here: `t2w` imports this module for its defaults, and starts fast

    if path.suffix == ".json":
        return _leaves(json.loads(path.read_text()))
    frame = pd.read_csv(path)
    frame = frame[[c for c in frame.columns if not TIMING_NAMES.search(str(c))]]
    return {f"{column}[{row}]": value for column in frame.columns for row, value in enumerate(frame[column].tolist())}


def compare_table(got: Path, ref: Path, rtol: float = RTOL, atol: float = ATOL) -> Comparison:
    """One table of a run against the reference's."""
    a, b = _table_cells(got), _table_cells(ref)
    if a.keys() != b.keys():
        only = sorted(set(a) ^ set(b))
        return Comparison(got.name, "beyond", f"other cells: {', '.join(only[:3])}{' ...' if len(only) > 3 else ''}")
    worst, worst_excess, changed = "", -1.0, 0
    for key, ref_value in b.items():
        value = a[key]
        numbers = _is_number(value) and _is_number(ref_value)
        if value == ref_value or (numbers and math.isnan(value) and math.isnan(ref_value)):
            continue
        changed += 1
        if not numbers:
            return Comparison(got.name, "beyond", f"{key}: {value!r} vs {ref_value!r}")
        if not np.isclose(value, ref_value, rtol=rtol, atol=atol):  # |a - b| <= atol + rtol |b|; NaN vs a number fails
            return Comparison(got.name, "beyond", f"{key}: {value:.6g} vs {ref_value:.6g} (tolerance "
                                                  f"{atol:g} + {rtol:g} x |reference|)")
        excess = abs(float(value) - float(ref_value))
        if excess > worst_excess:
            worst, worst_excess = f"{key}: {value:.6g} vs {ref_value:.6g}", excess
    if changed == 0:
        return Comparison(got.name, "identical")
    return Comparison(got.name, "within", f"{changed} cells differ, the most {worst}")


def _tables(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.name.endswith((".csv", ".csv.gz", ".json")) and p.is_file()
            and not SKIPPED_FILES.search(p.name)}


def compare_runs(run: str | Path, reference: str | Path, rtol: float = RTOL, atol: float = ATOL) -> list[Comparison]:
    """Every table of two figure folders, compared (`compare_table`); a table in only one is missing or extra."""
    run, reference = Path(run), Path(reference)
    for flag, folder in (("RUN", run), ("REFERENCE", reference)):
        if not folder.is_dir():
            raise ValueError(f"{flag} {folder} is not a folder of a run's figures (e.g. figures/cpu)")
    if rtol < 0 or atol < 0 or not (math.isfinite(rtol) and math.isfinite(atol)):
        raise ValueError(f"tolerances --rtol {rtol} and --atol {atol} must be finite and >= 0")
    got, ref = _tables(run), _tables(reference)
    if not got.keys() & ref.keys():
        raise ValueError(f"{run} and {reference} have no table in common; give two figure folders (e.g. figures/cpu)")
    out = [compare_table(got[name], ref[name], rtol, atol) if name in got else Comparison(name, "missing",
                                                                                           "not in the run")
           for name in sorted(ref)]
    return out + [Comparison(name, "extra", "not in the reference") for name in sorted(set(got) - set(ref))]


def figures_counted(folder: str | Path) -> int:
    return len(list(Path(folder).glob("*.png")))
