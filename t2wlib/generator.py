"""The T2W generator as one object: tokenizer + DiT (EMA weights) + diffusion, built from a zoo,
trained, saved as a folder, loaded with shape checks, and sampled: v_c (B, D) -> heads θ (B, P).

A generator folder holds the trainer's checkpoint (model / ema / disc .safetensors, state.pt,
curves.jsonl; train.py), `tokenizer.safetensors` and `generator.json` (everything needed to rebuild
the model: head spec, tokenizer, DiT size, diffusion, text encoder, backbone, image size).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .cache import atomic_write, atomic_write_text, key_digest
from .diffusion import GaussianDiffusion, get_betas
from .dit import Denoiser, build_denoiser, guided
from .tokenize import WeightTokenizer
from .train import TrainConfig, Trainer
from .zoo import Zoo

SAMPLERS = ("ddim", "ddpm")


def train_config(profile, seed: int) -> TrainConfig:
    """The TrainConfig a profile (t2wlib.profiles.Profile) asks for."""
    return TrainConfig(epochs=profile.gen_epochs, batch_size=profile.gen_batch_size, lambda_sym=profile.lambda_sym, sym_batch=profile.sym_batch,
                       lambda_adv=profile.lambda_adv, augment=profile.gen_augment, text_dropout=profile.text_dropout,
                       checkpoint_every=profile.checkpoint_every, seed=seed)


def seen_split(zoo: Zoo, profile) -> tuple[list[int], list[int]]:
    """The seen task ids a generator trains on, and the `gen_validation_tasks` seen ids held out of
    its training (the last ones: the task order is random already). Generator settings are chosen
    on the held-out seen tasks, never on the unseen tasks that report results (04_ablation)."""
    seen, n = zoo.tasks.ids("seen"), profile.gen_validation_tasks
    if not 0 <= n <= len(seen) - profile.gen_batch_size:
        raise ValueError(f"gen_validation_tasks = {n} must be in [0, {len(seen) - profile.gen_batch_size}]: the zoo has "
                         f"{len(seen)} seen tasks and training needs gen_batch_size = {profile.gen_batch_size}")
    return seen[:len(seen) - n], seen[len(seen) - n:]


def generator_meta(profile, zoo: Zoo, variant: str, seed: int) -> dict:
    """Everything that defines a generator (stored as generator.json)."""
    return {"format": "t2w-generator/2", "spec": [zoo.spec.feature_dim, zoo.spec.hidden, zoo.spec.embed_dim],
            "block_size": profile.block_size, "tokenizer": profile.tokenizer_mode, "dit": profile.dit,
            "diffusion_steps": profile.diffusion_steps, "schedule": profile.noise_schedule,
            "prediction": profile.prediction, "text_variant": variant, "text_dim": zoo.task_text[f"v_c/{variant}"].shape[1],
            "text_encoder": zoo.source.get("text_encoder"), "backbone": zoo.source.get("backbone"),
            "image_size": profile.image_size, "dataset": zoo.source.get("dataset"), "zoo": str(zoo.directory.name),
            "validation_tasks": profile.gen_validation_tasks, "seed": seed, "train": train_config(profile, seed).__dict__}


def generator_path(artifacts, profile, zoo: Zoo, variant: str, seed: int) -> Path:
    """Where the pipeline keeps a generator: keyed by everything that defines it."""
    meta = generator_meta(profile, zoo, variant, seed)
    return Path(artifacts) / "generator" / profile.name / f"{meta['dataset']}-{variant}-s{seed}-{key_digest(meta)[:10]}"


def _diffusion(meta: dict) -> GaussianDiffusion:
    # x0 estimates are clipped to the minmax tokens' range; standardised tokens are unbounded.
    clip = 1.0 if meta["tokenizer"] == "minmax" else None
    return GaussianDiffusion(get_betas(meta["schedule"], meta["diffusion_steps"]), meta["prediction"], clip_x0=clip)


@dataclass
class T2WGenerator:
    """A trained (or training) generator; `model` holds the EMA weights for sampling."""

    model: Denoiser
    diffusion: GaussianDiffusion
    tokenizer: WeightTokenizer
    meta: dict

    @torch.no_grad()
    def sample(self, v_c: torch.Tensor, sampler: str = "ddim", steps: int = 20, guidance: float = 1.0,
               seed: int = 0, record: bool = False):
        """Heads θ (B, P) for task text vectors v_c (B, D); with record=True also the decoded
        x0-estimate θ̂ (B, P) at every sampling step, as a list of (t, θ̂)."""
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")
        if v_c.ndim != 2 or v_c.shape[1] != self.model.text_dim:
            raise ValueError(f"v_c must be (B, {self.model.text_dim}), got {tuple(v_c.shape)}")
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
    def load(cls, directory: str | Path, device: str = "cpu") -> "T2WGenerator":
        """Load the EMA weights of a generator folder, checking every shape against generator.json."""
        directory = Path(directory)
        meta_path = directory / "generator.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path} missing: not a T2W generator folder")
        meta = json.loads(meta_path.read_text())
        tokenizer = WeightTokenizer.from_state({"spec": meta["spec"], "block_size": meta["block_size"], "mode": meta["tokenizer"]},
                                               load_file(directory / "tokenizer.safetensors"))
        model = build_denoiser(meta["dit"], tokenizer.num_tokens, meta["block_size"], meta["text_dim"])
        state = load_file(directory / "ema.safetensors")
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if expected != found:
            diff = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
            raise ValueError(f"{directory / 'ema.safetensors'} does not fit generator.json "
                             f"(DiT {meta['dit']}, {tokenizer.num_tokens} tokens of {meta['block_size']}, "
                             f"text dim {meta['text_dim']}); mismatched tensors: {diff[:5]}")
        model.load_state_dict(state)
        return cls(model.to(device).eval(), _diffusion(meta), tokenizer, meta)


def train_generator(directory: str | Path, zoo: Zoo, profile, variant: str = "prompt", seed: int = 42,
                    device: str = "cpu", progress: bool = True) -> tuple[T2WGenerator, list[dict]]:
    """Fit the tokenizer on the zoo's seen tasks (less the validation tasks, `seen_split`), train (or
    resume) the DiT on them, and return the generator with its loss curves."""
    directory = Path(directory)
    meta = generator_meta(profile, zoo, variant, seed)
    existing = directory / "generator.json"
    if existing.exists() and json.loads(existing.read_text()) != json.loads(json.dumps(meta)):
        raise ValueError(f"{directory} holds a generator with another definition ({existing}); use a new directory "
                         "(generator_path keys folders by definition)")
    seen = seen_split(zoo, profile)[0]
    tokenizer = WeightTokenizer.fit(zoo.theta[seen], zoo.spec, profile.block_size, profile.tokenizer_mode)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / "tokenizer.safetensors", lambda tmp: save_file(
        {k: v.contiguous() for k, v in tokenizer.state_dict().items()}, str(tmp)))
    atomic_write_text(directory / "generator.json", json.dumps(meta, indent=1))
    torch.manual_seed(seed)
    model = build_denoiser(profile.dit, tokenizer.num_tokens, profile.block_size, meta["text_dim"])
    model.fit_text_norm(zoo.task_text[f"v_c/{variant}"][seen])
    trainer = Trainer(model, _diffusion(meta), tokenizer, tokenizer.encode(zoo.theta[seen]).float(),
                      zoo.task_text[f"v_c/{variant}"][seen], train_config(profile, seed), directory, device)
    curves = trainer.fit(progress=progress)
    return T2WGenerator.load(directory, device), curves
