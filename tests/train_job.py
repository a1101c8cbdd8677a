"""A tiny generator training on a synthetic zoo: importable by tests, runnable under torchrun.

    python tests/train_job.py OUT_DIR     (under torchrun: gloo, each rank saves its weights' digest)
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

from t2wlib.generator.diffusion import GaussianDiffusion, get_betas
from t2wlib.generator.dit import DIT_SIZES, WeightDiT
from t2wlib.generator.tokenizer import WeightTokenizer
from t2wlib.generator.trainer import TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402


def setup(directory, zoo, steps_cfg: dict, seed: int = 0, prediction="eps"):
    """Tokenizer, model, diffusion and trainer on a loaded zoo's tasks."""
    tok = WeightTokenizer.fit(zoo.theta, zoo.spec, block_size=8)
    torch.manual_seed(seed)
    model = WeightDiT(tok.num_tokens, 8, zoo.task_text["v_c/prompt"].shape[1], DIT_SIZES["tiny"])
    diffusion = GaussianDiffusion(get_betas("linear", 100), prediction=prediction, clip_x0=1.0)
    trainer = Trainer(model, diffusion, tok, tok.encode(zoo.theta).float(), zoo.task_text["v_c/prompt"],
                      TrainConfig(**steps_cfg), directory)
    return tok, model, diffusion, trainer


def tiny_generator(directory, zoo, seed: int = 0, **overrides):
    """A generator trained for one epoch of a zoo's seen tasks (smoke profile, tiny DiT, blocks of 8)."""
    from t2wlib.generator.from_zoo import train_generator
    from t2wlib.pipeline.config import generator_config
    from t2wlib.pipeline.profiles import get_profile

    profile = get_profile("smoke", **{"block_size": 8, "gen_epochs": 1, "gen_batch_size": 8, **overrides})
    return train_generator(directory, zoo, generator_config(profile, zoo, "prompt", seed), progress=False)[0]


if __name__ == "__main__":
    from t2wlib.zoo.model_zoo import load_zoo

    out = Path(sys.argv[1])
    if "RANK" in os.environ:
        torch.distributed.init_process_group("gloo")
    rank = int(os.environ.get("RANK", 0))
    zoo_job.build(out / "zoo")  # rank-aware: every rank takes part
    _, model, _, trainer = setup(out / "run", load_zoo(out / "zoo"), dict(epochs=2, batch_size=8, checkpoint_every=5))
    trainer.fit(progress=False)
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
    (out / f"rank{rank}.sha").write_text(digest)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
