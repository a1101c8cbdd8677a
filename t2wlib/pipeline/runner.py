"""The pipeline runner: executes notebooks/NN_*.ipynb through papermill.

01_zoo and 02_train run first, in order: every later notebook reads what they make (features,
zoos, the first seed's generators) and writes only outputs of its own, so with `parallel` = N > 1
the later ones run N at a time, each kernel with its share of the CPU threads, longest first (by
the run folder's last timings). On 2 cores two one-thread kernels do more work than one two-thread
kernel, as most of the pipeline's tensors are too small to keep two threads busy
(benchmarks/bench_parallel.py).

Each notebook gets the parameters PROFILE, ARTIFACTS, FIGURES, DATA_ROOT, OVERRIDES (profile fields
to change, from `t2w run --set key=value`) and NOTEBOOK (its own name, for provenance); its executed
copy, outputs and figures included, is written to the run folder (figures/<profile>/notebooks/ by
default). The first failing cell stops the run with an error naming the notebook and the cell.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError

from ..core.files import WriteError, atomic_write_text, key_digest, remove_dead_temps
from ..core.locks import FolderLock
from ..core.runtime import resolve_device
from ..data.datasets import SPLITS, check_available, load_split
from ..data.user_folders import parse_user_data, register_user_dataset, user_layout
from .config import check_fits
from .overrides import typed_overrides
from .profiles import get_profile
from .results import write_results

REPO = Path(__file__).resolve().parents[2]  # t2wlib/pipeline/runner.py -> the repository
NOTEBOOK_NAME = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")
# Notebooks that run first and in order, before any other: the later ones read what they make.
FIRST = ("01", "02")


# Errors a user's input causes inside a notebook (data, files, settings): the runner reports them in
# one line, like the command line's own checks, instead of as a failed cell.
USER_ERRORS = ("DatasetNotFoundError", "ImageReadError", "CorruptArtifactError", "WriteError", "FolderBusyError",
               "IndistinctClassesError", "InseparableDataError")


# The kernel's own log at errors only: its start-up warning that a local kernel talks over TCP without
# encryption (to papermill, on this machine) is noise on the terminal of every notebook.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]

NOTEBOOK_TEMP = ".tmp.ipynb"  # the suffix of an executed copy being written (papermill wants .ipynb)


class PipelineInputError(ValueError):
    """A notebook stopped on the user's input (one of USER_ERRORS); the message says which and why."""


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


def rerun_command(profile: str, artifacts: Path, overrides: dict, notebooks: list[str]) -> str:
    """The `t2w run` command line that runs `notebooks` with these settings (its --data, --set, --artifacts)."""
    parts = ["t2w run --profile", profile, "--only", *notebooks]
    for key, value in overrides.items():
        if key == "user_data":
            parts += [f"--data {entry}" for entry in value]
        else:
            parts.append(f"--set {key}={json.dumps(list(value) if isinstance(value, tuple) else value)}")
    if artifacts.resolve() != (REPO / "artifacts").resolve():
        parts.append(f"--artifacts {artifacts}")
    return " ".join(parts)


def zoo_ready(session, dataset: str) -> bool:
    """Whether 01_zoo finished the zoo of `dataset` with the session's settings. Any zoo of the dataset
    is looked for first: finding the exact folder hashes the dataset, which may not be there yet."""
    folders = (session.artifacts / "zoo" / session.profile.name).glob(f"{dataset}-*")
    return any((z / "manifest.json").exists() for z in folders) and (session.zoo_dir(dataset) / "manifest.json").exists()


def check_prerequisites(profile: str, artifacts: Path, data_root: str, overrides: dict, numbers: list[str]) -> None:
    """A partial run (--only) reads what 01 (the zoos) and 02 (the generators) wrote with the same
    settings: each is checked before any kernel starts, and a missing one is a ValueError giving the
    command that builds it."""
    from .session import Session

    needs = [nb for nb, first in (("01", "02"), ("02", "03")) if nb not in numbers and max(numbers) >= first]
    if not needs:
        return
    build = rerun_command(profile, artifacts, overrides, sorted({*needs, *numbers}))
    session = Session(profile, artifacts, "", data_root, overrides)
    for d in session.each_dataset():
        ready = zoo_ready(session, d.name)
        if "01" in needs and not ready:
            raise ValueError(f"--only {' '.join(numbers)} needs the zoo of {d.name} that 01_zoo builds with these "
                             f"settings, and {artifacts} has none; build it first: {build}")
        if "02" in needs and not (ready and (session.generator_dir(d.zoo) / "ema.safetensors").exists()):
            raise ValueError(f"--only {' '.join(numbers)} needs the generator of {d.name} that 02_train trains with "
                             f"these settings, and {artifacts} has none; train it first: {build}")


