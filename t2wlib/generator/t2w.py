"""The T2W generator as one object: tokenizer + denoiser (EMA weights) + diffusion, defined by its
`GeneratorConfig`, loaded from its folder with shape checks, and sampled: v_c (B, D) -> heads θ (B, P).
Training it from a zoo is `from_zoo.py`'s; this module is what the text -> classifier path loads.

A generator folder holds
    generator.json           the GeneratorConfig (checked JSON): head spec, tokenizer, DiT size,
                             diffusion, text encoder, backbone, image size, trained k range
    tokenizer.safetensors    the fitted weight tokenizer (sealed, tied to generator.json's digest)
    checkpoint-<step>.safetensors   the trainer's resumable state, the last two (trainer.py)
    ema.safetensors          the EMA weights for sampling, written when training finishes (sealed)
    curves.jsonl             the loss record of every step, for readers
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.files import CorruptArtifactError, key_digest, read_json_checked
from ..core.sealed import load_sealed
from ..heads.adapter import HeadSpec
from .denoiser import Denoiser, guided
from .denoisers import build_denoiser
from .diffusion import GaussianDiffusion, get_betas
from .tokenizers import Tokenizer, tokenizer_from_state

SAMPLERS = ("ddim", "ddpm")
# What a denoiser is conditioned on: the pooled task text vector v_c (B, D), or the set of the task's
# class embeddings (B, k, D), zero-padded to the largest trained k (denoiser.py).
CONDITIONS = ("pooled", "classes")


FORMAT = "t2w-generator/4"
# The temperature 02_train fits for the generator (experiments/calibration.py); copied into every classifier.
CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that defines a generator, stored as its folder's generator.json (checked JSON)."""

    spec: HeadSpec
    block_size: int
    tokenizer: str
    components: int  # principal components of the "pca" tokenizer (0 for block tokens)
    dit: str
    text_path: bool  # the denoiser's linear text -> x0 path (denoiser.py)
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
    train: dict  # the TrainConfig's fields (generator/trainer.py)
    format: str = FORMAT
    # Added after format 4 was fixed: left out of generator.json (and so of the digest that keys the
    # folder) at its default, so the generators made before it keep their folders and load unchanged.
    condition: str = "pooled"

    def to_json(self) -> dict:
        record = json.loads(json.dumps(dataclasses.asdict(self)))
        if record["condition"] == "pooled":
            del record["condition"]
        return record

    def class_slots(self) -> int:
        """How many class embeddings the denoiser takes per task (0: it takes the pooled v_c)."""
        return self.k_range[1] if self.condition == "classes" else 0

    @classmethod
    def from_json(cls, record: dict, path: Path | str = "generator.json") -> GeneratorConfig:
        """Parse and check a generator.json record; errors name the file, the field and what is allowed."""
        if record.get("format") != FORMAT:
            raise ValueError(f"{path}: format {record.get('format')!r} is not {FORMAT!r}; retrain the generator "
                             "with this version of t2w")
        names = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(names - set(record) - {"condition"}), sorted(set(record) - names)
        if missing or unknown:
            raise ValueError(f"{path}: missing fields {missing}, unknown fields {unknown}; expected {sorted(names)}")
        cfg = cls(**{**record, "spec": HeadSpec.from_json(record["spec"]), "k_range": tuple(record["k_range"])})
        if cfg.condition not in CONDITIONS:
            raise ValueError(f"{path}: unknown condition {cfg.condition!r}; allowed: {', '.join(CONDITIONS)}")
        from ..encoders.backbones import BACKBONES
        from ..encoders.text import TEXT_ENCODERS

        for field, registry in (("backbone", BACKBONES), ("text_encoder", TEXT_ENCODERS)):
            value = getattr(cfg, field)
            if value is not None and value not in registry.names():
                raise ValueError(f"{path}: unknown {field} {value!r}; allowed: {', '.join(registry.names())}")
        return cfg

    def digest(self) -> str:
        return key_digest(self.to_json())

    def diffusion(self) -> GaussianDiffusion:
        # x0 estimates are clipped to the minmax tokens' range; standardised and pca tokens are unbounded.
        clip = 1.0 if self.tokenizer == "minmax" else None
        return GaussianDiffusion(get_betas(self.schedule, self.diffusion_steps), self.prediction, clip_x0=clip)


GENERATOR_FILE, TOKENIZER_FILE, EMA_FILE, CURVES_FILE = ("generator.json", "tokenizer.safetensors", "ema.safetensors",
                                                       "curves.jsonl")


