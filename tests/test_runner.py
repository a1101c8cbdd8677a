"""Profiles, the papermill runner's error reporting, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from t2wlib.pipeline import cli
from t2wlib.pipeline.profiles import PROFILES, for_dataset, get_profile, heldout_zoo_profile
from t2wlib.pipeline.runner import PipelineError, pipeline_notebooks, run_pipeline


def test_profiles():
    assert set(PROFILES) == {"smoke", "cpu", "demo", "paper"}
    demo, cpu = get_profile("demo"), get_profile("cpu")  # the demo's generators: cpu's definition on smaller zoos
    for field in ("datasets", "backbone", "text_encoder", "image_size", "dit", "tokenizer_mode", "prediction", "text_path",
                  "gen_steps", "zoo_k"):
        assert getattr(demo, field) == getattr(cpu, field), field
    assert demo.zoo_tasks < cpu.zoo_tasks and demo.train_per_class < cpu.train_per_class
    paper = get_profile("paper")
    assert paper.datasets == ("cifar100", "caltech256", "tinyimagenet") and paper.seeds == (42, 34, 3407)
    assert for_dataset(paper, 100).hidden == 16 and paper.backbone == "resnet18" and paper.text_encoder == "clip-vit-b-32"
    assert get_profile("cpu", hidden=4).hidden == 4
    # validation seen tasks (Table 2, the convergence study): 100, at most a fifth of a small dataset's tasks
    cpu = get_profile("cpu")
    assert for_dataset(cpu, 300).ablation_validation_tasks == 100 and for_dataset(cpu, 10).ablation_validation_tasks == 100
    assert for_dataset(cpu, 6).zoo_tasks == 56 and for_dataset(cpu, 6).ablation_validation_tasks == 11
    with pytest.raises(KeyError, match="unknown profile 'gpu'"):
        get_profile("gpu")
    with pytest.raises(TypeError, match="unknown profile field"):
        get_profile("cpu", hiden=4)
    # The held-out zoo's models train with heldout_seeds, or with every seed when it is empty.
    assert heldout_zoo_profile(get_profile("cpu")).seeds == (42,)
    assert heldout_zoo_profile(get_profile("cpu", heldout_seeds=())).seeds == (42, 34, 3407)


def test_repository_notebooks_are_numbered_and_clean():
    notebooks = pipeline_notebooks()
    assert notebooks[0].name == "01_zoo.ipynb"
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), path
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path} has outputs"
    with pytest.raises(ValueError, match="no notebook matches"):
        pipeline_notebooks(only=["99"])


def _notebook(path, *sources):
    cells = [nbformat.v4.new_code_cell("PROFILE = 'cpu'\nARTIFACTS = ''\nFIGURES = ''\nDATA_ROOT = ''",
                                       metadata={"tags": ["parameters"]})]
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


def test_runner_stops_at_the_failing_cell_and_names_it(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "01_ok.ipynb", "x = 1")
    _notebook(nbs / "02_broken.ipynb", "y = 2", "assert PROFILE == 'smoke'\nraise ValueError('boom')")
    _notebook(nbs / "03_never.ipynb", "open('ran-03', 'w').close()")
    with pytest.raises(PipelineError, match=r"02_broken.ipynb failed in cell \d+ .*ValueError: boom"):
        run_pipeline("smoke", notebooks_dir=nbs, run_dir=tmp_path / "runs", artifacts=tmp_path / "a",
                     figures=tmp_path / "f", log_output=False)
    assert (tmp_path / "runs" / "01_ok.ipynb").exists() and (tmp_path / "runs" / "02_broken.ipynb").exists()
    assert not (tmp_path / "runs" / "03_never.ipynb").exists() and not (nbs / "ran-03").exists()


def test_cli(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist" in out and "efficientnet-lite0" in out and "minilm" in out
    with pytest.raises(SystemExit):
        cli.main(["run", "--profile", "gpu"])


@pytest.mark.parametrize("given, expected", [
    (["zoo_tasks=60"], {"zoo_tasks": 60}),
    (["zoo_k=2,4", "datasets=digits"], {"zoo_k": (2, 4), "datasets": ("digits",)}),
    (['zoo_k=[3, 5]', "sym_batch=None", "lambda_sym=0", "gen_augment=true"],
     {"zoo_k": (3, 5), "sym_batch": None, "lambda_sym": 0.0, "gen_augment": True}),
    ({"zoo_k": [3, 5], "prediction": "eps", "text_path": False},  # papermill's JSON values
     {"zoo_k": (3, 5), "prediction": "eps", "text_path": False}),
    (["zoo_k=(2, 5)", "gen_steps=null", "seeds=(42, 34)"], {"zoo_k": (2, 5), "gen_steps": None, "seeds": (42, 34)}),
])
def test_overrides_are_typed_against_the_profile(given, expected):
    from t2wlib.pipeline.overrides import typed_overrides
    from t2wlib.pipeline.profiles import get_profile

    typed = typed_overrides(given)
    assert typed == expected and all(type(typed[k]) is type(v) for k, v in expected.items())
    get_profile("smoke", **typed)  # and the profile accepts them


@pytest.mark.parametrize("given, message", [
    (["zoo_tasks=many"], "profile field zoo_tasks is int; 'many' is not one"),
    (["zoo_taks=3"], r"unknown profile field\(s\) \['zoo_taks'\]; fields: .*zoo_tasks"),
    (["name=cpu"], r"unknown profile field\(s\) \['name'\]"),
    (["zoo_tasks"], "--set 'zoo_tasks' is not key=value"),
    (["gen_augment=1"], "gen_augment is bool; '1' is not one"),
    (["ddim_steps=None"], "ddim_steps is int; 'None' is not one"),
    # the field's own type, whatever item of a tuple failed
    (["seeds=(1,x)"], r"seeds is tuple\[int, ...\] \(write a tuple as 2,5 or \[2,5\]\); 'x' is not one"),
    (["convergence_steps=(a)"], r"convergence_steps is tuple\[int, ...\] .*; 'a' is not one"),
])
def test_bad_overrides_are_refused_naming_field_and_value(given, message):
    from t2wlib.pipeline.overrides import typed_overrides

    with pytest.raises(ValueError, match=message):
        typed_overrides(given)


def test_session_applies_overrides_and_records_them(tmp_path):
    from t2wlib.pipeline.session import Session

    s = Session("smoke", tmp_path / "a", tmp_path / "f", "", {"zoo_tasks": 60}, "01_zoo")
    assert s.profile.zoo_tasks == 60 and s.seed == s.profile.seeds[0] and s.data_root == tmp_path / "a" / "data"
    assert "zoo_tasks=60" in repr(s)
    import pandas as pd

    s.out.table(pd.DataFrame({"x": [1]}), "t")
    entry = __import__("json").loads((tmp_path / "f" / "provenance.json").read_text())["t.csv"]
    assert entry["notebook"] == "01_zoo" and entry["overrides"] == {"zoo_tasks": 60}


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.stem)
def test_source_notebooks_are_clean_and_set_up_in_three_statements(path):
    """notebooks/ holds no outputs or execution counts (the executed copies live beside the figures),
    opens with the parameters cell (its knobs: test_every_notebook_declares_its_knobs_for_papermill),
    then a setup cell of three statements (the import, one Session call, `session`), and closes with
    its reading."""
    import ast

    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    setup = ast.parse(code[1].source).body
    assert len(setup) == 3 and "Session(" in code[1].source, code[1].source
    assert nb.cells[-1].cell_type == "markdown" and nb.cells[-1].source.startswith("## Reading")


def test_a_partial_run_updates_the_timings_and_results_of_its_notebooks(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    writes = ("from t2wlib.pipeline.plotting import FigureWriter\n"
              "FigureWriter(FIGURES, PROFILE, [0], {'notebook': NOTEBOOK}).json({}, NOTEBOOK)")
    _notebook(nbs / "01_a.ipynb", writes)
    _notebook(nbs / "02_b.ipynb", writes)
    kwargs = dict(notebooks_dir=nbs, run_dir=tmp_path / "runs", artifacts=tmp_path / "a", figures=tmp_path / "f",
                  log_output=False)
    run_pipeline("smoke", **kwargs)
    results, timings = tmp_path / "f" / "RESULTS.md", tmp_path / "runs" / "timings.json"
    first = json.loads(timings.read_text())["seconds"]
    results.unlink()
    run_pipeline("smoke", only=["02"], **kwargs)
    seconds = json.loads(timings.read_text())["seconds"]
    assert list(seconds) == ["01_a", "02_b"] and seconds["01_a"] == first["01_a"] and results.exists()
    results.unlink()
    run_pipeline("smoke", only=["02"], overrides={"zoo_tasks": 60}, **kwargs)  # another run's timings are not mixed in
    assert list(json.loads(timings.read_text())["seconds"]) == ["02_b"] and not results.exists()


def test_parallel_run_keeps_every_provenance_entry_and_stops_at_a_failure(tmp_path):
    """After 01 and 02, notebooks run two at a time in their own processes, one thread each; their
    outputs' provenance entries all land in the one provenance.json (written under a lock), and a
    failing notebook fails the run by name while the one beside it finishes."""
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    writes = ("import torch\nfrom t2wlib.pipeline.plotting import FigureWriter\n"
              "w = FigureWriter(FIGURES, PROFILE, [0], {'notebook': NOTEBOOK})\n"
              "for i in range(20):\n    w.json({'threads': torch.get_num_threads()}, f'{NOTEBOOK}_{i}')")
    for name in ("01_a", "02_b", "03_c", "04_d", "05_e"):
        _notebook(nbs / f"{name}.ipynb", writes)
    kwargs = dict(notebooks_dir=nbs, run_dir=tmp_path / "runs", artifacts=tmp_path / "a", figures=tmp_path / "f",
                  log_output=False)
    timings = run_pipeline("smoke", parallel=2, **kwargs)
    assert sorted(timings) == ["01_a", "02_b", "03_c", "04_d", "05_e"]
    provenance = json.loads((tmp_path / "f" / "provenance.json").read_text())
    assert len(provenance) == 100 and {e["notebook"] for e in provenance.values()} == set(timings)
    from t2wlib.pipeline.runner import cpu_count

    lane = max(1, cpu_count() // 2)
    assert json.loads((tmp_path / "f" / "03_c_0.json").read_text())["threads"] == lane
    recorded = json.loads((tmp_path / "runs" / "timings.json").read_text())
    assert recorded["parallel"] == 2 and recorded["threads"] == lane and recorded["wall_s"] > 0
    results = (tmp_path / "f" / "RESULTS.md").read_text()
    assert f"| **wall** (2 notebooks at a time after the first two, {lane} thread(s) each) |" in results
    assert not list((tmp_path / "f").glob("*.lock"))

    # In a fresh run folder (no last timings) the lanes take 03 and 04 first; 03 fails while 04 runs,
    # 04 finishes, and 05, still waiting, never starts. (Only 03-05: a partial run has no first two.)
    _notebook(nbs / "03_c.ipynb", "raise ValueError('lane boom')")
    _notebook(nbs / "04_d.ipynb", "import time\ntime.sleep(5)\nopen(FIGURES + '/04-finished', 'w').close()")
    _notebook(nbs / "05_e.ipynb", "open(FIGURES + '/05-ran', 'w').close()")
    with pytest.raises(PipelineError, match=r"03_c.ipynb failed in cell \d+ .*ValueError: lane boom"):
        run_pipeline("smoke", parallel=2, only=["03", "04", "05"], **{**kwargs, "run_dir": tmp_path / "runs2"})
    assert (tmp_path / "f" / "04-finished").exists() and not (tmp_path / "f" / "05-ran").exists()
    with pytest.raises(ValueError, match="--parallel 0"):
        run_pipeline("smoke", parallel=0, **kwargs)


def test_two_runs_on_one_artifacts_folder_run_one_after_the_other(tmp_path):
    """Two `t2w run`s started at once on one artifacts folder: the second says it waits, then runs
    when the first is done (no notebook of one overlaps one of the other's); both succeed."""
    import subprocess
    import sys

    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "01_a.ipynb", "import json, time\nstart = time.time()\ntime.sleep(2)\n"
                                  "open(FIGURES + '/span.json', 'w').write(json.dumps([start, time.time()]))")
    _notebook(nbs / "02_b.ipynb", "raise ValueError('not run: the runs take --only 01')")
    code = ("import sys; from pathlib import Path; from t2wlib.pipeline.runner import run_pipeline; "
            "run_pipeline('smoke', notebooks_dir=Path(sys.argv[1]), run_dir=Path(sys.argv[2]) / 'runs', "
            "artifacts=Path(sys.argv[3]), figures=Path(sys.argv[2]), log_output=False, only=['01'])")
    runs = [subprocess.Popen([sys.executable, "-c", code, str(nbs), str(tmp_path / f"run{i}"), str(tmp_path / "a")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    assert sum("in use by another t2w run; waiting for it to finish" in e for e in errors) == 1, errors
    (a0, a1), (b0, b1) = sorted(json.loads((tmp_path / f"run{i}" / "span.json").read_text()) for i in range(2))
    assert a1 <= b0


def test_a_notebook_run_prints_no_kernel_or_progress_bar_warnings(tmp_path):
    """The terminal shows the notebook's progress, not Jupyter's "Kernel is running over TCP without
    encryption" nor tqdm's "IProgress not found" (the library's progress bars are text bars)."""
    import subprocess
    import sys

    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    # (The text encoder's tqdm.autonotebook, loaded by 01_zoo: test_pipeline's no-warnings test.)
    _notebook(nbs / "01_a.ipynb", "from t2wlib.zoo.model_zoo import tqdm\nfor _ in tqdm(range(3)):\n    pass")
    code = ("import sys; from pathlib import Path; from t2wlib.pipeline.runner import _execute; "
            "_execute(Path(sys.argv[1]), Path(sys.argv[2]), {'PROFILE': 'smoke'}, True, None)")
    run = subprocess.run([sys.executable, "-c", code, str(nbs / "01_a.ipynb"), str(tmp_path / "out.ipynb")],
                         capture_output=True, text=True, timeout=300)
    printed = run.stdout + run.stderr
    assert run.returncode == 0 and "3/3" in printed, printed  # the notebook's output reaches the terminal
    assert "without encryption" not in printed and "IProgress" not in printed, printed


def test_quiet_runs_still_print_a_cache_entry_found_corrupt(tmp_path, capsys):
    """--quiet hides the notebooks' output, but not that a cache entry failed its check and was recomputed."""
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "01_a.ipynb", "import warnings\nfrom t2wlib.core.tensor_cache import CacheCorruptionWarning\n"
                                  "warnings.warn('recomputing: /x/features.safetensors fails its checksum', "
                                  "CacheCorruptionWarning)")
    from t2wlib.pipeline.runner import _execute

    _execute(nbs / "01_a.ipynb", tmp_path / "out.ipynb", {"PROFILE": "smoke"}, False, None)
    err = capsys.readouterr().err
    assert ("t2w: warning: CacheCorruptionWarning: recomputing: /x/features.safetensors fails its checksum "
            "(01_a.ipynb)") in err, err


def test_every_notebook_declares_its_knobs_for_papermill():
    """Each notebook's parameters cell, as `papermill --help-notebook` reads it: the six parameters
    `t2w run` sets, then the notebook's own knobs, each a profile field with a type and a help line,
    defaulting to None (the profile's value) and handed to its Session, so `papermill -p` reaches it."""
    import ast
    import dataclasses

    import nbformat
    import papermill

    from t2wlib.pipeline.profiles import Profile

    fields = {f.name for f in dataclasses.fields(Profile)}
    run_parameters = ["PROFILE", "ARTIFACTS", "FIGURES", "DATA_ROOT", "OVERRIDES", "NOTEBOOK"]
    for path in pipeline_notebooks():
        declared = papermill.inspect_notebook(str(path))  # a line it cannot parse is warned about and left out
        assert list(declared)[:6] == run_parameters, path.name
        knobs = list(declared)[6:]
        assert knobs and set(knobs) <= fields, (path.name, knobs)
        for knob in knobs:
            assert declared[knob]["default"] == "None" and declared[knob]["help"], (path.name, declared[knob])
            assert declared[knob]["inferred_type_name"].startswith("Optional["), (path.name, declared[knob])
        code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        call = next(ast.parse(src) for src in code if "Session(PROFILE" in src)
        passed = next(node for node in ast.walk(call) if isinstance(node, ast.keyword) and node.arg == "knobs").value
        assert [k.arg for k in passed.keywords] == knobs, path.name  # knobs=dict(a=a, ...) in the cell's order


def test_a_knob_given_to_a_session_is_an_override_typed_and_recorded(tmp_path):
    from t2wlib.pipeline.session import Session

    session = Session("smoke", tmp_path / "a", tmp_path / "f", overrides={"zoo_tasks": 60},
                      knobs={"fusion_k": "3", "fusion_pairs": None, "enhancement_t": [50, 100]})
    assert session.profile.fusion_k == 3 and session.profile.fusion_pairs == get_profile("smoke").fusion_pairs
    assert session.overrides == {"zoo_tasks": 60, "fusion_k": 3, "enhancement_t": (50, 100)}
    with pytest.raises(ValueError, match="fusion_k"):
        Session("smoke", tmp_path / "a", tmp_path / "f", knobs={"fusion_k": "many"})