def _merged_timings(path: Path, profile: str, overrides: dict, timings: dict[str, float],
                    notebooks_dir: Path) -> dict[str, float]:
    """Seconds per notebook of the run folder: this run's, and those of notebooks that an earlier run
    of the same profile and overrides made there and this one did not rerun (`--only`), in order."""
    earlier = json.loads(path.read_text()) if path.exists() else {}
    same = earlier.get("profile") == profile and earlier.get("overrides") == overrides
    merged = {**(earlier.get("seconds", {}) if same else {}), **timings}
    order = [p.stem for p in pipeline_notebooks(notebooks_dir)]
    return {name: merged[name] for name in order if name in merged}


def _execute(nb: Path, out: Path, parameters: dict, log_output: bool, threads: int | None) -> float:
    """Run one notebook to `out` through papermill; its seconds, or PipelineError naming the cell.
    Also the body of a worker process (`parallel` > 1), whose kernel inherits `threads`."""
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    print(f"[t2w] {nb.name} (profile {parameters['PROFILE']}) ...", flush=True)
    start = time.perf_counter()
    # papermill writes the executed copy as it goes: to a temp name, renamed when the run ends (also a
    # failed run, whose copy holds the traceback), so a full disk or a kill leaves no truncated copy.
    remove_dead_temps(out, NOTEBOOK_TEMP)
    tmp = out.with_name(f".{out.name}.{os.getpid()}{NOTEBOOK_TEMP}")
    try:
        papermill.execute_notebook(str(nb), str(tmp), parameters=parameters, cwd=str(nb.parent), progress_bar=False,
                                   log_output=log_output, kernel_name="python3", language="python",
                                   extra_arguments=KERNEL_ARGUMENTS)
    except PapermillExecutionError as err:  # re-raised as a plain error: it crosses a process boundary
        os.replace(tmp, out)
        if err.ename in USER_ERRORS:
            raise PipelineInputError(f"{err.evalue} ({nb.name}, cell {err.cell_index})") from None
        raise PipelineError(
            f"{nb.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}\n  executed copy with the traceback: {out}"
        ) from None
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise WriteError(err.errno, f"cannot write the executed notebook {out}: {err.strerror or err}") from None
    os.replace(tmp, out)
    if not log_output:  # --quiet: the warnings a user must read still reach the terminal
        for line in notebook_warnings(out):
            print(f"t2w: warning: {line} ({nb.name})", file=sys.stderr, flush=True)
    return round(time.perf_counter() - start, 1)


# Warnings raised inside a notebook that a user must see even with --quiet: data or files found bad
# and recomputed.
SURFACED_WARNINGS = ("CacheCorruptionWarning",)


def notebook_warnings(executed: Path) -> list[str]:
    """The lines of an executed notebook's stderr that carry one of SURFACED_WARNINGS, with the
    warning's message only (from the category's name on)."""
    found = []
    for cell in nbformat.read(executed, as_version=4).cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                for line in output.get("text", "").splitlines():
                    found += [line[line.index(w):] for w in SURFACED_WARNINGS if w in line]
    return found


def cpu_count() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_pipeline(profile: str, *, notebooks_dir: Path = REPO / "notebooks", run_dir: Path | None = None,
                 artifacts: Path = REPO / "artifacts", figures: Path | None = None, data_root: str = "",
                 only: list[str] | None = None, overrides: dict | list[str] | None = None,
                 log_output: bool = True, threads: int | None = None, parallel: int = 1) -> dict[str, float]:
    """Execute the pipeline for `profile` with profile `overrides` (typed against the Profile
    fields); returns seconds per notebook of this run. The executed notebooks go to `run_dir`
    (default: figures/<profile>/notebooks, beside the figures they made) with timings.json, updated
    after each notebook (a partial run, `only`, updates the entries of the notebooks it ran); once
    every notebook has run there, the figures folder's RESULTS.md is assembled.
    parallel: how many notebooks after FIRST run at a time; each kernel then gets `threads`, or
    the cores divided among them. The first failing notebook stops the run: those not started are
    skipped, those running finish."""
    overrides = typed_overrides(overrides)
    resolved = get_profile(profile, **overrides)  # fail on an unknown profile or field before starting any kernel
    try:
        resolve_device(resolved.device)
    except RuntimeError:
        raise ValueError(f"profile field device = {resolved.device!r}: this machine has no CUDA device; allowed here: "
                         "auto or cpu") from None
    user = {register_user_dataset(entry): parse_user_data(entry)[1] for entry in resolved.user_data}
    for name in [d for d in resolved.datasets if d in user]:  # a user's folders, checked before any kernel
        check_available([name])
        check_fits(resolved, name, {split: load_split(name, split) for split in SPLITS},
                   split_by_us=user_layout(user[name]) == "one folder")
    for flag, folder in (("--artifacts", artifacts), ("--figures", figures), ("--run-dir", run_dir)):
        if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
            raise ValueError(f"{flag} {folder} is a file; give a folder (made if absent)")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads {threads}: give a positive number of CPU threads")
    if parallel < 1:
        raise ValueError(f"--parallel {parallel}: give a positive number of notebooks to run at a time")
    if figures is None and overrides:
        # Changed settings never overwrite the profile's reference run (figures/<profile>): their own folder.
        figures = REPO / "figures" / f"{profile}-{key_digest(json.loads(json.dumps(overrides)))[:8]}"
        print(f"[t2w] settings differ from profile {profile}'s: outputs go to {figures} (--figures to choose)",
              flush=True)
    figures = Path(figures or REPO / "figures" / profile).resolve()
    run_dir = Path(run_dir or figures / "notebooks").resolve()
    params = {"PROFILE": profile, "ARTIFACTS": str(Path(artifacts).resolve()), "FIGURES": str(figures),
              "DATA_ROOT": data_root, "OVERRIDES": json.loads(json.dumps(overrides))}
    notebooks = pipeline_notebooks(notebooks_dir, only)  # a bad --only fails before any folder is made
    if only and notebooks_dir == REPO / "notebooks":
        check_prerequisites(profile, Path(artifacts), data_root, overrides, [nb.name[:2] for nb in notebooks])
    # One run per artifacts folder at a time: a second waits, then finds the first one's work done
    # (each zoo build also locks its own folder, for notebooks run by hand).
    with FolderLock(Path(artifacts), "t2w run", wait=True):
        return _run_locked(notebooks, notebooks_dir, run_dir, figures, profile, params, only, overrides, log_output,
                           threads, parallel)


