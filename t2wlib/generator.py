"""The T2W generator as one object: tokenizer + DiT (EMA weights) + diffusion, built from a zoo,
trained, saved as a folder, loaded with shape checks, and sampled: v_c (B, D) -> heads θ (B, P).

A generator folder holds
    generator.json           the GeneratorConfig (checked JSON): head spec, tokenizer, DiT size,
                             diffusion, text encoder, backbone, image size, trained k range
    tokenizer.safetensors    the fitted weight tokenizer (sealed, tied to generator.json's digest)
    checkpoint-<step>.safetensors   the trainer's resumable state, the last two (train.py)
    ema.safetensors          the EMA weights for sampling, written when training finishes (sealed)
    curves.jsonl             the loss record of every step, for readers
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .cache import (CorruptArtifactError, atomic_write_text, key_digest, load_sealed, read_json_checked, save_sealed,
                    write_json_once)
from .diffusion import GaussianDiffusion, get_betas
from .dit import Denoiser, build_denoiser, guided
from .weight_tokenizer import WeightTokenizer
from .train import TrainConfig, Trainer, checkpoint_files

if TYPE_CHECKING:  # annotations only: sampling needs no zoo code
    from .zoo import Zoo

SAMPLERS = ("ddim", "ddpm")


def train_config(profile, seed: int) -> TrainConfig:
    """The TrainConfig a profile (t2wlib.profiles.Profile) asks for."""
    return TrainConfig(epochs=profile.gen_epochs, batch_size=profile.gen_batch_size, lambda_sym=profile.lambda_sym,
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


FORMAT = "t2w-generator/3"


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that defines a generator, stored as its folder's generator.json (checked JSON)."""

    spec: tuple[int, int, int]  # head (F, r, D)
    block_size: int
    tokenizer: str
    dit: str
    diffusion_steps: int
    schedule: str
    prediction: str
    text_variant: str
    text_dim: int
    text_encoder: str | None
    backbone: str | None
    image_size: int
    dataset: str | None
    zoo: str
    k_range: tuple[int, int]  # the task sizes it was trained on
    validation_tasks: int
    seed: int
    train: dict  # TrainConfig's fields
    format: str = FORMAT

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_json(cls, record: dict, path: Path | str = "generator.json") -> GeneratorConfig:
        """Parse and check a generator.json record; errors name the file, the field and what is allowed."""
        if record.get("format") != FORMAT:
            raise ValueError(f"{path}: format {record.get('format')!r} is not {FORMAT!r}; retrain the generator "
                             "with this version of t2w")
        names = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(names - set(record)), sorted(set(record) - names)
        if missing or unknown:
            raise ValueError(f"{path}: missing fields {missing}, unknown fields {unknown}; expected {sorted(names)}")
        cfg = cls(**{**record, "spec": tuple(record["spec"]), "k_range": tuple(record["k_range"])})
        from .backbones import BACKBONES
        from .text_encoders import TEXT_ENCODERS

        for field, registry in (("backbone", BACKBONES), ("text_encoder", TEXT_ENCODERS)):
            value = getattr(cfg, field)
            if value is not None and value not in registry.names():
                raise ValueError(f"{path}: unknown {field} {value!r}; allowed: {', '.join(registry.names())}")
        return cfg

    def digest(self) -> str:
        return key_digest(self.to_json())


def generator_config(profile, zoo: Zoo, variant: str, seed: int) -> GeneratorConfig:
    """The definition of the generator a profile trains on a zoo's `variant` text vectors."""
    return GeneratorConfig(
        spec=(zoo.spec.feature_dim, zoo.spec.hidden, zoo.spec.embed_dim), block_size=profile.block_size,
        tokenizer=profile.tokenizer_mode, dit=profile.dit, diffusion_steps=profile.diffusion_steps,
        schedule=profile.noise_schedule, prediction=profile.prediction, text_variant=variant,
        text_dim=zoo.task_text[f"v_c/{variant}"].shape[1], text_encoder=zoo.source.get("text_encoder"),
        backbone=zoo.source.get("backbone"), image_size=profile.image_size, dataset=zoo.source.get("dataset"),
        zoo=str(zoo.directory.name), k_range=tuple(zoo.config.k_range), validation_tasks=profile.gen_validation_tasks,
        seed=seed, train=dataclasses.asdict(train_config(profile, seed)))


def generator_path(artifacts, profile, zoo: Zoo, variant: str, seed: int) -> Path:
    """Where the pipeline keeps a generator: keyed by everything that defines it."""
    cfg = generator_config(profile, zoo, variant, seed)
    return Path(artifacts) / "generator" / profile.name / f"{cfg.dataset}-{variant}-s{seed}-{cfg.digest()[:10]}"


def _diffusion(cfg: GeneratorConfig) -> GaussianDiffusion:
    # x0 estimates are clipped to the minmax tokens' range; standardised tokens are unbounded.
    clip = 1.0 if cfg.tokenizer == "minmax" else None
    return GaussianDiffusion(get_betas(cfg.schedule, cfg.diffusion_steps), cfg.prediction, clip_x0=clip)


