"""Training the T2W generator (paper §3.5, §4.1): L = L_diff + λ1 L_sym + λ2 L_adv.

Adam (4e-4), cosine learning rate with linear warmup, gradient clipping (0.1), an EMA of the
weights, bf16 autocast on CUDA, and the discriminator trained alternately (Adam, 1e-2). Data order
and noise come from generators seeded per (seed, epoch) and (seed, step), so a run resumed from a
checkpoint continues exactly as an uninterrupted one. Under torchrun (torch.distributed initialised)
each rank takes its slice of every batch and gradients are averaged across ranks with all_reduce:
DDP's effect, done explicitly because a step runs the denoiser twice (L_sym) and the discriminator
twice, which DDP's reducer does not allow within one backward.

The trainer knows nothing of the model's internals: it calls the diffusion's `training_losses`,
`losses.symmetry_loss` and the discriminator.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.std import tqdm  # text bars: tqdm.auto wants ipywidgets in a kernel, and warns without them

from ..core.distributed import average_gradients, broadcast_from_rank0, rank_world
from ..core.files import CorruptArtifactError, remove_stale_temps
from ..core.locks import FolderLock
from ..core.sealed import load_sealed, save_sealed
from ..core.tensor_cache import CacheCorruptionWarning
from ..heads.adapter import TaskLossTerm, check_task_loss
from .diffusion import GaussianDiffusion
from .losses import Discriminator, discriminator_loss, generator_adversarial_loss, permutation_augment, symmetry_loss
from .tokenizers import Tokenizer


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of the generator; defaults are the paper's (§4.1) where it gives them."""

    epochs: int
    batch_size: int = 32
    lr: float = 4e-4
    warmup_epochs: int = 5  # at most a tenth of the run (warmup_steps)
    grad_clip: float = 0.1
    lambda_sym: float = 0.1  # λ1
    lambda_adv: float = 0.01  # λ2: "a hyperparameter" in the paper; small, as L_adv's scale is ~1
    # L_sym on the first `sym_batch` samples of each batch (None = all): the same expectation with
    # more variance, at a fraction of the second denoiser pass that L_sym costs.
    sym_batch: int | None = None
    disc_lr: float = 1e-2
    disc_every: int = 1  # discriminator steps alternate with generator steps
    augment: bool = False  # App. A's alternative: train on g·x_0 (usually with lambda_sym = 0)
    text_dropout: float = 0.0  # > 0 enables classifier-free guidance
    min_snr: float = 0.0  # γ of min-SNR-γ loss weighting (GaussianDiffusion.min_snr_weight); 0 = off
    noise_draws: int = 1  # (t, noise) draws per task per step: the batch is repeated this many times
    # Weight of the task loss on the decoded x0 estimate (heads.adapter.TaskLossTerm); 0 = off.
    lambda_task: float = 0.0
    ema_decay: float = 0.999
    checkpoint_every: int = 500  # steps
    seed: int = 42

    def record(self) -> dict:
        """The fields that define a run, for generator.json and cache keys. A field added after a
        format was fixed (ADDED_FIELDS) is left out at its default, so generators and caches made
        before it keep their keys; TrainConfig(**record) restores it."""
        out = dataclasses.asdict(self)
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return {k: v for k, v in out.items() if not (k in ADDED_FIELDS and v == defaults[k])}