def _run_locked(notebooks: list[Path], notebooks_dir: Path, run_dir: Path, figures: Path, profile: str, params: dict,
                only: list[str] | None, overrides: dict, log_output: bool, threads: int | None,
                parallel: int) -> dict[str, float]:
    """run_pipeline's work, holding the artifacts folder's lock."""
    run_dir.mkdir(parents=True, exist_ok=True)
    timings_path = run_dir / "timings.json"
    last = json.loads(timings_path.read_text()).get("seconds", {}) if timings_path.exists() else {}
    if not only:  # a whole run starts its timings afresh
        timings_path.unlink(missing_ok=True)
    lane_threads = threads if threads is not None or parallel == 1 else max(1, cpu_count() // parallel)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def finished(nb: Path, seconds: float) -> None:
        timings[nb.stem] = seconds
        print(f"[t2w] {nb.name} done in {seconds:.1f} s", flush=True)
        # After every notebook, so that a killed run keeps the times of those it finished.
        merged = _merged_timings(timings_path, profile, params["OVERRIDES"], {nb.stem: seconds}, notebooks_dir)
        atomic_write_text(timings_path, json.dumps({
            "profile": profile, "overrides": params["OVERRIDES"], "threads": lane_threads, "parallel": parallel,
            # A whole run's wall time so far (a partial run's would not time the notebooks it merges in).
            "wall_s": None if only else round(time.perf_counter() - started, 1), "seconds": merged}, indent=1))

    def job(nb: Path) -> tuple:
        return nb, run_dir / nb.name, {**params, "NOTEBOOK": nb.stem}, log_output

    first = [nb for nb in notebooks if nb.name[:2] in FIRST]
    rest = [nb for nb in notebooks if nb.name[:2] not in FIRST]
    if parallel == 1 or len(rest) < 2:
        first, rest = notebooks, []
    for nb in first:
        finished(nb, _execute(*job(nb), threads))
    if rest:
        # Longest first (by the last timings; a notebook never timed counts as longest).
        rest.sort(key=lambda nb: -last.get(nb.stem, float("inf")))
        waiting, running, failure = list(rest), {}, None
        with ProcessPoolExecutor(min(parallel, len(rest)), mp_context=multiprocessing.get_context("spawn")) as pool:
            while waiting or running:
                # A notebook is handed over only when a lane is free, so after a failure none starts.
                while waiting and failure is None and len(running) < parallel:
                    nb = waiting.pop(0)
                    running[pool.submit(_execute, *job(nb), lane_threads)] = nb
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    nb = running.pop(future)
                    try:
                        finished(nb, future.result())
                    except (PipelineError, PipelineInputError) as err:
                        print(f"[t2w] {err}", flush=True)
                        failure = failure or err
        if failure is not None:
            raise failure
    if timings_path.exists() and set(json.loads(timings_path.read_text())["seconds"]) == {
            p.stem for p in pipeline_notebooks(notebooks_dir)}:
        write_results(figures, run_dir)
    return {nb.stem: timings[nb.stem] for nb in notebooks}  # in notebook order, whatever order they finished in