@dataclass
class T2WGenerator:
    """A trained generator; `model` holds the EMA weights for sampling."""

    model: Denoiser
    diffusion: GaussianDiffusion
    tokenizer: Tokenizer
    config: GeneratorConfig
    directory: Path | None = None
    # calibration.calibration.json's record (its "temperature" goes into every classifier), or None.
    calibration: dict | None = None

    def condition_of(self, e: torch.Tensor) -> torch.Tensor:
        """What `sample` takes for tasks of class embeddings e (B, k, D), zero rows padding smaller
        tasks: the set itself for a generator conditioned on class sets, else the text vector v_c
        (B, D) pooled from it by Alg. 1 (`Denoiser.pooled`)."""
        return e if self.config.class_slots() else self.model.pooled(e)

    @torch.no_grad()
    def sample(self, v_c: torch.Tensor, sampler: str = "ddim", steps: int = 20, guidance: float = 1.0,
               seed: int = 0, record: bool = False, start: torch.Tensor | None = None, t_start: int | None = None):
        """Heads θ (B, P) for task text vectors v_c (B, D) (for a generator conditioned on class sets,
        `config.condition` "classes": the tasks' class embeddings (B, k, D), zero rows padding the
        smaller tasks: `Zoo.task_condition` makes either); with record=True also the decoded
        x0-estimate θ̂ (B, P) at every sampling step, as a list of (t, θ̂).

        From pure noise by default; with `start` heads (B, P) and a step index `t_start`, from those
        heads noised to step t_start by q(x_t | x_0) (partial denoising: enhancement, Figure 6)."""
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")
        slots, dim = self.config.class_slots(), self.model.text_dim
        if slots and not (v_c.ndim == 3 and 1 <= v_c.shape[1] <= slots and v_c.shape[2] == dim):
            raise ValueError(f"this generator is conditioned on class sets: its condition must be (B, k <= {slots}, "
                             f"{dim}) class embeddings, got {tuple(v_c.shape)}")
        if not slots and (v_c.ndim != 2 or v_c.shape[1] != dim):
            raise ValueError(f"v_c must be (B, {dim}), got {tuple(v_c.shape)}")
        if not torch.isfinite(v_c).all():
            raise ValueError("text vector v_c holds NaN or inf values; check the text embeddings")
        if not math.isfinite(guidance):
            raise ValueError(f"guidance scale {guidance} is not a finite number; allowed: any finite value (1 = off)")
        if guidance != 1.0 and not self.config.train.get("text_dropout", 0.0) > 0:
            raise ValueError(f"guidance scale {guidance} needs a generator trained with text dropout (its null text is "
                             "otherwise never trained); this one was trained with text_dropout = 0: allowed: 1 (off), "
                             "or retrain with `--set text_dropout=0.1`")
        if sampler == "ddim" and not 1 <= steps <= self.diffusion.num_steps:  # (t_start clips them below)
            raise ValueError(f"DDIM steps {steps} out of range; allowed: 1 to {self.diffusion.num_steps}")
        if (start is None) != (t_start is None):
            raise ValueError("start heads and t_start go together")
        if t_start is not None and not 0 <= t_start < self.diffusion.num_steps:
            raise ValueError(f"t_start {t_start} out of range; allowed: 0 to {self.diffusion.num_steps - 1}")
        device = next(self.model.parameters()).device
        self.model.eval()
        shape = (len(v_c), self.tokenizer.num_tokens, self.tokenizer.block_size)
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)
        if start is not None:
            x0 = self.tokenizer.encode(start.double()).float().to(device)
            noise = self.diffusion.q_sample(x0, torch.full((len(x0),), t_start, device=device), noise=noise)
        kwargs = dict(model_kwargs={"v_c": v_c.float().to(device)}, noise=noise, record=record, t_start=t_start,
                      generator=torch.Generator(device=device).manual_seed(seed + 1))
        fn = guided(self.model, guidance)
        if sampler == "ddim":
            out = self.diffusion.ddim_sample_loop(fn, shape, steps=steps if t_start is None else min(steps, t_start + 1),
                                                  **kwargs)
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
            raise FileNotFoundError(f"the generator in {directory} has not finished training (no {EMA_FILE}); "
                                    "run its training again to resume it")
        tok_state, tok_meta = load_sealed(directory / TOKENIZER_FILE, "generator tokenizer")
        state, ema_meta = load_sealed(directory / EMA_FILE, "generator weights")
        for path, meta in ((directory / TOKENIZER_FILE, tok_meta), (directory / EMA_FILE, ema_meta)):
            if meta.get("definition") != cfg.digest():
                raise CorruptArtifactError(f"{path} was written for another generator definition than "
                                           f"{directory / GENERATOR_FILE}; retrain the generator in a new folder")
        tokenizer = tokenizer_from_state({"spec": cfg.spec.to_json(), "block_size": cfg.block_size,
                                          "mode": cfg.tokenizer, "components": cfg.components}, tok_state)
        model = build_denoiser(cfg.dit, tokenizer.num_tokens, cfg.block_size, cfg.text_dim, cfg.text_path,
                               cfg.class_slots())
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if expected != found:
            diff = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
            raise ValueError(f"{directory / EMA_FILE} does not fit {GENERATOR_FILE} "
                             f"(DiT {cfg.dit}, {tokenizer.num_tokens} tokens of {cfg.block_size}, "
                             f"text dim {cfg.text_dim}); mismatched tensors: {diff[:5]}")
        model.load_state_dict(state)
        return cls(model.to(device).eval(), cfg.diffusion(), tokenizer, cfg, directory, read_calibration(directory))


def read_calibration(directory: str | Path) -> dict | None:
    """A generator folder's verified calibration.json, or None when it has none yet."""
    path = Path(directory) / CALIBRATION_FILE
    return read_json_checked(path, "calibration record") if path.exists() else None
