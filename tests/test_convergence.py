"""The convergence study's bookkeeping (t2wlib/experiments/convergence.py): the plateau table that
says whether a curve still rises, the studied profiles, which must pass the profile's rules, the
curves' models, and Figure 3's ε generator, which is the curves' ε model where their settings meet.
(The curves themselves run in the smoke pipeline's 02_train, tests/test_pipeline.py.)"""

from __future__ import annotations

import pandas as pd
import pytest

from t2wlib.experiments import convergence, figure3
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
    models = convergence.curve_models(cpu).values()
    for overrides in [*models, *({**convergence.LEVER_BASE, **o} for o in convergence.LEVERS.values())]:
        studied = convergence.study_profile(cpu, overrides, convergence.LEVER_STEPS)
        assert studied.gen_steps == convergence.LEVER_STEPS and studied.gen_validation_tasks == cpu.ablation_validation_tasks
        assert studied.seeds == cpu.seeds[:1]
    with pytest.raises(ValueError, match="text_path = True needs prediction = 'x0'"):
        convergence.study_profile(cpu, {"prediction": "eps", "text_path": True}, 10)


def test_the_curves_trace_the_profiles_generator_and_its_eps_twin_at_each_width():
    cpu = get_profile("cpu")
    models = convergence.curve_models(cpu)
    assert list(models) == ["T2W x0 + text path, h 32", "T2W ε, h 32", "T2W x0 + text path, h 128 (the profile's generator)",
                            "T2W ε, h 128"]
    # the ε twin trains on every component whitened; a profile of block tokens keeps its own tokens
    assert models["T2W ε, h 128"] == {"dit": "cpu-small", "prediction": "eps", "text_path": False,
                                      "tokenizer_mode": "pca", "tasks_per_component": 0}
    blocks = get_profile("cpu", tokenizer_mode="standard", block_size=256)
    assert convergence.curve_models(blocks)["T2W ε, h 128"] == {"dit": "cpu-small", "prediction": "eps",
                                                                "text_path": False}
    # ε on the profile's own compact tokens (the study's eps-tokens and eps-long rows)
    own = convergence.study_profile(cpu, convergence.eps_twin(cpu, "cpu-small", own_tokens=True), 600)
    assert (own.tokenizer_mode, own.tasks_per_component, own.prediction) == ("pca-global", 10, "eps")
    # an ε profile has no twin of its own: one curve per width
    assert list(convergence.curve_models(get_profile("cpu", prediction="eps", text_path=False))) == [
        "T2W ε, h 32", "T2W ε, h 128 (the profile's generator)"]
    with pytest.raises(ValueError, match="convergence_steps = \\(600, 600\\) is out of range; allowed: \\(\\) or two"):
        get_profile("cpu", convergence_steps=(600, 600))
    with pytest.raises(ValueError, match="convergence_dits = \\('mlp-film',\\) is out of range"):
        get_profile("cpu", convergence_dits=("mlp-film",))



def test_figure3_eps_generator_is_the_curves_eps_model_on_cpu():
    """Same definition, so the same folder: 03_evaluate loads what 02_train's curves trained."""
    cpu = get_profile("cpu")
    fig3 = figure3.other_generator_profile(cpu)
    curve = convergence.study_profile(cpu, convergence.curve_models(cpu)["T2W ε, h 128"], max(cpu.convergence_steps))
    assert fig3 == curve and fig3.prediction == "eps" and fig3.gen_steps == 18000
    assert fig3.tokenizer_mode == "pca" and not fig3.text_path
    # beside an ε profile, Figure 3's other generator predicts x0 on the profile's own tokens
    eps = get_profile("cpu", prediction="eps", text_path=False)
    other = figure3.other_generator_profile(eps)
    assert (other.prediction, other.text_path, other.tokenizer_mode) == ("x0", False, eps.tokenizer_mode)
