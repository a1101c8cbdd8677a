"""The pipeline runner: executes notebooks/NN_*.ipynb in order through papermill.

Each notebook gets the parameters PROFILE, ARTIFACTS, FIGURES, DATA_ROOT, OVERRIDES (profile fields
to change, from `t2w run --set key=value`) and NOTEBOOK (its own name, for provenance); its executed
copy, outputs and figures included, is written to the run folder (figures/<profile>/notebooks/ by
default). The first failing cell stops the run with an error naming the notebook and the cell.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import papermill
from papermill.exceptions import PapermillExecutionError

from .cache import atomic_write_text
from .data import check_available
from .user_data import register_user_dataset
from .profiles import get_profile, typed_overrides
from .results import write_results

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_NAME = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")


class PipelineError(RuntimeError):
    """A notebook of the pipeline failed; the message names the notebook and cell."""


def pipeline_notebooks(directory: Path = REPO / "notebooks", only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks NN_name.ipynb in order; `only` keeps those whose number or name is listed."""
    found = sorted(p for p in Path(directory).iterdir() if NOTEBOOK_NAME.match(p.name))
    if only:
        keep = [p for p in found if p.name[:2] in only or p.stem in only]
        unknown = set(only) - {p.name[:2] for p in keep} - {p.stem for p in keep}
        if unknown:
            raise ValueError(f"no notebook matches {sorted(unknown)}; available: {[p.stem for p in found]}")
        found = keep
    if not found:
        raise ValueError(f"no NN_*.ipynb notebooks in {directory}")
    return found


def _merged_timings(path: Path, profile: str, overrides: dict, timings: dict[str, float],
                    notebooks_dir: Path) -> dict[str, float]:
    """Seconds per notebook of the run folder: this run's, and those of notebooks that an earlier run
    of the same profile and overrides made there and this one did not rerun (`--only`), in order."""
    earlier = json.loads(path.read_text()) if path.exists() else {}
    same = earlier.get("profile") == profile and earlier.get("overrides") == overrides
    merged = {**(earlier.get("seconds", {}) if same else {}), **timings}
    order = [p.stem for p in pipeline_notebooks(notebooks_dir)]
    return {name: merged[name] for name in order if name in merged}


def run_pipeline(profile: str, *, notebooks_dir: Path = REPO / "notebooks", run_dir: Path | None = None,
                 artifacts: Path = REPO / "artifacts", figures: Path | None = None, data_root: str = "",
                 only: list[str] | None = None, overrides: dict | list[str] | None = None,
                 log_output: bool = True, threads: int | None = None) -> dict[str, float]:
    """Execute the pipeline for `profile` with profile `overrides` (typed against the Profile
    fields); returns seconds per notebook of this run. The executed notebooks go to `run_dir`
    (default: figures/<profile>/notebooks, beside the figures they made) with timings.json, updated
    after each notebook (a partial run, `only`, updates the entries of the notebooks it ran); once
    every notebook has run there, the figures folder's RESULTS.md is assembled."""
    overrides = typed_overrides(overrides)
    resolved = get_profile(profile, **overrides)  # fail on an unknown profile or field before starting any kernel
    user = [register_user_dataset(entry) for entry in resolved.user_data]
    check_available([d for d in resolved.datasets if d in user])  # a user's folders, checked before any kernel
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads {threads}: give a positive number of CPU threads")
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    figures = Path(figures or REPO / "figures" / profile).resolve()
    run_dir = Path(run_dir or figures / "notebooks").resolve()
    params = {"PROFILE": profile, "ARTIFACTS": str(Path(artifacts).resolve()), "FIGURES": str(figures),
              "DATA_ROOT": data_root, "OVERRIDES": json.loads(json.dumps(overrides))}
    notebooks = pipeline_notebooks(notebooks_dir, only)  # a bad --only fails before any folder is made
    run_dir.mkdir(parents=True, exist_ok=True)
    if not only:  # a whole run starts its timings afresh
        (run_dir / "timings.json").unlink(missing_ok=True)
    timings: dict[str, float] = {}
    for nb in notebooks:
        out = run_dir / nb.name
        print(f"[t2w] {nb.name} (profile {profile}) ...", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(nb), str(out), parameters={**params, "NOTEBOOK": nb.stem}, cwd=str(nb.parent),
                                       progress_bar=False, log_output=log_output, kernel_name="python3",
                                       language="python")
        except PapermillExecutionError as err:
            raise PipelineError(
                f"{nb.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
                f"{err.ename}: {err.evalue}\n  executed copy with the traceback: {out}"
            ) from None
        timings[nb.stem] = round(time.perf_counter() - start, 1)
        print(f"[t2w] {nb.name} done in {timings[nb.stem]:.1f} s", flush=True)
        # After every notebook, so that a killed run keeps the times of those it finished.
        seconds = _merged_timings(run_dir / "timings.json", profile, params["OVERRIDES"], {nb.stem: timings[nb.stem]},
                                  notebooks_dir)
        atomic_write_text(run_dir / "timings.json", json.dumps({"profile": profile, "overrides": params["OVERRIDES"],
                                                                "threads": threads, "seconds": seconds}, indent=1))
    if set(seconds) == {p.stem for p in pipeline_notebooks(notebooks_dir)}:
        write_results(figures, run_dir)
    return timings
