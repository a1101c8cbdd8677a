"""Ablation variants: every variant is a valid profile at the ablation budget, and runs end to end."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from t2wlib.experiments import table2
from t2wlib.generator.tokenizers import TOKENIZER_MODES
from t2wlib.pipeline.config import generator_config, train_config, train_steps
from t2wlib.pipeline.profiles import get_profile
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402


def test_variants_share_the_budget_and_differ_only_in_their_overrides():
    profile = get_profile("cpu", ablation_epochs=7, ablation_steps=300, ablation_seeds=(5, 6), ablation_validation_tasks=9)
    base = dataclasses.replace(profile, gen_epochs=7, gen_steps=300, seeds=(5, 6), gen_validation_tasks=9)
    # Without a budget of their own the variants take the generators' step budget.
    assert table2.ablation_profile(get_profile("cpu", gen_steps=450), table2.FULL).gen_steps == 450
    for name, overrides in table2.ABLATIONS.items():
        prof = table2.ablation_profile(profile, name)
        overrides = overrides(profile) if callable(overrides) else overrides
        assert prof == dataclasses.replace(base, **overrides), name
    # The paper's loss rows are absolute: the paper's λ1 and λ2 whatever the profile trains with.
    for lambdas in ((0.0, 0.0), (0.3, 0.2)):
        other = get_profile("cpu", lambda_sym=lambdas[0], lambda_adv=lambdas[1])
        full = table2.ablation_profile(other, table2.FULL)
        assert (full.lambda_sym, full.lambda_adv) == (table2.SYM, table2.ADV) == (0.1, 0.01)
        assert table2.ablation_profile(other, "cosine schedule").lambda_sym == lambdas[0]
    plain = get_profile("cpu", ablation_epochs=None, ablation_steps=None, ablation_seeds=(), ablation_validation_tasks=0,
                        lambda_sym=table2.SYM, lambda_adv=table2.ADV)  # the main budget, seeds and losses
    assert table2.ablation_profile(plain, table2.FULL) == plain
    for base_mode in ("minmax", "standard"):  # "other tokenizer" swaps whichever the profile has
        swapped = table2.ablation_profile(get_profile("cpu", tokenizer_mode=base_mode), "other tokenizer")
        assert swapped.tokenizer_mode == ({"minmax", "standard"} - {base_mode}).pop()
    assert sorted(table2.OTHER_NORMALISATION) == sorted(TOKENIZER_MODES)  # every token mode has its other
    for base_mode in ("pca", "pca-global"):  # the compact space's two normalisations swap too, its tokens kept
        compact = get_profile("cpu", tokenizer_mode=base_mode, block_size=32, gen_components=300)
        swapped = table2.ablation_profile(compact, "other tokenizer")
        assert swapped.tokenizer_mode == ({"pca", "pca-global"} - {base_mode}).pop()
        assert (swapped.block_size, swapped.gen_components) == (32, 300)
    with pytest.raises(KeyError, match="unknown ablation 'w/o text'"):
        table2.ablation_profile(profile, "w/o text")


def test_a_step_budget_gives_every_zoo_size_the_same_steps():
    steps = get_profile("cpu", gen_steps=1000, gen_batch_size=32)
    assert train_config(steps, 1, 3200).epochs == 10 and train_config(steps, 1, 800).epochs == 40
    assert train_config(get_profile("cpu", gen_steps=None, gen_epochs=7), 1, 3200).epochs == 7
    # the steps a budget amounts to: whole epochs of full batches (18,000 on 3,100 heads: 188 x 96)
    assert train_steps(steps, 3200) == 1000 and train_steps(dataclasses.replace(steps, gen_steps=18000), 3100) == 18048
    assert table2.ablation_profile(dataclasses.replace(steps, ablation_steps=300), table2.FULL).gen_steps == 300
    assert table2.ablation_profile(dataclasses.replace(steps, ablation_steps=None), table2.FULL).gen_steps == 1000


def test_loss_selection_reads_the_validation_column_of_the_loss_rows_only():
    table = pd.DataFrame({"variant": [*table2.LOSS_ROWS, "cosine schedule"],
                          "validation_accuracy_mean": [0.80, 0.86, 0.70, 0.85, 0.99],
                          "accuracy_mean": [0.90, 0.10, 0.10, 0.10, 0.10]})
    assert table2.selected_losses(table) == "w/o adversarial"
    with pytest.raises(ValueError, match="none of the loss rows"):
        table2.selected_losses(table.tail(1))
    assert table2.profile_losses(get_profile("paper")) == table2.FULL
    assert table2.profile_losses(get_profile("cpu", lambda_sym=0.0, lambda_adv=0.0)) == "w/o both"
    assert table2.profile_losses(get_profile("cpu", lambda_sym=0.5)) is None


def test_run_ablation_trains_each_variant_in_its_own_folder(tmp_path):
    zoo_job.build(tmp_path / "zoo")
    zoo = load_zoo(tmp_path / "zoo")
    _, test, _ = zoo_job.synthetic_data()
    profile = get_profile("smoke", block_size=8, gen_epochs=1, gen_batch_size=8, seeds=(1, 2), ddim_steps=3,
                          ablation_validation_tasks=5)
    variants = ("w/o both", "MLP + FiLM denoiser")
    scores, seconds = table2.run_ablation(tmp_path / "art", profile, zoo, test, variants)
    assert set(scores.variant) == set(variants) and set(scores.seed) == {1, 2}
    seen, unseen = zoo.tasks.ids("seen"), zoo.tasks.ids("unseen")
    validation = scores[scores.split == "validation"]
    assert set(validation.task) == set(seen[-5:]) and set(scores[scores.split == "unseen"].task) == set(unseen)
    assert len(scores) == 2 * 2 * (5 + len(unseen)) and scores.accuracy.between(0, 1).all()
    folders = list((tmp_path / "art" / "generator" / "smoke").iterdir())
    assert len(folders) == 4 and len(seconds) == 4
    assert {json.loads((f / "generator.json").read_text())["validation_tasks"] for f in folders} == {5}
    table = table2.table2(scores, profile)
    assert list(table.variant) == list(variants) and (table.validation_tasks == 5).all()
    assert {"settings", "accuracy_mean", "accuracy_std", "mse_mean", "validation_accuracy_mean"} <= set(table.columns)
    metas = [generator_config(table2.ablation_profile(profile, v), zoo, "prompt", 1) for v in variants]
    assert metas[1].dit == "mlp-film" and metas[0].train["lambda_sym"] == 0.0
