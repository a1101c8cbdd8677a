"""Is diffusion needed? (10_diffusion_vs_regression): T2W against regression and memorisation
baselines, on a zoo with one solution per task and on one with several.

The multi-solution zoo (`zoo.ZooConfig.starts` = M) fine-tunes every task from M θ0*'s; its
start-0 rows are the single-solution zoo of the same tasks (the paper's kind), so the two zoos share
tasks, texts, split and the start-0 heads. On each zoo, trained with the same step budget:
  T2W                       the diffusion generator, `solution_samples` DDIM samples per text
  Hypernetwork              an MLP v_c -> θ regressed by MSE (baselines.train_hypernetwork)
  Ridge                     a linear map v_c -> θ in closed form (generator/ridge.py)
  Hypernetwork (aligned), Ridge (aligned)   the same on the multi-solution zoo with every head
                            permuted to θ0* of start 0 (Git Re-Basin): does canonicalisation make
                            regression enough?
  T2W + L_sym, T2W + permutation augmentation   (multi-solution zoo only: the paper's case for them)
and, the same on both zoos (from the seen heads of start 0: a nearest-text rule cannot tell the
M heads of one text apart): the trained heads, and every reference and memorisation method of the
registry (methods/registry.py: the Universal Model, θ0*, retrieval), plus two memorisation controls
of this study: the nearest seen head plus noise, and the average of the nearest seen heads. Every
closed-form regression of the registry (ridge) is fitted on each zoo view like the hypernetwork.
Scored on unseen tasks by accuracy, distance to the nearest seen head after alignment
(solution_space), spread among samples, and basins hit.
"""

from __future__ import annotations

import dataclasses
import time

import pandas as pd
import torch

from ..generator.from_zoo import train_generator
from ..generator.tokenizers import fit_tokenizer
from ..heads.adapter import task_accuracy
from ..methods import registry
from ..methods.baselines import average_nearest_heads, hypernetwork_heads, noisy_heads, retrieve_heads, train_hypernetwork
from ..methods.registry import HYPERNETWORK, MEMORISATION, REFERENCE, REGRESSION, T2W, TRAINED
from ..pipeline.config import compact_components, generator_config, generator_path, train_config
from ..zoo.model_zoo import Zoo
from . import solution_space

SINGLE, MULTI, ALIGNED = "single", "multi", "multi, aligned"
ZOO_LABEL = {SINGLE: "single-solution", MULTI: "multi-solution"}
# Generator variants: (zoo, method) -> the profile fields set for it. T2W itself takes neither L_sym
# nor permutation augmentation (whatever the profile says), so that each variant adds one of them.
PLAIN = {"lambda_sym": 0.0, "gen_augment": False}
GENERATORS = {(SINGLE, T2W): PLAIN, (MULTI, T2W): PLAIN, (MULTI, "T2W + L_sym"): {**PLAIN, "lambda_sym": 0.1},
              (MULTI, "T2W + permutation augmentation"): {**PLAIN, "gen_augment": True}}
# A regression's zoo view -> the zoo (and the suffix of its method name) it is reported under.
REGRESSION_VIEWS = {SINGLE: (SINGLE, ""), MULTI: (MULTI, ""), ALIGNED: (MULTI, " (aligned zoo)")}
HYPERNETS = {view: (zoo, HYPERNETWORK + suffix) for view, (zoo, suffix) in REGRESSION_VIEWS.items()}


def closed_regressions() -> list[registry.Method]:
    """The registry's closed-form regressions (ridge): fitted on each zoo view when scoring."""
    return [m for m in registry.METHODS if m.kind == REGRESSION and m.closed_form is not None]


def shared_methods() -> list[registry.Method]:
    """The registry's closed-form references and memorisations (the trained heads aside, which each
    zoo has its own of): computed once from the seen heads of start 0 and reported on both zoos."""
    return [m for m in registry.METHODS
            if m.kind in (REFERENCE, MEMORISATION) and m.closed_form is not None and m.name != TRAINED]


def regression_names() -> set[str]:
    """Every regression's name as the study reports it, on each zoo view."""
    return {m.name + suffix for m in registry.METHODS if m.kind == REGRESSION for _, suffix in REGRESSION_VIEWS.values()}


def views(zoo: Zoo) -> dict[str, Zoo]:
    """The multi-solution zoo, its start-0 rows (the single-solution zoo), and its heads aligned to
    θ0* of start 0."""
    if zoo.config.starts < 2:
        raise ValueError(f"{zoo.directory} has {zoo.config.starts} start(s); the study needs a multi-solution zoo")
    n = len(zoo.tasks) // zoo.config.starts
    return {SINGLE: zoo.select(list(range(n)), SINGLE), MULTI: zoo,
            ALIGNED: zoo.with_heads(solution_space.align_to(zoo.theta, zoo.stage1, zoo.spec), "aligned")}


