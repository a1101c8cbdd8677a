"""Table 2 (paper §4.3) and the proposal's ablations (04_ablation): generator variants as profile
overrides, every variant trained with the same epochs, batch and seeds and scored on the same
unseen tasks.

The paper's four rows remove L_adv, L_sym or both. The proposal adds: permutation augmentation in
place of L_sym (App. A's alternative), a cosine noise schedule, the other weight normalisation
(per-dimension standardisation vs the paper's per-block min-max: the embedded profiles use the
former, the paper profile the latter, so the row swaps whichever the profile has), and an MLP
denoiser with FiLM conditioning instead of the DiT.
"""

from __future__ import annotations

import dataclasses
import time

import pandas as pd

from .evaluate import head_scores
from .features import FeatureSet
from .generator import generator_path, train_generator
from .zoo import Zoo

FULL = "Full T2W"
# Overrides per variant: a dict, or a function of the profile returning one.
ABLATIONS: dict = {
    FULL: {},
    "w/o adversarial": {"lambda_adv": 0.0},
    "w/o permutation": {"lambda_sym": 0.0},
    "w/o both": {"lambda_adv": 0.0, "lambda_sym": 0.0},
    "augmentation instead of L_sym": {"lambda_sym": 0.0, "gen_augment": True},
    "cosine schedule": {"noise_schedule": "cosine"},
    "other tokenizer": lambda p: {"tokenizer_mode": "minmax" if p.tokenizer_mode == "standard" else "standard"},
    "MLP + FiLM denoiser": {"dit": "mlp-film"},
}


def ablation_profile(profile, variant: str):
    """The profile a variant trains with: the profile's ablation budget plus the variant's overrides."""
    if variant not in ABLATIONS:
        raise KeyError(f"unknown ablation {variant!r}; available: {', '.join(ABLATIONS)}")
    epochs = profile.gen_epochs if profile.ablation_epochs is None else profile.ablation_epochs
    overrides = ABLATIONS[variant](profile) if callable(ABLATIONS[variant]) else ABLATIONS[variant]
    return dataclasses.replace(profile, gen_epochs=epochs, seeds=profile.ablation_seeds or profile.seeds, **overrides)


def run_ablation(artifacts, profile, zoo: Zoo, test: FeatureSet, variants=tuple(ABLATIONS), device: str = "cpu"):
    """Train (or resume, or load) every variant for each ablation seed on `zoo`'s seen tasks and score
    its heads for all unseen tasks (template prompts, DDIM with the profile's steps). Returns per-task
    scores (variant, seed, task, accuracy, mse, …) and each run's seconds, keyed "variant/s<seed>"."""
    ids = zoo.tasks.ids("unseen")
    v_c = zoo.task_text["v_c/prompt"][ids]
    frames, seconds = [], {}
    for variant in variants:
        prof = ablation_profile(profile, variant)
        for seed in prof.seeds:
            start = time.perf_counter()
            gen, _ = train_generator(generator_path(artifacts, prof, zoo, "prompt", seed), zoo, prof, "prompt", seed,
                                     device, progress=False)
            theta = gen.sample(v_c, steps=profile.ddim_steps, seed=seed)
            frames.append(head_scores(zoo, theta, test, ids).assign(variant=variant, seed=seed))
            seconds[f"{variant}/s{seed}"] = round(time.perf_counter() - start, 1)
    return pd.concat(frames, ignore_index=True), seconds


def describe(profile) -> str:
    """The settings a variant can change, in one line (Table 2's `settings` column)."""
    sym = f"λ1 {profile.lambda_sym}" + (f" on {profile.sym_batch}/batch" if profile.sym_batch and profile.lambda_sym else "")
    return (f"{profile.dit}, {profile.tokenizer_mode} tokens, {profile.noise_schedule} schedule, {sym}, "
            f"λ2 {profile.lambda_adv}" + (", permutation augmentation" if profile.gen_augment else ""))
