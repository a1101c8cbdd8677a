"""Profiles, the papermill runner's error reporting, and the command line."""

from __future__ import annotations

import nbformat
import pytest

from t2wlib import cli
from t2wlib.profiles import PROFILES, get_profile
from t2wlib.runner import PipelineError, pipeline_notebooks, run_pipeline


def test_profiles():
    assert set(PROFILES) == {"smoke", "cpu", "paper"}
    paper = get_profile("paper")
    assert paper.datasets == ("cifar100", "caltech256", "tinyimagenet") and paper.seeds == (42, 34, 3407)
    assert paper.hidden == 16 and paper.backbone == "resnet18" and paper.text_encoder == "clip-vit-b-32"
    assert get_profile("cpu", hidden=4).hidden == 4
    with pytest.raises(KeyError, match="unknown profile 'gpu'"):
        get_profile("gpu")
    with pytest.raises(TypeError, match="unknown profile field"):
        get_profile("cpu", hiden=4)


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
