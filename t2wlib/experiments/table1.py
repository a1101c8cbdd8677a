"""Table 1's comparison (paper §4.2, with the proposal's baselines): heads for the same zoo tasks
from every method of the registry (`methods/registry.py`: the trained heads, the Universal Model,
θ0*, the text-free class-identity baseline, retrieval, ridge, the hypernetwork and T2W), scored alike
by `scoring.head_scores`, and the differences between them with intervals (`difference_pairs`).

A method that reads text is run on each text variant ("prompt" -> -CLIP, "description" -> -NL, the
paper's T2W-CLIP and T2W-NL). Seed-free methods are repeated under every seed, so each row of the
summary averages the same seeds; their heads are scored once.
"""

from __future__ import annotations

import time

import pandas as pd
import torch
from tqdm.std import tqdm  # text bars: tqdm.auto wants ipywidgets in a kernel, and warns without them

from ..data.features import FeatureSet
from ..generator.from_zoo import train_generator
from ..generator.t2w import T2WGenerator
from ..methods import registry
from ..methods.baselines import HyperNetwork, hypernetwork_heads, train_hypernetwork
from ..methods.registry import CLASS_IDS, HYPERNETWORK, RIDGE, T2W, TRAINED, UNIVERSAL, VARIANT_LABEL
from ..pipeline.config import generator_config, generator_path, train_config
from ..zoo.model_zoo import Zoo
from .scoring import head_scores

CEILING = TRAINED


def difference_pairs(variants) -> list[tuple[str, str]]:
    """The accuracy differences Table 1 gives intervals for (`intervals.method_differences`), under each
    text variant: T2W against ridge (what the generator adds to the regression its text path starts
    from), the hypernetwork, the Universal Model and the text-free class-identity baseline; ridge
    against the Universal Model and class identity; and class identity against the Universal Model."""
    label = {name: registry.method_of(name) for name in (T2W, RIDGE, HYPERNETWORK, UNIVERSAL, CLASS_IDS)}
    pairs = []
    for variant in variants:
        t2w, ridge, hyper = (label[n].label(variant) for n in (T2W, RIDGE, HYPERNETWORK))
        pairs += [(t2w, ridge), (t2w, hyper), (t2w, UNIVERSAL), (t2w, CLASS_IDS), (ridge, UNIVERSAL), (ridge, CLASS_IDS)]
    return [*pairs, (CLASS_IDS, UNIVERSAL)]


def method_heads(zoo: Zoo, ids: list[int], generators: dict[tuple[str, int], T2WGenerator],
                 hypernets: dict[tuple[str, int], HyperNetwork], ddim_steps: int) -> dict[tuple[str, int], torch.Tensor]:
    """Heads (len(ids), P) for zoo tasks `ids` from every method and seed, keyed (label, seed).
    generators and hypernets are keyed (text variant, seed); the text variants are the generators'."""
    seeds = sorted({seed for _, seed in generators})
    variants = list(dict.fromkeys(variant for variant, _ in generators))
    seen = zoo.tasks.ids("seen")

    def trained(name: str, variant: str, seed: int) -> torch.Tensor | None:
        v_c = zoo.task_text[f"v_c/{variant}"][ids]
        if name == T2W:
            gen = generators[variant, seed]
            return gen.sample(zoo.task_condition(variant, ids, gen.config.condition), steps=ddim_steps, seed=seed)
        if name == HYPERNETWORK and (variant, seed) in hypernets:
            return hypernetwork_heads(hypernets[variant, seed], v_c, generators[variant, seed].tokenizer)
        return None

    heads = {}
    for method in registry.METHODS:
        for variant in variants if method.reads_text else [None]:
            label = method.label(variant)
            if method.closed_form is not None:  # seed-free: computed once, repeated under every seed
                theta = method.closed_form(zoo, ids, seen, variant)
                heads.update({(label, seed): theta for seed in seeds})
                continue
            for seed in seeds:
                theta = trained(method.name, variant, seed)
                if theta is not None:
                    heads[label, seed] = theta
    return heads


def score_methods(zoo: Zoo, test: FeatureSet, ids: list[int], heads: dict[tuple[str, int], torch.Tensor],
                  **columns) -> pd.DataFrame:
    """One row per (method, seed, task) with accuracy, weight MSE and the per-class counts the intervals
    resample (`head_scores(..., per_class=True)`); `columns` (dataset, split, …) are added to every row."""
    once: dict[str, tuple] = {}  # a seed-free method's heads are the same under every seed: scored once
    frames = []
    order = registry.labels(VARIANT_LABEL)  # every label Table 1 can have, in its row order
    for method, seed in sorted(heads, key=lambda key: (order.index(key[0]), key[1])):
        if not registry.method_of(method).seeded:
            if method not in once:
                once[method] = (heads[method, seed], head_scores(zoo, heads[method, seed], test, ids, per_class=True))
            elif not torch.equal(once[method][0], heads[method, seed]):
                raise ValueError(f"{method} is seed-free but its heads differ under seed {seed}")
            scores = once[method][1]
        else:
            scores = head_scores(zoo, heads[method, seed], test, ids, per_class=True)
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
                gens[name, variant, seed] = train_generator(path, z, generator_config(profile, z, variant, seed), device,
                                                            progress=False)[0]
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


