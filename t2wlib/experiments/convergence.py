"""The convergence study (scripts/convergence_study.py -> figures/<profile>/convergence.*): does T2W
learn when it is trained longer, with a token shape that can carry its weights, and which training
levers help? Everything is scored on the zoo's *validation* seen tasks (held out of every model's
training), never on the unseen tasks that report results, so the settings it picks are honest.

Two parts:
  * curves (`curve_rows`, run by 02_train on the profile's first dataset): the profile's generator
    and its ε twin at each width of `convergence_dits`, each trained for the largest of the profile's
    `convergence_steps`, their EMA weights scored at every budget on the way (a learning curve: the
    learning rate at an intermediate budget is that of the long run's cosine schedule, not of a run
    that ends there), and the hypernetwork trained for each budget;
  * levers (scripts/convergence_study.py, `make convergence`): one change at a time from a base
    generator, each trained `LEVER_STEPS` steps and scored.
Reference lines: the trained heads (the ceiling), ridge regression, the Universal Model, θ0* (the
head every zoo head starts from) and the trained heads projected on the compact token space.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from ..core.files import atomic_write_text
from ..data.features import FeatureSet
from ..generator.dit import DIT_SIZES
from ..generator.from_zoo import task_loss_term, train_generator
from ..generator.pca_tokenizer import PCA_MODES, WHITENED_MODE
from ..generator.ridge import fit_ridge
from ..generator.t2w import T2WGenerator
from ..generator.tokenizers import fit_tokenizer
from ..methods.baselines import hypernetwork_heads, train_hypernetwork
from ..pipeline.profile_checks import check_profile
from ..pipeline.config import (compact_components, generator_config, generator_path, seen_split, train_config,
                               train_steps)
from ..zoo.model_zoo import Zoo
from .scoring import head_scores

PREDICTION_NAMES = {"x0": "x0", "eps": "ε", "v": "v"}

LEVER_STEPS = 2400
# The compact token space the levers started from: the seen heads' top 512 principal components,
# whitened, in tokens of 32 (pca_tokenizer.py).
COMPACT = {"tokenizer_mode": "pca", "gen_components": 512, "tasks_per_component": 0, "block_size": 32}
BASE = {**COMPACT, "prediction": "x0", "text_path": True, "dit": "cpu-small"}
# What the cpu profile took from the levers below: one global scale, at most one component per 10 seen tasks.
ADOPTED = {**BASE, "tokenizer_mode": "pca-global", "tasks_per_component": 10}
# Weight of the task loss where a model trains through it (its cross-entropy is about the size of L_diff).
TASK_LOSS_WEIGHT = 1.0
# One change each from LEVER_BASE, the cheaper of the two widths (the curves show them level).
LEVER_BASE = {**BASE, "dit": "tiny"}
LEVERS = {
    "base (compact, x0, text path, h 32)": {},
    "width 128 (cpu-small)": {"dit": "cpu-small"},
    "block tokens, no text path (the previous cpu generator)": {"tokenizer_mode": "standard", "block_size": 256,
                                                                "text_path": False},
    "no text path": {"text_path": False},
    "v-prediction, no text path": {"prediction": "v", "text_path": False},
    "min-SNR γ = 5": {"min_snr": 5.0},
    "2 noise draws per text": {"noise_draws": 2},
    "256 components": {"gen_components": 256},
    "1024 components": {"gen_components": 1024},
    "block tokens (standard, 256), text path": {"tokenizer_mode": "standard", "block_size": 256},
    "ε-prediction, width 128": {"prediction": "eps", "text_path": False, "dit": "cpu-small"},
    f"task loss on the x0 estimate (λ = {TASK_LOSS_WEIGHT:g})": {"lambda_task": TASK_LOSS_WEIGHT},
    "one global scale (pca-global), not whitened": {"tokenizer_mode": "pca-global"},
    "pca-global, at most 1 component per 10 seen tasks": {"tokenizer_mode": "pca-global", "tasks_per_component": 10},
    "pca-global, 1 per 10 seen tasks, width 128 (the cpu generator)": {**ADOPTED, "dit": "cpu-small"},
    "conditioned on the set of class embeddings (one token per class)": {"condition": "classes"},
    "the cpu generator conditioned on the set of class embeddings": {**ADOPTED, "dit": "cpu-small",
                                                                     "condition": "classes"},
}


# The ε twin's tokens where the profile's are compact: every one of `gen_components`, whitened (one
# scale per component). ε learns there faster than in the profile's own space (fewer components
# under one global scale): convergence_eps_tokens compares the three, trained alike.
EPS_TOKENS = {"tokenizer_mode": WHITENED_MODE, "tasks_per_component": 0}


def eps_twin(profile, dit: str, own_tokens: bool = False) -> dict:
    """The overrides that turn `profile` into its ε twin at width `dit`: ε-prediction without the
    linear text path (an x0 term), on `EPS_TOKENS` where the profile's tokens are compact (block
    tokens stay the profile's); with `own_tokens`, on the profile's tokens whatever they are."""
    tokens = EPS_TOKENS if profile.tokenizer_mode in PCA_MODES and not own_tokens else {}
    return {"dit": dit, "prediction": "eps", "text_path": False, **tokens}


def curve_models(profile) -> dict[str, dict]:
    """The generators the curves trace, by name, as overrides of `profile`: at each width of
    `convergence_dits`, the profile's own generator and its ε twin (`eps_twin`), which is Figure 3's
    other generator where the width is `figure3_dit`."""
    models = {}
    for dit in profile.convergence_dits:
        width = f"h {DIT_SIZES[dit].hidden}"
        own = " (the profile's generator)" if dit == profile.dit else ""
        path = " + text path" if profile.text_path else ""
        models[f"T2W {PREDICTION_NAMES[profile.prediction]}{path}, {width}{own}"] = {"dit": dit}
        if profile.prediction != "eps":
            models[f"T2W ε, {width}"] = eps_twin(profile, dit)
    return models


def curve_rows(artifacts, profile, zoo: Zoo, test: FeatureSet, device: str = "cpu",
               written: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """The curves: every model of `curve_models` trained (or resumed) to the largest of the profile's
    `convergence_steps` and scored at each, then the hypernetwork in the profile's token space at
    each budget; `written(rows)` after each model, so that a caller can write what is finished."""
    steps, rows = profile.convergence_steps, []
    for name, overrides in curve_models(profile).items():
        rows += generator_rows(artifacts, study_profile(profile, overrides, max(steps)), zoo, test, name, steps, device)
        if written is not None:
            written(rows)
    rows += hypernetwork_rows(artifacts, study_profile(profile, {}, max(steps)), zoo, test, steps)
    if written is not None:
        written(rows)
    return rows


def study_profile(profile, overrides: dict, steps: int | None):
    """The profile a studied model trains with: its validation tasks held out (the ablation's count),
    `steps` steps (None: the profile's `gen_epochs`), and the overrides."""
    base = dataclasses.replace(profile, gen_validation_tasks=profile.ablation_validation_tasks, gen_steps=steps,
                               seeds=profile.seeds[:1])
    studied = dataclasses.replace(base, **overrides)
    check_profile(studied)
    return studied


def reference_scores(zoo: Zoo, test: FeatureSet, train_ids: list[int], val_ids: list[int],
                     components: int, block_size: int) -> dict[str, float]:
    """Mean validation accuracy of the reference heads: trained, ridge (fitted on `train_ids`), the
    Universal Model, θ0*, and the trained heads projected on a compact tokenizer of `components` (if > 0)."""
    v = zoo.task_text["v_c/prompt"]
    ridge = fit_ridge(v[train_ids], zoo.theta[train_ids])
    heads = {"ridge": ridge(v[val_ids]), "θ0*": zoo.starts[0].expand(len(val_ids), -1)}
    if components:  # (0: block tokens, which carry every weight)
        compact = fit_tokenizer(zoo.theta[train_ids], zoo.spec, block_size, "pca", components)
        heads[f"trained, projected on {components} components"] = compact.decode(compact.encode(zoo.theta[val_ids]))
    out = {"trained (ceiling)": float(zoo.test_accuracy[val_ids].mean()),
           "Universal": float(zoo.universal_accuracy[val_ids].mean())}
    out.update({name: float(head_scores(zoo, theta, test, val_ids).accuracy.mean()) for name, theta in heads.items()})
    return out


@torch.no_grad()
def validation_loss(gen: T2WGenerator, zoo: Zoo, val_ids: list[int], seed: int = 0) -> float:
    """L_diff of the generator on the validation tasks, at fixed (t, ε) draws (the same for every probe)."""
    g = torch.Generator().manual_seed(seed)
    x0 = gen.tokenizer.encode(zoo.theta[val_ids]).float()
    t = torch.randint(0, gen.diffusion.num_steps, (len(x0),), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    gen.model.eval()
    condition = zoo.task_condition("prompt", val_ids, gen.config.condition).float()
    out = gen.diffusion.training_losses(gen.model, x0, t, {"v_c": condition},
                                        noise=noise, mask=gen.tokenizer.mask)
    return float(out["loss"].mean())


def score_generator(gen: T2WGenerator, zoo: Zoo, test: FeatureSet, val_ids: list[int], ddim_steps: int,
                    seed: int) -> dict[str, float]:
    """Validation accuracy of DDIM samples and of the first x0-estimate (from pure noise), and the loss."""
    condition = zoo.task_condition("prompt", val_ids, gen.config.condition)
    theta, trajectory = gen.sample(condition, steps=ddim_steps, seed=seed, record=True)
    return {"accuracy": float(head_scores(zoo, theta, test, val_ids).accuracy.mean()),
            "first_x0_accuracy": float(head_scores(zoo, trajectory[0][1], test, val_ids).accuracy.mean()),
            "validation_loss": validation_loss(gen, zoo, val_ids)}


def generator_rows(artifacts, profile, zoo: Zoo, test: FeatureSet, name: str, budgets: tuple[int, ...],
                   device: str = "cpu", train: FeatureSet | None = None) -> list[dict]:
    """Train (or resume) one generator of `profile` to the largest budget, scoring it at each budget.
    Each score is appended to artifacts/convergence/<generator folder>.jsonl as it is made, so that
    a study killed mid-run and resumed keeps the scores of the budgets it had passed; `process_s` is
    the seconds from the start of the process that scored that budget (training, probes and set-up;
    a resumed model's counts from its resume, not from step 0). `train`:
    the zoo's training features, which a profile with a task loss needs."""
    seed = profile.seeds[0]
    val_ids = seen_split(zoo, profile)[1]
    directory = generator_path(artifacts, profile, zoo, "prompt", seed)
    log = score_log(artifacts, profile, zoo)
    rows = logged_rows(artifacts, profile, zoo, name)
    start, done = time.perf_counter(), {r["step"] for r in rows}

    def probe(step, gen, curves):
        if step in done:
            return
        recent = [r["diff"] for r in curves[-100:]]
        rows.append({"model": name, "step": step, "train_loss": sum(recent) / len(recent),
                     "process_s": round(time.perf_counter() - start, 1),
                     **score_generator(gen, zoo, test, val_ids, profile.ddim_steps, seed)})
        log.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(log, "".join(json.dumps(r) + "\n" for r in rows))
        print(rows[-1], flush=True)

    definition = generator_config(profile, zoo, "prompt", seed)
    gen, curves = train_generator(directory, zoo, definition, device, progress=False, probe_steps=budgets[:-1],
                                  probe=probe, train_features=train)
    probe(curves[-1]["step"], gen, curves)
    return [{**r, "model": name} for r in sorted(rows, key=lambda r: r["step"])]


def score_log(artifacts, profile, zoo: Zoo) -> Path:
    """Where `generator_rows` keeps the scores of the profile's generator (first seed) on `zoo`."""
    return Path(artifacts) / "convergence" / f"{generator_path(artifacts, profile, zoo, 'prompt', profile.seeds[0]).name}.jsonl"


def logged_rows(artifacts, profile, zoo: Zoo, name: str) -> list[dict]:
    """The scores `generator_rows` has logged so far for the profile's generator, without training."""
    log = score_log(artifacts, profile, zoo)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [{**r, "model": name} for r in rows]


def hypernetwork_rows(artifacts, profile, zoo: Zoo, test: FeatureSet, budgets: tuple[int, ...],
                      train: FeatureSet | None = None) -> list[dict]:
    """The hypernetwork (in the compact token space of `profile`) trained for each budget, scored on
    the validation tasks: one run per budget (it is cheap), each with its own schedule. Given the
    zoo's training features `train`, it trains through the task loss as well (`task_loss_term`)."""
    train_ids, val_ids = seen_split(zoo, profile)
    v = zoo.task_text["v_c/prompt"]
    tokenizer = fit_tokenizer(zoo.theta[train_ids], zoo.spec, profile.block_size, profile.tokenizer_mode,
                              compact_components(profile, len(train_ids)))
    term = None if train is None else task_loss_term(zoo, train, train_ids)
    name, folder = ("hypernetwork", "hypernetwork") if term is None else ("hypernetwork + task loss", "task-loss")
    weight = 0.0 if term is None else TASK_LOSS_WEIGHT
    rows = []
    for steps in budgets:
        budget = dataclasses.replace(profile, gen_steps=steps, lambda_task=weight)
        cfg = train_config(budget, profile.seeds[0], len(train_ids))
        start = time.perf_counter()  # (0 when loaded from an earlier run)
        # one folder per zoo, loss, token mode and budget (the folder's definition check covers the rest)
        key = f"{zoo.name.replace('/', '-')}-{folder}-{profile.tokenizer_mode}-{steps}"
        net = train_hypernetwork(Path(artifacts) / "convergence" / key, zoo.theta[train_ids], v[train_ids], tokenizer,
                                 cfg, task_loss=term)
        theta = hypernetwork_heads(net, v[val_ids], tokenizer)
        rows.append({"model": name, "step": train_steps(budget, len(train_ids)),
                     "process_s": round(time.perf_counter() - start, 1),
                     "accuracy": float(head_scores(zoo, theta, test, val_ids).accuracy.mean())})
        print(rows[-1], flush=True)
    return rows


def plateau_table(curves: pd.DataFrame) -> pd.DataFrame:
    """Per model: the best validation accuracy, the step it came at, and the gain of the last budget
    over the one before (near 0: plateaued; > 0: still rising)."""
    out = []
    for model, part in curves.groupby("model", sort=False):
        part = part.sort_values("step")
        best = part.loc[part.accuracy.idxmax()]
        last_gain = float(part.accuracy.iloc[-1] - part.accuracy.iloc[-2]) if len(part) > 1 else float("nan")
        out.append({"model": model, "best_accuracy": float(best.accuracy), "best_step": int(best.step),
                    "last_step": int(part.step.iloc[-1]), "last_accuracy": float(part.accuracy.iloc[-1]),
                    "gain_over_previous_budget": last_gain})
    return pd.DataFrame(out)
