"""Table 2 (paper §4.3) and the proposal's ablations (04_ablation): generator variants as profile
overrides, every variant trained with the same epochs, batch and seeds and scored on the same
unseen tasks.

The paper's four rows remove L_adv, L_sym or both from the paper's loss (λ1 = 0.1, λ2 = 0.01: the
Profile defaults), whatever the profile's own weights. The proposal adds: permutation augmentation in
place of L_sym (App. A's alternative), a cosine noise schedule, the other weight normalisation
(per-dimension standardisation vs the paper's per-block min-max, swapped for whichever the profile
has; in the compact token space, one global scale vs whitened principal components), and an MLP
denoiser with FiLM conditioning instead of the DiT; these keep the profile's loss weights.

Every variant leaves the same `ablation_validation_tasks` seen tasks out of its training and is
scored on them as well as on the unseen tasks: a profile's generator settings are chosen by the
validation column, so that the unseen column stays a test.
"""

from __future__ import annotations

import dataclasses
import time

import pandas as pd

from ..data.features import FeatureSet
from ..generator.from_zoo import train_generator
from ..generator.pca_tokenizer import GLOBAL_MODE, PCA_MODES, WHITENED_MODE
from ..pipeline.config import generator_config, generator_path, seen_split
from ..pipeline.profiles import Profile
from ..zoo.model_zoo import Zoo
from .scoring import head_scores, summarise

FULL = "Full T2W"
SYM, ADV = Profile.lambda_sym, Profile.lambda_adv  # the paper-loss defaults (a dataclass keeps them as class attributes)
# Overrides per variant: a dict, or a function of the profile returning one.
ABLATIONS: dict = {
    FULL: {"lambda_sym": SYM, "lambda_adv": ADV},
    "w/o adversarial": {"lambda_sym": SYM, "lambda_adv": 0.0},
    "w/o permutation": {"lambda_sym": 0.0, "lambda_adv": ADV},
    "w/o both": {"lambda_sym": 0.0, "lambda_adv": 0.0},
    "augmentation instead of L_sym": {"lambda_sym": 0.0, "lambda_adv": ADV, "gen_augment": True},
    "cosine schedule": {"noise_schedule": "cosine"},
    "other tokenizer": lambda p: other_tokenizer(p),
    "MLP + FiLM denoiser": {"dit": "mlp-film"},
}


# The other weight normalisation of each token mode: the paper's two block normalisations swap, and
# so do the compact space's two (one global scale against one per principal component, whitened).
OTHER_NORMALISATION = {"minmax": "standard", "standard": "minmax", GLOBAL_MODE: WHITENED_MODE,
                       WHITENED_MODE: GLOBAL_MODE}


def other_tokenizer(profile) -> dict:
    """The profile's tokens under the other weight normalisation (OTHER_NORMALISATION)."""
    return {"tokenizer_mode": OTHER_NORMALISATION[profile.tokenizer_mode]}


def ablation_profile(profile, variant: str):
    """The profile a variant trains with: the profile's ablation budget and validation tasks plus the
    variant's overrides."""
    if variant not in ABLATIONS:
        raise KeyError(f"unknown ablation {variant!r}; available: {', '.join(ABLATIONS)}")
    epochs = profile.gen_epochs if profile.ablation_epochs is None else profile.ablation_epochs
    overrides = ABLATIONS[variant](profile) if callable(ABLATIONS[variant]) else ABLATIONS[variant]
    steps = profile.gen_steps if profile.ablation_steps is None else profile.ablation_steps
    return dataclasses.replace(profile, gen_epochs=epochs, gen_steps=steps, seeds=profile.ablation_seeds or profile.seeds,
                               gen_validation_tasks=profile.ablation_validation_tasks, **overrides)


def run_ablation(artifacts, profile, zoo: Zoo, test: FeatureSet, variants=tuple(ABLATIONS), device: str = "cpu"):
    """Train (or resume, or load) every variant for each ablation seed on `zoo`'s seen tasks less the
    validation tasks, and score its heads (template prompts, DDIM with the profile's steps) for the
    validation tasks and all unseen tasks. Returns per-task scores (variant, seed, split, task,
    accuracy, mse, …) and each run's seconds, keyed "variant/s<seed>"."""
    splits = {"validation": seen_split(zoo, ablation_profile(profile, FULL))[1], "unseen": zoo.tasks.ids("unseen")}
    ids = [i for split in splits.values() for i in split]
    frames, seconds = [], {}
    for variant in variants:
        prof = ablation_profile(profile, variant)
        for seed in prof.seeds:
            start = time.perf_counter()
            gen, _ = train_generator(generator_path(artifacts, prof, zoo, "prompt", seed), zoo,
                                     generator_config(prof, zoo, "prompt", seed), device, progress=False)
            theta = gen.sample(zoo.task_condition("prompt", ids, gen.config.condition), steps=profile.ddim_steps, seed=seed)
            frames.append(head_scores(zoo, theta, test, ids).assign(
                variant=variant, seed=seed, split=[split for split, part in splits.items() for _ in part]))
            seconds[f"{variant}/s{seed}"] = round(time.perf_counter() - start, 1)
    return pd.concat(frames, ignore_index=True), seconds


def describe(profile) -> str:
    """The settings a variant can change, in one line (Table 2's `settings` column)."""
    sym = f"λ1 {profile.lambda_sym}" + (f" on {profile.sym_batch}/batch" if profile.sym_batch and profile.lambda_sym else "")
    cap = f", at most 1 per {profile.tasks_per_component} seen tasks" if profile.tasks_per_component else ""
    tokens = f"{profile.tokenizer_mode} tokens" + (f" ({profile.gen_components} components{cap})"
                                                   if profile.tokenizer_mode in PCA_MODES else "")
    return (f"{profile.dit}, {tokens}, block {profile.block_size}, {profile.noise_schedule} schedule, {sym}, "
            f"λ2 {profile.lambda_adv}" + (", permutation augmentation" if profile.gen_augment else "")
            + (", text path" if profile.text_path else ""))


LOSS_ROWS = (FULL, "w/o adversarial", "w/o permutation", "w/o both")  # the paper's Table 2


def table2(scores: pd.DataFrame, profile) -> pd.DataFrame:
    """Table 2: one row per variant, unseen-task accuracy and MSE (mean ± std over seeds) next to the
    validation tasks' accuracy, and each variant's settings."""
    by_split = {split: summarise(scores[scores.split == split], ["variant"], ceiling=None).set_index("variant")
                for split in ("validation", "unseen")}
    table = by_split["unseen"].join(by_split["validation"][["accuracy_mean", "accuracy_std", "tasks"]].add_prefix("validation_"))
    table.insert(0, "settings", [describe(ablation_profile(profile, v)) for v in table.index])
    return table.reset_index()


def selected_losses(table: pd.DataFrame) -> str:
    """The paper's loss row (LOSS_ROWS) with the best validation accuracy."""
    rows = table[table.variant.isin(LOSS_ROWS)]
    if rows.empty:
        raise ValueError(f"Table 2 has none of the loss rows {LOSS_ROWS}")
    return str(rows.loc[rows.validation_accuracy_mean.idxmax(), "variant"])


def profile_losses(profile) -> str | None:
    """The loss row whose weights the profile itself trains with (None if it matches none)."""
    for row in LOSS_ROWS:
        if all(getattr(profile, k) == v for k, v in ABLATIONS[row].items()):
            return row
    return None
