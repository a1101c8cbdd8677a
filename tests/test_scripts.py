"""The study scripts' own logic (their library calls are tested with the library)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from t2wlib.pipeline.profiles import get_profile

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))  # the scripts import their shared `study` module


def _script(name: str):
    path = SCRIPTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("budget", [{"gen_steps": 1000}, {"gen_steps": None, "gen_epochs": 40}])
def test_scaling_points_vary_one_thing_each_at_the_profiles_step_budget(budget):
    from t2wlib.pipeline.config import train_config

    profile = get_profile("cpu", **budget)  # 1,000 steps either way on 800 seen tasks
    points = _script("scaling_study").points(profile, 800)
    assert list(points) == ["tasks 200", "tasks 400", "tasks 800", "steps 2000", "model cpu-base"]
    assert dataclasses.replace(profile, **points["tasks 800"]) == profile  # Table 1's generator itself
    for n in (200, 400):
        prof = dataclasses.replace(profile, **points[f"tasks {n}"])
        train = 800 - prof.gen_validation_tasks
        assert train == n and abs(train_config(prof, 0, train).epochs * (train // prof.gen_batch_size) - 1000) <= 10
    doubled = dataclasses.replace(profile, **points["steps 2000"])
    assert train_config(doubled, 0, 800).epochs == 2 * train_config(profile, 0, 800).epochs
    assert points["model cpu-base"] == {"dit": "cpu-base"}


def test_emoji_regime_reads_the_regime_on_seen_tasks(tmp_path, monkeypatch):
    """The calibration script end to end on a tiny rendering (the real candidates take minutes)."""
    import json

    regime = _script("emoji_regime")
    monkeypatch.setattr(regime, "CANDIDATES", {"tiny": dict(classes=12, train_per_class=6, test_per_class=3)})
    monkeypatch.setattr(regime, "REGIME_OVERRIDES", {"zoo_tasks": 30, "zoo_k": (8, 32)})
    monkeypatch.setattr(sys, "argv", ["emoji_regime.py", "--profile", "smoke", "--artifacts", str(tmp_path / "a"),
                                      "--figures", str(tmp_path / "f")])
    regime.main()
    (row,) = json.loads((tmp_path / "f" / "emoji_regime.json").read_text())
    assert row["classes"] == 12 and row["k"] == "2-11" and row["r"] == 2 and row["images"] == 12 * 9  # k_min <= C // 5
    assert 0 <= row["linear_probe"] <= 1 and row["seen_tasks"] > 0
    assert row["gap_pt"] == pytest.approx(100 * (row["trained_heads_seen"] - row["universal_seen"]))
    provenance = json.loads((tmp_path / "f" / "provenance.json").read_text())
    assert provenance["emoji_regime.md"]["notebook"] == "scripts/emoji_regime.py"


def test_the_regime_criterion_is_one_rule_for_scalars_and_columns():
    import pandas as pd

    from t2wlib.experiments.regime import in_paper_regime

    assert in_paper_regime(0.737, 0.124) and not in_paper_regime(0.8545, 0.05) and not in_paper_regime(0.7, 0.04)
    table = pd.DataFrame({"probe": [0.737, 0.8545, 0.5], "gap": [0.124, 0.05, 0.2]})
    assert in_paper_regime(table.probe, table.gap).tolist() == [True, False, False]
