"""Figure 3 (paper §4.2): the accuracy of the head decoded from the x0-estimate at each step of
DDPM sampling, for unseen tasks, against the trained heads of the same tasks."""

from __future__ import annotations

import pandas as pd
import torch

from ..data.features import FeatureSet
from ..heads.adapter import task_accuracy
from ..zoo.model_zoo import Zoo
from .convergence import eps_twin, study_profile


def other_generator_overrides(profile) -> dict:
    """Figure 3's second generator as overrides of `profile`, at `figure3_dit`: beside an x0 profile
    its ε twin (`convergence.eps_twin`), beside an ε profile the x0 one without the text path."""
    dit = profile.figure3_dit or profile.dit
    if profile.prediction == "x0":
        return eps_twin(profile, dit)
    return {"dit": dit, "prediction": "x0", "text_path": False}


def other_generator_profile(profile):
    """Figure 3's second generator (`other_generator_overrides`) for `figure3_steps`, holding out the
    convergence study's validation tasks (`convergence.study_profile`): where that width and budget
    are the study's, it is the study's ε curve, one generator trained once."""
    return study_profile(profile, other_generator_overrides(profile), profile.figure3_steps or profile.gen_steps)


def trajectory_accuracy(trajectory: list[tuple[int, torch.Tensor]], zoo: Zoo, test: FeatureSet,
                        ids: list[int], stride: int = 1) -> pd.DataFrame:
    """Figure 3: accuracy of the decoded x0-estimate at recorded sampling steps. trajectory:
    [(t, θ̂ (len(ids), P))] as T2WGenerator.sample(record=True) returns it; scored at the first
    step, every `stride`-th and the last. One row per (step, task); `step` counts sampling steps
    done (1 = first), t is the diffusion time it denoised from."""
    if stride < 1:
        raise ValueError(f"trajectory stride {stride} must be at least 1")
    steps = [s for s in range(len(trajectory)) if s == 0 or (s + 1) % stride == 0 or s == len(trajectory) - 1]
    theta = torch.cat([trajectory[s][1] for s in steps])  # (S · Q, P), step-major
    repeat = [i for _ in steps for i in ids]
    acc = task_accuracy(theta, test.X, test.y, zoo.task_text["class_emb/prompt"], zoo.tasks.padded(repeat), zoo.spec)
    return pd.DataFrame({"step": [s + 1 for s in steps for _ in ids],
                         "t": [trajectory[s][0] for s in steps for _ in ids], "task": repeat, "accuracy": acc.numpy()})
