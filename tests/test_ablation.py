"""Ablation variants: every variant is a valid profile at the ablation budget, and runs end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from t2wlib import ablation
from t2wlib.generator import generator_meta
from t2wlib.profiles import get_profile
from t2wlib.zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402


def test_variants_share_the_budget_and_differ_only_in_their_overrides():
    profile = get_profile("cpu", ablation_epochs=7, ablation_seeds=(5, 6))
    full = ablation.ablation_profile(profile, ablation.FULL)
    assert full.gen_epochs == 7 and full.gen_batch_size == profile.gen_batch_size
    for name, overrides in ablation.ABLATIONS.items():
        prof = ablation.ablation_profile(profile, name)
        overrides = overrides(profile) if callable(overrides) else overrides
        changed = {f for f in overrides if getattr(prof, f) != getattr(full, f)}
        assert changed == set(overrides) and prof.gen_epochs == 7 and prof.seeds == profile.ablation_seeds
    plain = get_profile("cpu", ablation_epochs=None, ablation_seeds=())  # the main budget and seeds
    assert ablation.ablation_profile(plain, ablation.FULL) == plain
    for base in ("minmax", "standard"):  # "other tokenizer" swaps whichever the profile has
        swapped = ablation.ablation_profile(get_profile("cpu", tokenizer_mode=base), "other tokenizer")
        assert swapped.tokenizer_mode == ({"minmax", "standard"} - {base}).pop()
    with pytest.raises(KeyError, match="unknown ablation 'w/o text'"):
        ablation.ablation_profile(profile, "w/o text")


def test_run_ablation_trains_each_variant_in_its_own_folder(tmp_path):
    zoo_job.build(tmp_path / "zoo")
    zoo = load_zoo(tmp_path / "zoo")
    _, test, _ = zoo_job.synthetic_data()
    profile = get_profile("smoke", block_size=8, gen_epochs=1, gen_batch_size=8, seeds=(1, 2), ddim_steps=3)
    variants = ("w/o both", "MLP + FiLM denoiser")
    scores, seconds = ablation.run_ablation(tmp_path / "art", profile, zoo, test, variants)
    assert set(scores.variant) == set(variants) and set(scores.seed) == {1, 2}
    assert len(scores) == 2 * 2 * len(zoo.tasks.ids("unseen")) and scores.accuracy.between(0, 1).all()
    assert len(list((tmp_path / "art" / "generator" / "smoke").iterdir())) == 4 and len(seconds) == 4
    metas = [generator_meta(ablation.ablation_profile(profile, v), zoo, "prompt", 1) for v in variants]
    assert metas[1]["dit"] == "mlp-film" and metas[0]["train"]["lambda_sym"] == 0.0