GENERATOR_FILE, TOKENIZER_FILE, EMA_FILE, CURVES_FILE = ("generator.json", "tokenizer.safetensors", "ema.safetensors",
                                                       "curves.jsonl")


@dataclass
class T2WGenerator:
    """A trained generator; `model` holds the EMA weights for sampling."""

    model: Denoiser
    diffusion: GaussianDiffusion
    tokenizer: WeightTokenizer
    config: GeneratorConfig

    @torch.no_grad()
    def sample(self, v_c: torch.Tensor, sampler: str = "ddim", steps: int = 20, guidance: float = 1.0,
               seed: int = 0, record: bool = False):
        """Heads θ (B, P) for task text vectors v_c (B, D); with record=True also the decoded
        x0-estimate θ̂ (B, P) at every sampling step, as a list of (t, θ̂)."""
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")
        if v_c.ndim != 2 or v_c.shape[1] != self.model.text_dim:
            raise ValueError(f"v_c must be (B, {self.model.text_dim}), got {tuple(v_c.shape)}")
        if not torch.isfinite(v_c).all():
            raise ValueError("text vector v_c holds NaN or inf values; check the text embeddings")
        if not math.isfinite(guidance):
            raise ValueError(f"guidance scale {guidance} is not a finite number; allowed: any finite value (1 = off)")
        if sampler == "ddim" and not 1 <= steps <= self.diffusion.num_steps:
            raise ValueError(f"DDIM steps {steps} out of range; allowed: 1 to {self.diffusion.num_steps}")
        device = next(self.model.parameters()).device
        self.model.eval()
        shape = (len(v_c), self.tokenizer.num_tokens, self.tokenizer.block_size)
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)
        kwargs = dict(model_kwargs={"v_c": v_c.float().to(device)}, noise=noise, record=record,
                      generator=torch.Generator(device=device).manual_seed(seed + 1))
        fn = guided(self.model, guidance)
        if sampler == "ddim":
            out = self.diffusion.ddim_sample_loop(fn, shape, steps=steps, **kwargs)
        else:
            out = self.diffusion.p_sample_loop(fn, shape, **kwargs)
        mask = self.tokenizer.mask.to(device)
        if not record:
            return self.tokenizer.decode((out * mask).cpu())
        x, trajectory = out
        return self.tokenizer.decode((x * mask).cpu()), [(t, self.tokenizer.decode((x0 * mask).cpu())) for t, x0 in trajectory]

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> T2WGenerator:
        """Load a finished generator folder: generator.json, tokenizer and EMA weights, each verified
        (checksums, the definition they were written for, every shape)."""
        directory = Path(directory)
        if not (directory / GENERATOR_FILE).exists():
            raise FileNotFoundError(f"not a T2W generator folder (no {GENERATOR_FILE}): {directory}")
        cfg = GeneratorConfig.from_json(read_json_checked(directory / GENERATOR_FILE, "generator definition"),
                                        directory / GENERATOR_FILE)
        if not (directory / EMA_FILE).exists():
            done = checkpoint_files(directory)
            raise FileNotFoundError(f"the generator in {directory} has not finished training ({len(done)} checkpoint(s), "
                                    f"no {EMA_FILE}); run its training again to resume it")
        tok_state, tok_meta = load_sealed(directory / TOKENIZER_FILE, "generator tokenizer")
        state, ema_meta = load_sealed(directory / EMA_FILE, "generator weights")
        for path, meta in ((directory / TOKENIZER_FILE, tok_meta), (directory / EMA_FILE, ema_meta)):
            if meta.get("definition") != cfg.digest():
                raise CorruptArtifactError(f"{path} was written for another generator definition than "
                                           f"{directory / GENERATOR_FILE}; retrain the generator in a new folder")
        tokenizer = WeightTokenizer.from_state({"spec": list(cfg.spec), "block_size": cfg.block_size, "mode": cfg.tokenizer},
                                               tok_state)
        model = build_denoiser(cfg.dit, tokenizer.num_tokens, cfg.block_size, cfg.text_dim)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if expected != found:
            diff = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
            raise ValueError(f"{directory / EMA_FILE} does not fit {GENERATOR_FILE} "
                             f"(DiT {cfg.dit}, {tokenizer.num_tokens} tokens of {cfg.block_size}, "
                             f"text dim {cfg.text_dim}); mismatched tensors: {diff[:5]}")
        model.load_state_dict(state)
        return cls(model.to(device).eval(), _diffusion(cfg), tokenizer, cfg)


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
    trainer = Trainer(model, _diffusion(cfg), tokenizer, tokenizer.encode(zoo.theta[seen]).float(),
                      zoo.task_text[f"v_c/{variant}"][seen], train_config(profile, seed), directory, device)
    curves = trainer.fit(progress=progress)
    if trainer.rank == 0:  # the inference files, from the final checkpoint's state
        save_sealed(directory / EMA_FILE, trainer.ema.state_dict(), {**definition, "step": str(trainer.step)})
        atomic_write_text(directory / CURVES_FILE, "".join(json.dumps(r) + "\n" for r in curves))
    return T2WGenerator.load(directory, device), curves