def train_models(artifacts, profile, zoo_views: dict[str, Zoo], device: str = "cpu"):
    """Every generator (GENERATORS) and hypernetwork (HYPERNETS) of the study, trained or resumed in
    its artifact folder with the profile's step budget and first seed. Returns generators keyed
    (zoo, method), hypernetworks with their tokenizers keyed by view, and seconds per model."""
    seed, gens, nets, seconds = profile.seeds[0], {}, {}, {}
    for (view, method), changes in GENERATORS.items():
        prof, start = dataclasses.replace(profile, **changes), time.perf_counter()
        z = zoo_views[view]
        path = generator_path(artifacts, prof, z, "prompt", seed)
        gens[view, method] = train_generator(path, z, generator_config(prof, z, "prompt", seed), device, progress=False)[0]
        seconds[f"{ZOO_LABEL[view]} / {method}"] = round(time.perf_counter() - start, 1)
    for view in HYPERNETS:
        z, start = zoo_views[view], time.perf_counter()
        seen = z.tasks.ids("seen")
        tokenizer = fit_tokenizer(z.theta[seen], z.spec, profile.block_size, profile.tokenizer_mode,
                                  compact_components(profile, len(seen)))
        path = generator_path(artifacts, profile, z, "prompt", seed)
        net = train_hypernetwork(path.with_name(path.name + "-hypernetwork"), z.theta[seen],
                                 z.task_text["v_c/prompt"][seen], tokenizer, train_config(profile, seed, len(seen)))
        nets[view] = (net, tokenizer)
        seconds[f"{ZOO_LABEL[HYPERNETS[view][0]]} / {HYPERNETS[view][1]}"] = round(time.perf_counter() - start, 1)
    return gens, nets, seconds


def method_heads(zoo_views: dict[str, Zoo], gens: dict, nets: dict, profile) -> dict[tuple[str, str], torch.Tensor]:
    """Heads (Q, S, P) for the Q unseen tasks from every method on both zoos, keyed (zoo, method);
    S samples per text (1 for a deterministic method, M for the multi-solution zoo's trained heads)."""
    single, multi = zoo_views[SINGLE], zoo_views[MULTI]
    n, S, seed = len(single.tasks), profile.solution_samples, profile.seeds[0]
    unseen, seen = single.tasks.ids("unseen"), single.tasks.ids("seen")
    v, v_seen, theta_seen = single.task_text["v_c/prompt"][unseen], single.task_text["v_c/prompt"][seen], single.theta[seen]
    nearest = retrieve_heads(v, v_seen, theta_seen)[0]
    sigma = theta_seen.std(0)  # (P,) the spread of the seen heads of one basin
    shared = {m.name: m.closed_form(single, unseen, seen, "prompt").unsqueeze(1) for m in shared_methods()}
    shared[f"Average of {profile.solution_neighbours} nearest"] = average_nearest_heads(
        v, v_seen, theta_seen, profile.solution_neighbours).unsqueeze(1)
    shared.update({f"Nearest + noise (σ = {f:g} sd)": noisy_heads(nearest, f * sigma, S, seed + j)
                   for j, f in enumerate(profile.solution_noise)})
    heads = {(SINGLE, TRAINED): single.theta[unseen].unsqueeze(1),
             (MULTI, TRAINED): torch.stack([multi.theta[[i + m * n for i in unseen]]
                                            for m in range(multi.config.starts)], 1)}
    for zoo_name in (SINGLE, MULTI):
        heads.update({(zoo_name, method): th for method, th in shared.items()})
    for key, gen in gens.items():
        condition = single.task_condition("prompt", unseen, gen.config.condition)
        heads[key] = torch.stack([gen.sample(condition, steps=profile.ddim_steps, seed=seed + s) for s in range(S)], 1)
    for view, (net, tokenizer) in nets.items():
        heads[HYPERNETS[view]] = hypernetwork_heads(net, v, tokenizer).unsqueeze(1)
    for method in closed_regressions():
        for view, (zoo_name, suffix) in REGRESSION_VIEWS.items():
            if view not in zoo_views:
                continue
            z = zoo_views[view]  # the view's task ids are the single zoo's: its rows are start-major
            heads[zoo_name, method.name + suffix] = method.closed_form(z, unseen, z.tasks.ids("seen"), "prompt").unsqueeze(1)
    return heads


