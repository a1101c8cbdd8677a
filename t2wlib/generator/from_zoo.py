"""Training a T2W generator from a zoo (paper §3.5, §4.1), given its definition (`GeneratorConfig`):
the seen tasks it trains on, and the run itself, which fits the tokenizer, trains (or resumes) the
denoiser with `trainer.Trainer` and exports the inference files that `t2w.T2WGenerator` loads. Apart
from t2w.py, so that loading and sampling a generator (and the text -> classifier path) import no
training code. `pipeline/config.py` resolves a profile into the definition.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..core.files import atomic_write_text, write_json_once
from ..core.sealed import save_sealed
from ..heads.adapter import TaskLossTerm
from .denoisers import build_denoiser
from .t2w import CURVES_FILE, EMA_FILE, GENERATOR_FILE, TOKENIZER_FILE, GeneratorConfig, T2WGenerator
from .ridge import fit_ridge
from .tokenizers import fit_tokenizer
from .trainer import TrainConfig, Trainer

if TYPE_CHECKING:  # annotations only
    from ..data.features import FeatureSet
    from ..zoo.model_zoo import Zoo


def training_tasks(zoo: Zoo, validation_tasks: int, batch_size: int) -> tuple[list[int], list[int]]:
    """The seen task ids a generator trains on, and the `validation_tasks` seen ids held out of its
    training (the last ones: the task order is random already). Generator settings are chosen on the
    held-out seen tasks, never on the unseen tasks that report results (04_ablation)."""
    seen, n = zoo.tasks.ids("seen"), validation_tasks
    if not 0 <= n <= len(seen) - batch_size:
        raise ValueError(f"gen_validation_tasks = {n} must be in [0, {len(seen) - batch_size}]: the zoo has "
                         f"{len(seen)} seen tasks and training needs gen_batch_size = {batch_size}")
    return seen[:len(seen) - n], seen[len(seen) - n:]


def task_loss_term(zoo: Zoo, train: FeatureSet, task_ids: list[int], text_variant: str = "prompt") -> TaskLossTerm:
    """The task loss for heads of the seen tasks `task_ids`: their cross-entropy on the zoo's training
    features `train` (the samples the zoo's own heads were fitted on), against the variant's class embeddings."""
    return TaskLossTerm(zoo.spec, train.X, train.y, zoo.task_text[f"class_emb/{text_variant}"], zoo.tasks.padded(task_ids))


def train_generator(directory: str | Path, zoo: Zoo, cfg: GeneratorConfig, device: str = "cpu",
                    progress: bool = True, probe_steps: tuple[int, ...] = (),
                    probe: Callable[[int, T2WGenerator, list[dict]], None] | None = None,
                    train_features: FeatureSet | None = None) -> tuple[T2WGenerator, list[dict]]:
    """Fit the tokenizer on the zoo's seen tasks (less the validation tasks, `training_tasks`), train
    (or resume) the denoiser on them, export the EMA weights and the loss curve, and return the
    generator with its loss curves. Killed at any point, a rerun resumes to the same bits (trainer.py).

    `probe(step, generator, curves)` is called with the EMA weights and the loss records as they are
    after each of `probe_steps` still ahead of the run (a convergence study's learning curve); it does not change the training.
    A definition with a task loss (`lambda_task` > 0) needs the zoo's training features, `train_features`."""
    directory = Path(directory)
    train = TrainConfig(**cfg.train)
    seen = training_tasks(zoo, cfg.validation_tasks, train.batch_size)[0]
    condition = zoo.task_condition(cfg.text_variant, seen, cfg.condition)  # (T, D) or (T, k_max, D)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        write_json_once(directory / GENERATOR_FILE, cfg.to_json(), "generator definition")
    except ValueError as err:
        raise ValueError(f"{directory} holds a generator with another definition ({err}); use a new directory "
                         "(pipeline.config.generator_path keys folders by definition)") from None
    definition = {"definition": cfg.digest()}
    tokenizer = fit_tokenizer(zoo.theta[seen], zoo.spec, cfg.block_size, cfg.tokenizer, cfg.components)
    save_sealed(directory / TOKENIZER_FILE, tokenizer.state_dict(), definition)
    torch.manual_seed(cfg.seed)
    model = build_denoiser(cfg.dit, tokenizer.num_tokens, cfg.block_size, cfg.text_dim, cfg.text_path,
                           cfg.class_slots())
    model.fit_text_norm(condition)
    x0 = tokenizer.encode(zoo.theta[seen]).float()  # (T, N, s)
    if cfg.text_path:  # ridge on the flat tokens; a resumed run overwrites it with the checkpoint's
        model.init_text_path(fit_ridge(model.pooled(condition), (x0 * tokenizer.mask).flatten(1)))
    if train.lambda_task > 0 and train_features is None:
        raise ValueError(f"the generator's lambda_task = {train.lambda_task} needs the zoo's training features")
    task_loss = None if train_features is None else task_loss_term(zoo, train_features, seen, cfg.text_variant)
    trainer = Trainer(model, cfg.diffusion(), tokenizer, x0, condition, train, directory, device, task_loss)
    trainer.load_checkpoint()  # where a resumed run stands, so that only the probes ahead of it run
    for stop in sorted(s for s in set(probe_steps) if trainer.step < s < trainer.total_steps):
        trainer.fit(max_steps=stop - trainer.step, progress=progress)
        if probe is not None and trainer.rank == 0:
            probe(trainer.step, T2WGenerator(trainer.ema, trainer.diffusion, tokenizer, cfg, directory), trainer.curves())
    curves = trainer.fit(progress=progress)
    if trainer.rank == 0:  # the inference files, from the final checkpoint's state
        save_sealed(directory / EMA_FILE, trainer.ema.state_dict(), {**definition, "step": str(trainer.step)})
        atomic_write_text(directory / CURVES_FILE, "".join(json.dumps(r) + "\n" for r in curves))
    return T2WGenerator.load(directory, device), curves
