"""Training a T2W generator from a zoo (paper §3.5, §4.1): the definition a profile asks for, the
seen tasks it trains on, where the pipeline keeps it, and the run itself, which fits the tokenizer,
trains (or resumes) the denoiser with train.Trainer and exports the inference files that
generator.T2WGenerator loads. Apart from generator.py, so that loading and sampling a generator (and
the text -> classifier path) import no training code.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .cache import atomic_write_text, save_sealed, write_json_once
from .dit import build_denoiser
from .generator import CURVES_FILE, EMA_FILE, GENERATOR_FILE, TOKENIZER_FILE, GeneratorConfig, T2WGenerator
from .train import TrainConfig, Trainer
from .weight_tokenizer import WeightTokenizer

if TYPE_CHECKING:  # annotations only
    from .zoo import Zoo


def train_config(profile, seed: int, train_tasks: int) -> TrainConfig:
    """The TrainConfig a profile (t2wlib.profiles.Profile) asks for, on `train_tasks` zoo heads: its
    `gen_epochs`, or with `gen_steps` set, the epochs closest to that many steps (so a 4,000-task zoo
    and a 1,000-task one get the same step budget)."""
    epochs = profile.gen_epochs
    if profile.gen_steps is not None:
        epochs = max(1, round(profile.gen_steps / max(1, train_tasks // profile.gen_batch_size)))
    return TrainConfig(epochs=epochs, batch_size=profile.gen_batch_size, lambda_sym=profile.lambda_sym,
                       sym_batch=profile.sym_batch, lambda_adv=profile.lambda_adv, augment=profile.gen_augment,
                       text_dropout=profile.text_dropout, checkpoint_every=profile.checkpoint_every, seed=seed)


def seen_split(zoo: Zoo, profile) -> tuple[list[int], list[int]]:
    """The seen task ids a generator trains on, and the `gen_validation_tasks` seen ids held out of
    its training (the last ones: the task order is random already). Generator settings are chosen
    on the held-out seen tasks, never on the unseen tasks that report results (04_ablation)."""
    seen, n = zoo.tasks.ids("seen"), profile.gen_validation_tasks
    if not 0 <= n <= len(seen) - profile.gen_batch_size:
        raise ValueError(f"gen_validation_tasks = {n} must be in [0, {len(seen) - profile.gen_batch_size}]: the zoo has "
                         f"{len(seen)} seen tasks and training needs gen_batch_size = {profile.gen_batch_size}")
    return seen[:len(seen) - n], seen[len(seen) - n:]


def generator_config(profile, zoo: Zoo, variant: str, seed: int) -> GeneratorConfig:
    """The definition of the generator a profile trains on a zoo's `variant` text vectors."""
    return GeneratorConfig(
        spec=zoo.spec, block_size=profile.block_size,
        tokenizer=profile.tokenizer_mode, dit=profile.dit, diffusion_steps=profile.diffusion_steps,
        schedule=profile.noise_schedule, prediction=profile.prediction, text_variant=variant,
        text_dim=zoo.task_text[f"v_c/{variant}"].shape[1], text_encoder=zoo.source.get("text_encoder"),
        backbone=zoo.source.get("backbone"), image_size=profile.image_size, dataset=zoo.source.get("dataset"),
        zoo=zoo.name, k_range=tuple(zoo.config.k_range), validation_tasks=profile.gen_validation_tasks,
        seed=seed, train=dataclasses.asdict(train_config(profile, seed, len(seen_split(zoo, profile)[0]))))


def generator_path(artifacts, profile, zoo: Zoo, variant: str, seed: int) -> Path:
    """Where the pipeline keeps a generator: keyed by everything that defines it."""
    cfg = generator_config(profile, zoo, variant, seed)
    return Path(artifacts) / "generator" / profile.name / f"{cfg.dataset}-{variant}-s{seed}-{cfg.digest()[:10]}"


def train_generator(directory: str | Path, zoo: Zoo, profile, variant: str = "prompt", seed: int = 42,
                    device: str = "cpu", progress: bool = True) -> tuple[T2WGenerator, list[dict]]:
    """Fit the tokenizer on the zoo's seen tasks (less the validation tasks, `seen_split`), train (or
    resume) the DiT on them, export the EMA weights and the loss curve, and return the generator
    with its loss curves. Killed at any point, a rerun resumes to the same bits (train.py)."""
    directory = Path(directory)
    cfg = generator_config(profile, zoo, variant, seed)
    seen = seen_split(zoo, profile)[0]
    directory.mkdir(parents=True, exist_ok=True)
    try:
        write_json_once(directory / GENERATOR_FILE, cfg.to_json(), "generator definition")
    except ValueError as err:
        raise ValueError(f"{directory} holds a generator with another definition ({err}); use a new directory "
                         "(generator_path keys folders by definition)") from None
    definition = {"definition": cfg.digest()}
    tokenizer = WeightTokenizer.fit(zoo.theta[seen], zoo.spec, profile.block_size, profile.tokenizer_mode)
    save_sealed(directory / TOKENIZER_FILE, tokenizer.state_dict(), definition)
    torch.manual_seed(seed)
    model = build_denoiser(profile.dit, tokenizer.num_tokens, profile.block_size, cfg.text_dim)
    model.fit_text_norm(zoo.task_text[f"v_c/{variant}"][seen])
    trainer = Trainer(model, cfg.diffusion(), tokenizer, tokenizer.encode(zoo.theta[seen]).float(),
                      zoo.task_text[f"v_c/{variant}"][seen], train_config(profile, seed, len(seen)), directory, device)
    curves = trainer.fit(progress=progress)
    if trainer.rank == 0:  # the inference files, from the final checkpoint's state
        save_sealed(directory / EMA_FILE, trainer.ema.state_dict(), {**definition, "step": str(trainer.step)})
        atomic_write_text(directory / CURVES_FILE, "".join(json.dumps(r) + "\n" for r in curves))
    return T2WGenerator.load(directory, device), curves