def score(zoo_views: dict[str, Zoo], heads: dict[tuple[str, str], torch.Tensor], test) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (zoo, method, task, sample): accuracy, nearest seen head's distance after alignment, and
    basin; and the summary per (zoo, method) with the novelty ratio (that distance over the trained
    heads' own, on the same zoo) and the spread among samples of one text."""
    multi = zoo_views[MULTI]
    unseen = zoo_views[SINGLE].tasks.ids("unseen")
    emb, spec, ref = multi.task_text["class_emb/prompt"], multi.spec, multi.stage1
    classes = [list(zoo_views[SINGLE].tasks.classes[i]) for i in unseen]
    # Every head aligned to start 0's θ0* once (the ALIGNED view); single's seen rows are its first ones.
    aligned = zoo_views[ALIGNED]
    banks = {name: aligned.theta[zoo_views[name].tasks.ids("seen")] for name in (SINGLE, MULTI)}
    rows, spread = [], []
    for (zoo_name, method), th in heads.items():
        Q, S, P = th.shape
        flat = th.reshape(Q * S, P)
        task_classes = zoo_views[SINGLE].tasks.padded([unseen[q] for q in range(Q) for _ in range(S)])
        acc = task_accuracy(flat, test.X, test.y, emb, task_classes, spec)
        flat_aligned = solution_space.align_to(flat, ref, spec)
        nn = solution_space.nearest_distance(flat_aligned, banks[zoo_name])
        basin = solution_space.basin(flat, multi.starts)
        rows += [{"zoo": ZOO_LABEL[zoo_name], "method": method, "task": unseen[q], "sample": s,
                  "accuracy": float(acc[q * S + s]), "nn_distance": float(nn[q * S + s]), "basin": int(basin[q * S + s])}
                 for q in range(Q) for s in range(S)]
        if S >= 2:
            for q, samples in enumerate(flat_aligned.view(Q, S, P)):
                wrong = solution_space.mispredictions(th[q], test, emb, classes[q], spec)
                spread.append({"zoo": ZOO_LABEL[zoo_name], "method": method,
                               **solution_space.sample_spread(samples, wrong)})
    per_sample = pd.DataFrame(rows)
    keys = ["zoo", "method"]
    summary = per_sample.groupby(keys, sort=False).agg(
        samples=("sample", "nunique"), accuracy=("accuracy", "mean"), nn_distance=("nn_distance", "median")).reset_index()
    reference = summary[summary.method == TRAINED].set_index("zoo").nn_distance
    summary["novelty"] = summary.nn_distance / summary.zoo.map(reference)
    basins = per_sample.groupby(keys + ["task"], sort=False).basin.nunique().groupby(keys, sort=False).mean()
    summary = summary.merge(basins.rename("basins_hit").reset_index(), on=keys)
    if spread:
        summary = summary.merge(pd.DataFrame(spread).groupby(keys, sort=False).mean().reset_index(), on=keys, how="left")
    return per_sample, summary


def answer(summary: pd.DataFrame) -> str:
    """The study's answer in one sentence, from its summary table: T2W against the better of the two
    regressions on each zoo, and the novelty each has."""
    parts = []
    for zoo_label in ZOO_LABEL.values():
        rows = summary[summary.zoo == zoo_label].set_index("method")
        regressions = [m for m in rows.index if m in regression_names()]
        best = rows.loc[regressions].accuracy.idxmax()
        gap = 100 * (rows.accuracy[T2W] - rows.accuracy[best])
        parts.append(f"on the {zoo_label} zoo T2W {'beats' if gap > 0 else 'does not beat'} regression "
                     f"({100 * rows.accuracy[T2W]:.1f} vs {100 * rows.accuracy[best]:.1f} % for {best}, "
                     f"{gap:+.1f} pt) at novelty {rows.novelty[T2W]:.2f} against {rows.novelty[best]:.2f} "
                     f"(distance to the nearest seen head over a trained head's)")
    return "Unseen tasks: " + "; ".join(parts) + "."



def start_summary(zoo: Zoo) -> pd.DataFrame:
    """One row per start of a multi-solution zoo: its θ0*'s distance from start 0's (raw and after
    alignment: different basins stay apart when aligned) and its heads' mean accuracy per split."""
    aligned = solution_space.align_to(zoo.starts, zoo.stage1, zoo.spec)
    raw = solution_space.rms_distance(zoo.starts, zoo.stage1.unsqueeze(0)).squeeze(1)
    rows = []
    for m in range(zoo.config.starts):
        row = {"start": m, "seed": zoo.config.stage1_seed(m), "theta0_distance_raw": float(raw[m]),
               "theta0_distance_aligned": float(solution_space.rms_distance(aligned[m:m + 1], zoo.stage1[None])[0, 0])}
        for split in ("seen", "unseen"):
            ids = [i for i in zoo.tasks.ids(split) if int(zoo.start[i]) == m]
            row[f"{split}_accuracy"] = float(zoo.test_accuracy[ids].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def basin_example(zoo_views: dict[str, Zoo], heads: dict[tuple[str, str], torch.Tensor], task: int = 0):
    """For 10's basin figure: the multi-solution zoo's seen heads (T, P) and their starts (T,), and the
    heads each generative or regression method gives for unseen task number `task`, by label."""
    multi = zoo_views[MULTI]
    seen = multi.tasks.ids("seen")
    shown = {f"trained heads ({ZOO_LABEL[MULTI]})": heads[MULTI, TRAINED],
             f"T2W samples ({ZOO_LABEL[SINGLE]} zoo)": heads[SINGLE, T2W],
             f"T2W samples ({ZOO_LABEL[MULTI]} zoo)": heads[MULTI, T2W],
             f"Hypernetwork ({ZOO_LABEL[MULTI]} zoo)": heads[MULTI, HYPERNETWORK],
             "Hypernetwork (aligned zoo)": heads[HYPERNETS[ALIGNED]]}
    return multi.theta[seen], multi.start[seen], {label: th[task] for label, th in shown.items()}
