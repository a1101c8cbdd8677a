"""Table 1's comparison (paper §4.2, with the proposal's baselines): heads for the same zoo tasks
from every method, scored alike by `evaluate.head_scores`.

Methods, per text variant where they read text ("prompt" -> -CLIP, "description" -> -NL, the
paper's T2W-CLIP and T2W-NL):
  Trained (ceiling)   the zoo's own head of each task (stage 2 fine-tuning on the task's data)
  Universal Model     one head trained on all classes, restricted to each task's classes
  Stage-1 head (θ0*)  the head every zoo head is fine-tuned from: what a generator that returns the
                      zoo's centre for every text would score
  Retrieval-*         the seen head whose task text vector is nearest (baselines.retrieve_heads)
  Ridge-*             a linear map v_c -> θ in closed form (baselines.fit_ridge)
  Hypernetwork-*      an MLP v_c -> θ regressed on the seen zoo (baselines.train_hypernetwork)
  T2W-*               the diffusion generator, DDIM with the profile's steps
Seed-free methods are repeated under every seed, so each row of the summary averages the same seeds.
"""

from __future__ import annotations

import time

import pandas as pd
import torch
from tqdm.auto import tqdm

from .baselines import HyperNetwork, fit_ridge, hypernetwork_heads, retrieve_heads, train_hypernetwork
from .evaluate import head_scores, novelty, novelty_reference
from .features import FeatureSet
from .generator import T2WGenerator
from .generator_training import generator_path, train_config, train_generator
from .zoo import Zoo

VARIANT_LABEL = {"prompt": "CLIP", "description": "NL"}
CEILING = "Trained (ceiling)"
STAGE1 = "Stage-1 head (θ0*)"
# Methods whose heads do not depend on the seed (method_heads repeats them under every seed).
SEED_FREE = (CEILING, "Universal Model", STAGE1, "Retrieval-", "Ridge-")
ORDER = [CEILING, "Universal Model", STAGE1, *(f"{m}-{label}" for m in ("Retrieval", "Ridge", "Hypernetwork", "T2W")
                                       for label in VARIANT_LABEL.values())]


def method_heads(zoo: Zoo, ids: list[int], generators: dict[tuple[str, int], T2WGenerator],
                 hypernets: dict[tuple[str, int], HyperNetwork], ddim_steps: int) -> dict[tuple[str, int], torch.Tensor]:
    """Heads (len(ids), P) for zoo tasks `ids` from every method and seed, keyed (method, seed).
    generators and hypernets are keyed (text variant, seed)."""
    seeds = sorted({seed for _, seed in generators})
    seen = zoo.tasks.ids("seen")
    heads, seed_free = {}, {}
    for seed in seeds:
        heads[CEILING, seed] = zoo.theta[ids]
        heads["Universal Model", seed] = zoo.universal.expand(len(ids), -1)
        heads[STAGE1, seed] = zoo.stage1.expand(len(ids), -1)
    for (variant, seed), gen in generators.items():
        label, v_c = VARIANT_LABEL[variant], zoo.task_text[f"v_c/{variant}"]
        if variant not in seed_free:  # retrieval and the closed-form ridge: once per variant
            seed_free[variant] = (retrieve_heads(v_c[ids], v_c[seen], zoo.theta[seen])[0],
                                  fit_ridge(v_c[seen], zoo.theta[seen])(v_c[ids]))
        heads[f"Retrieval-{label}", seed], heads[f"Ridge-{label}", seed] = seed_free[variant]
        if (variant, seed) in hypernets:
            heads[f"Hypernetwork-{label}", seed] = hypernetwork_heads(hypernets[variant, seed], v_c[ids], gen.tokenizer)
        heads[f"T2W-{label}", seed] = gen.sample(v_c[ids], steps=ddim_steps, seed=seed)
    return heads