# TrainConfig fields added after the generator format "t2w-generator/4" (TrainConfig.record).
ADDED_FIELDS = ("lambda_task",)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1 over `warmup` steps, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def warmup_steps(cfg: TrainConfig, steps_per_epoch: int, total: int) -> int:
    """The paper's `warmup_epochs`, capped at a tenth of the run: a short run on a large zoo would
    otherwise spend most of itself warming up."""
    return min(cfg.warmup_epochs * steps_per_epoch, max(1, total // 10))


def batch_rows(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Rows of minibatch `step` over n examples: a fresh permutation per epoch, seeded by (seed,
    epoch), so any step's batch can be recomputed after a resume. Incomplete tail batches are dropped."""
    epoch, i = divmod(step, n // batch_size)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return order[i * batch_size:(i + 1) * batch_size]


class Trainer:
    """Trains a denoiser on the seen zoo's tokens x0 (T, N, s) with task conditions v_c: text vectors
    (T, D), or class sets (T, k, D) for a denoiser conditioned on them."""

    def __init__(self, model: torch.nn.Module, diffusion: GaussianDiffusion, tokenizer: Tokenizer,
                 x0: torch.Tensor, v_c: torch.Tensor, cfg: TrainConfig, directory: str | Path,
                 device: str = "cpu", task_loss: TaskLossTerm | None = None):
        if len(x0) != len(v_c) or len(x0) < cfg.batch_size:
            raise ValueError(f"need as many text vectors as weights and >= batch_size ({cfg.batch_size}) "
                             f"tasks; got {len(x0)} weights, {len(v_c)} text vectors")
        check_task_loss(cfg.lambda_task, task_loss, len(x0), "training tasks")
        self.task_loss = task_loss
        self.cfg, self.diffusion, self.tokenizer, self.device = cfg, diffusion, tokenizer, device
        self.directory = Path(directory)
        self.rank, self.world = rank_world()
        self.x0, self.v_c = x0.float().to(device), v_c.float().to(device)
        self.mask = tokenizer.mask.to(device)
        self.model = model.to(device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.disc = Discriminator(model.num_tokens, model.block_size).to(device)
        broadcast_from_rank0([self.model, self.ema, self.disc])
        # fused: the same update in one kernel per parameter group (fewer passes over the weights).
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=True)
        self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr, fused=True)
        self.steps_per_epoch = len(x0) // cfg.batch_size
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.warmup_steps = warmup_steps(cfg, self.steps_per_epoch, self.total_steps)
        self.step = 0
        self._curves: list[dict] = []
        self.amp = torch.device(device).type == "cuda"

    # --- one step -------------------------------------------------------------------------------
    def _batch(self, step: int) -> tuple[torch.Tensor, torch.Generator]:
        """The zoo rows of minibatch `step` (this rank's share) and the step's random generator."""
        rows = batch_rows(step, len(self.x0), self.cfg.batch_size, self.cfg.seed)
        rows = rows.chunk(self.world)[self.rank] if self.world > 1 else rows
        return rows, torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step * self.world + self.rank)

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        rows, g = self._batch(self.step)
        if cfg.noise_draws > 1:  # the same tasks, each with several (t, ε) draws
            rows = rows.repeat(cfg.noise_draws)
        x0, v_c = self.x0[rows.to(self.device)], self.v_c[rows.to(self.device)]
        if cfg.augment:
            x0 = permutation_augment(x0, self.tokenizer, g).float()
        t = torch.randint(0, self.diffusion.num_steps, (len(x0),), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        v_in = self.model.drop_text(v_c, cfg.text_dropout, g)
        for group in self.opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(self.step, self.warmup_steps, self.total_steps)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            out = self.diffusion.training_losses(self.model, x0, t, {"v_c": v_in}, noise=noise, mask=self.mask)
            diff = out["loss"] if cfg.min_snr <= 0 else out["loss"] * self.diffusion.min_snr_weight(t, cfg.min_snr)
            terms = {"diff": diff.mean()}
            if cfg.lambda_sym > 0:
                k = len(x0) if cfg.sym_batch is None else cfg.sym_batch
                terms["sym"] = symmetry_loss(self.model, out["x_t"][:k], t[:k], {"v_c": v_in[:k]}, self.tokenizer,
                                             self.diffusion.prediction, g, output=out["output"][:k]).mean()
            x0_hat = self.diffusion.split(out["x_t"], t, out["output"])[1] * self.mask
            signal = self.diffusion.alphas_cumprod.to(self.device)[t].float()  # abar_t: see losses.py
            if cfg.lambda_adv > 0:
                terms["adv"] = generator_adversarial_loss(self.disc, x0_hat.float(), signal)
        if cfg.lambda_task > 0:  # the decoded x0 estimate as a head, on its task's training samples
            terms["task"] = self.task_loss(self.tokenizer.decode(x0_hat.float().cpu()), rows, g).to(self.device)
        loss = (terms["diff"] + cfg.lambda_sym * terms.get("sym", 0.0) + cfg.lambda_adv * terms.get("adv", 0.0)
                + cfg.lambda_task * terms.get("task", 0.0))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.model)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        self.disc_opt.zero_grad(set_to_none=True)  # L_adv's backward reached D too: discard it
        # EMA with the usual warm-up, min(decay, (1 + step) / (10 + step)): a fixed decay d keeps a
        # share d^n of the (zero-output) initial model after n steps, far too much in a short run.
        decay = min(cfg.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.model.parameters()):
                e.lerp_(p, 1 - decay)
        if cfg.lambda_adv > 0 and self.step % cfg.disc_every == 0:
            d_loss = discriminator_loss(self.disc, x0, x0_hat.float(), signal)
            d_loss.backward()
            average_gradients(self.disc)
            self.disc_opt.step()
            self.disc_opt.zero_grad(set_to_none=True)
            terms["disc"] = d_loss
        self.step += 1
        return {"step": self.step, "loss": loss.item(), **{k: v.item() for k, v in terms.items()},
                "grad_norm": float(grad_norm), "lr": self.opt.param_groups[0]["lr"]}

    # --- the loop, checkpoints, curves ------------------------------------------------------------
    def fit(self, max_steps: int | None = None, progress: bool = True) -> list[dict]:
        """Train to the end (or `max_steps` more steps), resuming from the latest complete checkpoint.
        Rank 0 holds the folder's lock for the whole run: a second trainer on it is refused."""
        lock = FolderLock(self.directory, "generator trainer") if self.rank == 0 else contextlib.nullcontext()
        with lock:
            self.load_checkpoint()
            if self.rank == 0:
                remove_stale_temps(self.directory)
                self._prune()
            stop = self.total_steps if max_steps is None else min(self.total_steps, self.step + max_steps)
            bar = tqdm(total=stop, initial=self.step, desc=f"[train] {self.directory.name}", unit="step",
                       disable=not progress or self.rank != 0, mininterval=5)
            while self.step < stop:
                record = self.train_step()
                self._curves.append(record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.4f}", refresh=False)
                if self.step % self.cfg.checkpoint_every == 0 or self.step == stop:
                    self.save_checkpoint()
            bar.close()
        return self.curves()

    def _states(self) -> dict[str, dict]:
        """The checkpointed state dicts by prefix: modules and optimisers."""
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "disc": self.disc.state_dict(),
                "opt": self.opt.state_dict(), "disc_opt": self.disc_opt.state_dict()}

    def save_checkpoint(self) -> Path | None:
        """Everything needed to resume (modules, optimiser states, step, config, loss curve) as one
        sealed safetensors file `checkpoint-<step>.safetensors`, written atomically; the previous one
        is kept as a fallback and older ones are removed. A kill at any point leaves at least one
        complete checkpoint, never a mixture of two steps."""
        if self.rank != 0:
            return None
        tensors, meta = {}, {"format": CHECKPOINT_FORMAT, "step": str(self.step), "curves": json.dumps(self._curves),
                             "config": json.dumps(self.cfg.record())}
        for prefix, state in self._states().items():
            if prefix.endswith("opt"):
                flat, groups = flatten_optimizer_state(state)
                tensors.update({f"{prefix}/{k}": v for k, v in flat.items()})
                meta[f"{prefix}/param_groups"] = json.dumps(groups)
            else:
                tensors.update({f"{prefix}/{k}": v for k, v in state.items()})
        path = self.directory / f"{CHECKPOINT_PREFIX}{self.step:08d}.safetensors"
        save_sealed(path, tensors, meta)
        self._prune()
        return path

    def _prune(self) -> None:
        """Keep the newest KEEP_CHECKPOINTS checkpoints (a kill may have stopped an earlier prune)."""
        for old in checkpoint_files(self.directory)[KEEP_CHECKPOINTS:]:
            old.unlink(missing_ok=True)

    def load_checkpoint(self) -> bool:
        """Resume from the newest checkpoint in `directory` that verifies (a corrupted one is warned
        about and skipped); False if there is none. A checkpoint of another config is refused."""
        for path in checkpoint_files(self.directory):
            try:
                tensors, meta = load_sealed(path, "generator checkpoint")
            except CorruptArtifactError as err:
                warnings.warn(f"{err}; falling back to the checkpoint before it", CacheCorruptionWarning, stacklevel=2)
                continue
            if meta.get("format") != CHECKPOINT_FORMAT:
                raise CorruptArtifactError(f"{path} is not a {CHECKPOINT_FORMAT} file")
            if json.loads(meta["config"]) != json.loads(json.dumps(self.cfg.record())):
                raise ValueError(f"{path} was written with another training config; use a new directory")
            by_prefix: dict[str, dict[str, torch.Tensor]] = {}
            for key, value in tensors.items():
                prefix, name = key.split("/", 1)
                by_prefix.setdefault(prefix, {})[name] = value.to(self.device)
            for prefix, module in (("model", self.model), ("ema", self.ema), ("disc", self.disc)):
                module.load_state_dict(by_prefix[prefix])
            for prefix, opt in (("opt", self.opt), ("disc_opt", self.disc_opt)):
                opt.load_state_dict(unflatten_optimizer_state(by_prefix.get(prefix, {}),
                                                              json.loads(meta[f"{prefix}/param_groups"])))
            self.step, self._curves = int(meta["step"]), json.loads(meta["curves"])
            return True
        return False

    def curves(self) -> list[dict]:
        """The loss records of every step so far (one per step, in order)."""
        return list(self._curves)


CHECKPOINT_FORMAT = "t2w-checkpoint/1"
CHECKPOINT_PREFIX = "checkpoint-"
KEEP_CHECKPOINTS = 2


def checkpoint_files(directory: Path) -> list[Path]:
    """A folder's checkpoint files, newest step first."""
    return sorted(Path(directory).glob(f"{CHECKPOINT_PREFIX}[0-9]*.safetensors"), reverse=True)


def flatten_optimizer_state(state: dict) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """An optimiser state dict as tensors `state/<param>/<name>` and JSON-able param groups (no pickle)."""
    flat = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimiser state {name!r} is a {type(value).__name__}, not a tensor")
            flat[f"state/{index}/{name}"] = value.detach().cpu().contiguous()
    return flat, state["param_groups"]


def unflatten_optimizer_state(flat: dict[str, torch.Tensor], groups: list[dict]) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        _, index, name = key.split("/", 2)
        state.setdefault(int(index), {})[name] = value
    for group in groups:  # JSON turned tuples into lists
        group.update({k: tuple(v) for k, v in group.items() if k == "betas"})
    return {"state": state, "param_groups": groups}
