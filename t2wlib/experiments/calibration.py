"""Calibrated probabilities for generated heads: one temperature per generator (Guo et al., 2017).

A head's logits are CLIP's: 100 x cosine similarity, never fitted to be probabilities, so a
generated head says 0.999 for answers that are wrong. `fit_generator_temperature` samples the
generator's heads for seen tasks, fits one temperature T on those tasks' *test* images
(softmax(logits / T) minimising the negative log-likelihood), and measures the expected
calibration error on the unseen tasks before and after: the fit never sees an unseen task. Not
the train images: the zoo heads the generator imitates were fitted on them, so there a head is
more accurate than on any new image, and a temperature fitted there sharpens probabilities that
are already too sharp elsewhere. The result is `calibration.json` in the generator's folder, which
`text_to_classifier` copies into every classifier file it writes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from scipy.optimize import minimize_scalar

from ..core.files import write_json_checked
from ..generator.t2w import CALIBRATION_FILE
from ..heads.adapter import _local_labels, _task_logits

if TYPE_CHECKING:  # annotations only
    from ..data.features import FeatureSet
    from ..generator.t2w import T2WGenerator
    from ..zoo.model_zoo import Zoo

ECE_BINS = 15
# The temperature is searched on log T in this range (T from 0.007 to 150).
LOG_T_RANGE = (-5.0, 5.0)


@torch.no_grad()
def task_logits(theta: torch.Tensor, features: FeatureSet, zoo: Zoo, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every head's logits on its own task's images: theta (H, P) for tasks `ids` -> logits (M, K)
    over each row's task classes (padding classes at -inf) and labels (M,), each label's position
    among its task's classes; M = the images of all tasks together."""
    task_classes = zoo.tasks.padded(ids)
    emb = zoo.task_text["class_emb/prompt"]  # (C, D): the heads score the template prompts
    rows, labels = [], []
    for start, samples, logits in _task_logits(theta, features.X, features.y, emb, task_classes, zoo.spec, 1 << 25):
        local = _local_labels(features.y, samples, task_classes[start:start + len(samples)])
        valid = samples >= 0
        rows.append(logits[valid])
        labels.append(local[valid])
    return torch.cat(rows), torch.cat(labels)


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """Mean negative log-likelihood of softmax(logits / T)."""
    return float(torch.nn.functional.cross_entropy(logits.double() / temperature, labels))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T) (a 1-D bounded search on log T)."""
    if len(labels) == 0:
        raise ValueError("fit_temperature needs at least one labelled row")
    result = minimize_scalar(lambda log_t: nll(logits, labels, math.exp(log_t)), bounds=LOG_T_RANGE, method="bounded")
    return math.exp(result.x)


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
                               bins: int = ECE_BINS) -> float:
    """ECE: |accuracy - confidence| of the top class over `bins` equal-width confidence bins,
    weighted by the share of rows in each bin (0 = perfectly calibrated)."""
    probs = (logits.double() / temperature).softmax(-1)
    confidence, pred = probs.max(-1)
    correct = (pred == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += float(in_bin.double().mean() * (correct[in_bin].mean() - confidence[in_bin].mean()).abs())
    return ece


def fit_generator_temperature(generator: T2WGenerator, zoo: Zoo, test: FeatureSet, fit_tasks: int, steps: int,
                              seed: int) -> dict:
    """Fit the generator's temperature on its heads for the first `fit_tasks` seen tasks, report
    ECE and NLL on all unseen tasks with T = 1 and the fitted T (test images throughout), and write
    them to the generator folder's calibration.json. Returns that record."""
    seen, unseen = zoo.tasks.ids("seen")[:fit_tasks], zoo.tasks.ids("unseen")
    variant = generator.config.text_variant

    def heads(ids):
        return generator.sample(zoo.task_condition(variant, ids, generator.config.condition), steps=steps, seed=seed)

    fit_logits, fit_labels = task_logits(heads(seen), test, zoo, seen)
    temperature = fit_temperature(fit_logits, fit_labels)
    logits, labels = task_logits(heads(unseen), test, zoo, unseen)
    record = {"temperature": temperature,
              "fitted_on": f"generated heads of {len(seen)} seen tasks, their test images ({len(fit_labels)} rows)",
              "measured_on": f"generated heads of {len(unseen)} unseen tasks, their test images ({len(labels)} rows)",
              "ddim_steps": steps, "seed": seed, "bins": ECE_BINS,
              "ece_before": expected_calibration_error(logits, labels), "ece_after":
              expected_calibration_error(logits, labels, temperature),
              "nll_before": nll(logits, labels, 1.0), "nll_after": nll(logits, labels, temperature),
              "accuracy": float((logits.argmax(-1) == labels).double().mean())}
    write_json_checked(Path(generator.directory) / CALIBRATION_FILE, record)
    return record