def score_methods(zoo: Zoo, test: FeatureSet, ids: list[int], heads: dict[tuple[str, int], torch.Tensor],
                  **columns) -> pd.DataFrame:
    """One row per (method, seed, task) with accuracy and weight MSE; `columns` (dataset, split, …)
    are added to every row."""
    once: dict[str, tuple] = {}  # a seed-free method's heads are the same under every seed: scored once
    frames = []
    for method, seed in sorted(heads, key=lambda key: (ORDER.index(key[0]), key[1])):
        if method.startswith(SEED_FREE):
            if method not in once:
                once[method] = (heads[method, seed], head_scores(zoo, heads[method, seed], test, ids))
            elif not torch.equal(once[method][0], heads[method, seed]):
                raise ValueError(f"{method} is seed-free but its heads differ under seed {seed}")
            scores = once[method][1]
        else:
            scores = head_scores(zoo, heads[method, seed], test, ids)
        frames.append(scores.assign(method=method, seed=seed))
    return pd.concat(frames, ignore_index=True).assign(**columns)


def train_methods(artifacts, profile, zoos: dict[str, Zoo], variants, device: str = "cpu"):
    """A generator and a hypernetwork for every (dataset, text variant, profile seed), trained (or
    resumed, or loaded) in their artifact folders. Returns generators and hypernetworks keyed
    (dataset, variant, seed) and the seconds each pair took in this run."""
    gens, nets, seconds = {}, {}, {}
    for name, z in zoos.items():
        seen = z.tasks.ids("seen")
        for variant in variants:
            for seed in profile.seeds:
                start = time.perf_counter()
                path = generator_path(artifacts, profile, z, variant, seed)
                gens[name, variant, seed] = train_generator(path, z, profile, variant, seed, device, progress=False)[0]
                nets[name, variant, seed] = train_hypernetwork(
                    path.with_name(path.name + "-hypernetwork"), z.theta[seen], z.task_text[f"v_c/{variant}"][seen],
                    gens[name, variant, seed].tokenizer, train_config(profile, seed, len(seen)))
                seconds[f"{name}/{variant}/s{seed}"] = round(time.perf_counter() - start, 1)
    return gens, nets, seconds


def evaluate_methods(zoos: dict[str, Zoo], tests: dict[str, FeatureSet], gens: dict, nets: dict,
                     splits: dict, ddim_steps: int):
    """Every method on every dataset and split. gens/nets keyed (dataset, variant, seed); splits:
    split name -> function zoo -> task ids. Returns per-task scores (one row per dataset, split,
    method, seed, task) and the heads, keyed (dataset, split, method, seed)."""
    frames, heads = [], {}
    bar = tqdm(total=len(zoos) * len(splits), desc="scoring", unit="split")
    for name, z in zoos.items():
        g = {(v, s): gen for (n, v, s), gen in gens.items() if n == name}
        h = {(v, s): net for (n, v, s), net in nets.items() if n == name}
        for split, pick in splits.items():
            bar.set_postfix_str(f"{name}/{split}")
            ids = pick(z)
            found = method_heads(z, ids, g, h, ddim_steps)
            frames.append(score_methods(z, tests[name], ids, found, dataset=name, split=split))
            heads.update({(name, split, method, seed): theta for (method, seed), theta in found.items()})
            bar.update()
    bar.close()
    return pd.concat(frames, ignore_index=True), heads


def novelty_by_method(zoos: dict[str, Zoo], tests: dict[str, FeatureSet], heads: dict, methods, split: str = "unseen"):
    """`evaluate.novelty` of every method in `methods` on every dataset's `split` tasks, averaged over
    tasks and seeds: one row per (dataset, method). heads: keyed (dataset, split, method, seed), as
    `evaluate_methods` returns them. The trained heads' reference is computed once per dataset, and a
    seed-free method's heads (the same under every seed) are scored once."""
    rows, done = [], set()
    for name, z in zoos.items():
        ids = z.tasks.ids(split)
        reference = novelty_reference(z, tests[name], ids)
        for (dataset, part, method, _), theta in heads.items():
            if dataset != name or part != split or method not in methods:
                continue
            if method.startswith(SEED_FREE) and (dataset, method) in done:
                continue
            done.add((dataset, method))
            rows.append(novelty(z, theta, tests[name], ids, reference).assign(dataset=name, method=method))
    return (pd.concat(rows).groupby(["dataset", "method"], sort=False).mean(numeric_only=True)
            .drop(columns=["task"]).reset_index())
