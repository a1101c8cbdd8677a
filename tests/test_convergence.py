"""The convergence study's bookkeeping (t2wlib/experiments/convergence.py): the plateau table that
says whether a curve still rises, and the studied profiles, which must pass the profile's rules."""

from __future__ import annotations

import pandas as pd
import pytest

from t2wlib.experiments import convergence
from t2wlib.pipeline.profiles import get_profile


def test_plateau_table_finds_the_best_budget_and_the_last_gain():
    curves = pd.DataFrame({"model": ["rising"] * 3 + ["peaked"] * 3 + ["one"],
                           "step": [600, 2400, 9600, 2400, 600, 9600, 600],
                           "accuracy": [0.5, 0.6, 0.7, 0.8, 0.75, 0.78, 0.4]})
    table = convergence.plateau_table(curves).set_index("model")
    assert table.loc["rising", ["best_step", "last_step"]].tolist() == [9600, 9600]
    assert table.loc["rising", "gain_over_previous_budget"] == pytest.approx(0.1)
    # rows come in any order: the budgets are sorted before the last gain is taken
    assert table.loc["peaked", "best_step"] == 2400 and table.loc["peaked", "gain_over_previous_budget"] == pytest.approx(-0.02)
    assert pd.isna(table.loc["one", "gain_over_previous_budget"])


def test_every_studied_profile_passes_the_profile_rules():
    cpu = get_profile("cpu")
    for overrides in [*convergence.CURVES.values(), *({**convergence.LEVER_BASE, **o} for o in convergence.LEVERS.values())]:
        studied = convergence.study_profile(cpu, overrides, convergence.LEVER_STEPS)
        assert studied.gen_steps == convergence.LEVER_STEPS and studied.gen_validation_tasks == cpu.ablation_validation_tasks
        assert studied.seeds == cpu.seeds[:1]
    with pytest.raises(ValueError, match="text_path = True needs prediction = 'x0'"):
        convergence.study_profile(cpu, {"prediction": "eps", "text_path": True}, 10)
