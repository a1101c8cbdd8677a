"""Table 2 (paper §4.3) and the proposal's ablations (04_ablation): generator variants as profile
overrides, every variant trained with the same epochs, batch and seeds and scored on the same
unseen tasks.

The paper's four rows remove L_adv, L_sym or both. The proposal adds: permutation augmentation in
place of L_sym (App. A's alternative), a cosine noise schedule, per-dimension standardisation of the
weights instead of per-block min-max, and an MLP denoiser with FiLM conditioning instead of the DiT.
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
ABLATIONS: dict[str, dict] = {
    FULL: {},
    "w/o adversarial": {"lambda_adv": 0.0},
    "w/o permutation": {"lambda_sym": 0.0},
    "w/o both": {"lambda_adv": 0.0, "lambda_sym": 0.0},
    "augmentation instead of L_sym": {"lambda_sym": 0.0, "gen_augment": True},
    "cosine schedule": {"noise_schedule": "cosine"},
    "per-dimension standardisation": {"tokenizer_mode": "standard"},
    "MLP + FiLM denoiser": {"dit": "mlp-film"},
}


def ablation_profile(profile, variant: str):
    """The profile a variant trains with: the profile's ablation budget plus the variant's overrides."""
    if variant not in ABLATIONS:
        raise KeyError(f"unknown ablation {variant!r}; available: {', '.join(ABLATIONS)}")
    epochs = profile.gen_epochs if profile.ablation_epochs is None else profile.ablation_epochs
    return dataclasses.replace(profile, gen_epochs=epochs, seeds=profile.ablation_seeds or profile.seeds,
                               **ABLATIONS[variant])


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
