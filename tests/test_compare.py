"""`t2w compare`: a run's tables against a reference's, each identical, within the tolerance, beyond it,
or missing; timing columns and records left out. (On two real smoke runs: test_pipeline.py.)"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from t2wlib.pipeline import cli
from t2wlib.pipeline.compare import compare_runs


def _run(folder, accuracy=0.8123, temperature=1.642, label="T2W-CLIP", seconds=12.0, extra=False):
    folder.mkdir()
    pd.DataFrame({"method": ["ridge", label], "accuracy": [0.7, accuracy], "train_s": [1.0, seconds]}).to_csv(
        folder / "table1.csv", index=False)
    (folder / "calibration.json").write_text(json.dumps({"temperature": temperature, "wall_s": seconds,
                                                         "rows": [{"ece": 0.1}]}))
    (folder / "eval_timings.json").write_text(json.dumps({"anything": seconds}))
    (folder / "provenance.json").write_text(json.dumps({"table1.csv": {"commit": str(seconds)}}))
    if extra:
        (folder / "novelty.csv").write_text("a\n1\n")
    return folder


def _statuses(run, ref, **tolerance):
    return {r.name: r.status for r in compare_runs(run, ref, **tolerance)}


def test_each_table_is_identical_within_or_beyond_and_timings_do_not_count(tmp_path):
    ref = _run(tmp_path / "ref")
    assert _statuses(_run(tmp_path / "same", seconds=99.0), ref) == {"table1.csv": "identical",
                                                                     "calibration.json": "identical"}
    near = _run(tmp_path / "near", accuracy=0.8110, temperature=1.639)  # the Fashion-MNIST drift across machines
    assert _statuses(near, ref) == {"table1.csv": "within", "calibration.json": "within"}
    far = compare_runs(_run(tmp_path / "far", accuracy=0.79), ref)
    assert [(r.name, r.status) for r in far] == [("calibration.json", "identical"), ("table1.csv", "beyond")]
    assert "accuracy[1]: 0.79 vs 0.8123" in far[1].detail
    assert _statuses(_run(tmp_path / "label", label="T2W-NL"), ref)["table1.csv"] == "beyond"
    assert _statuses(near, ref, rtol=0.0, atol=1e-4) == {"table1.csv": "beyond", "calibration.json": "beyond"}


def test_the_command_reports_every_table_and_fails_on_a_difference_beyond_or_a_missing_table(tmp_path, capsys):
    ref = _run(tmp_path / "ref", extra=True)
    assert cli.main(["compare", str(_run(tmp_path / "near", accuracy=0.8110)), str(ref)]) == 1  # novelty.csv missing
    out = capsys.readouterr().out
    assert "within    table1.csv" in out and "missing   novelty.csv" in out and "1 within" in out
    assert cli.main(["compare", str(ref), str(ref)]) == 0
    assert "3 tables: 3 identical" in capsys.readouterr().out
    assert cli.main(["compare", str(ref), str(tmp_path / "nowhere")]) == 2
    assert "REFERENCE" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [(["--rtol", "-1"], "must be finite and >= 0"),
                                            (["--atol", "nan"], "must be finite and >= 0")])
def test_bad_tolerances_are_one_line(tmp_path, capsys, flags, message):
    ref = _run(tmp_path / "ref")
    assert cli.main(["compare", str(ref), str(ref), *flags]) == 2
    assert message in capsys.readouterr().err
