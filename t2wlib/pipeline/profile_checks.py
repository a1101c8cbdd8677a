"""What every `Profile` field may hold, checked before any work (`check_profile`): a value outside its
range is refused in one line naming the field, the value and what is allowed, so that a run never
does something other than what was typed (a negative step count, a reversed k range, NaN as a
learning rate). The per-dataset clamps of `profiles.for_dataset` (r, the k range, the task count)
apply to values that passed these checks."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..data.images import IMAGE_SIZES

# field -> (test of a value of the field's type, what is allowed); `None` passes for `... | None` fields.
Rule = tuple[Callable[[object], bool], str]


def _int_at_least(low: int) -> Rule:
    return (lambda v: v >= low, f"an integer >= {low}")


def _int_between(low: int, high: int) -> Rule:
    return (lambda v: low <= v <= high, f"an integer from {low} to {high}")


def _positive_number() -> Rule:
    return (lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def _non_negative_number() -> Rule:
    return (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")


def _items(test: Callable[[object], bool], what: str, at_least: int = 0) -> Rule:
    allowed = f"{at_least} or more {what}" if at_least else f"zero or more {what}"
    return (lambda v: len(v) >= at_least and all(test(x) for x in v), allowed)


def _choice(names: Callable[[], list[str]]) -> Rule:
    return (lambda v: v in names(), "")  # `check_profile` lists the names


def _dit_names() -> list[str]:
    from ..generator.denoisers import MLP_FILM

    return [*_dit_sizes(), MLP_FILM]


def _dit_sizes() -> list[str]:
    from ..generator.dit import DIT_SIZES

    return list(DIT_SIZES)


def _conditions() -> list[str]:
    from ..generator.t2w import CONDITIONS

    return list(CONDITIONS)


def _modes() -> list[str]:
    from ..generator.tokenizers import TOKENIZER_MODES

    return list(TOKENIZER_MODES)


def _schedules() -> list[str]:
    from ..generator.diffusion import SCHEDULES

    return list(SCHEDULES)


def _predictions() -> list[str]:
    from ..generator.diffusion import PREDICTIONS

    return list(PREDICTIONS)


def _backbones() -> list[str]:
    from ..encoders.backbones import BACKBONES

    return list(BACKBONES.names())


def _text_encoders() -> list[str]:
    from ..encoders.text import TEXT_ENCODERS

    return list(TEXT_ENCODERS.names())


POSITIVE = _int_at_least(1)
COUNT = _int_at_least(0)
SEED = _int_between(0, 2**32 - 1)  # numpy's seed range
RULES: dict[str, Rule] = {
    "name": (lambda v: bool(v), "a profile name"),
    "datasets": _items(lambda d: isinstance(d, str) and bool(d), "dataset names", at_least=1),
    "backbone": _choice(_backbones),
    "text_encoder": _choice(_text_encoders),
    "image_size": _int_between(*IMAGE_SIZES),
    "train_per_class": POSITIVE, "test_per_class": POSITIVE,
    "seeds": _items(lambda s: SEED[0](s), "seeds from 0 to 2**32 - 1", at_least=1),
    "hidden": _int_between(1, 4096),
    "user_data": _items(lambda e: "=" in e, "NAME=PATH entries"),
    "data_seed": SEED,
    "batch_size": POSITIVE,
    "device": (lambda v: v in ("auto", "cpu", "cuda") or v.startswith("cuda:"), "auto, cpu, cuda or cuda:N"),
    "grid_per_class": _int_between(1, 64),
    "zoo_tasks": POSITIVE,
    "zoo_k": (lambda v: len(v) == 2 and 2 <= v[0] <= v[1], "two integers k_min,k_max with 2 <= k_min <= k_max"),
    "stage1_epochs": POSITIVE, "stage2_epochs": POSITIVE, "universal_epochs": POSITIVE,
    "zoo_lr": _positive_number(), "universal_lr": _positive_number(),
    "zoo_batch_size": POSITIVE, "universal_batch_size": POSITIVE,
    "zoo_held_out_classes": COUNT, "zoo_shard_size": POSITIVE, "zoo_starts": _int_between(1, 64),
    "dit": _choice(_dit_names),
    "block_size": _int_between(1, 65536),
    "tokenizer_mode": _choice(_modes),
    "gen_components": _int_between(1, 65536),
    "tasks_per_component": _int_between(0, 65536),
    "text_path": (lambda v: True, "true or false"),
    "condition": _choice(_conditions),
    "diffusion_steps": _int_between(2, 100_000),
    "noise_schedule": _choice(_schedules),
    "prediction": _choice(_predictions),
    "gen_epochs": POSITIVE, "gen_steps": POSITIVE, "gen_batch_size": POSITIVE,
    "lambda_sym": _non_negative_number(), "lambda_adv": _non_negative_number(),
    "lambda_task": _non_negative_number(),
    "sym_batch": POSITIVE,
    "min_snr": _non_negative_number(),
    "noise_draws": _int_between(1, 64),
    "gen_augment": (lambda v: True, "true or false"),
    "text_dropout": (lambda v: 0 <= v < 1, "a number from 0 up to (not including) 1"),
    "gen_validation_tasks": COUNT,
    "checkpoint_every": POSITIVE,
    "ddim_steps": POSITIVE,
    "eval_seen_tasks": POSITIVE, "trajectory_tasks": POSITIVE,
    "heldout_split_classes": COUNT, "heldout_zoo_tasks": POSITIVE,
    "heldout_seeds": _items(lambda s: SEED[0](s), "seeds from 0 to 2**32 - 1"),
    "trajectory_stride": POSITIVE, "figure3_steps": POSITIVE,
    "figure3_dit": (lambda v: v == "" or v in _dit_names(), ""),
    "convergence_steps": (lambda v: len(v) == 0 or (len(v) >= 2 and all(a < b for a, b in zip(v, v[1:])) and v[0] >= 1),
                          "() or two or more increasing step budgets >= 1"),
    "convergence_dits": _items(lambda d: d in _dit_sizes(), "DiT sizes (generator/dit.py DIT_SIZES)"),
    "ablation_dataset": (lambda v: True, "a dataset name, or empty for the first"),
    "ablation_epochs": POSITIVE, "ablation_steps": POSITIVE,
    "ablation_seeds": _items(lambda s: SEED[0](s), "seeds from 0 to 2**32 - 1"),
    "ablation_validation_tasks": COUNT,
    "fusion_k": POSITIVE, "fusion_pairs": POSITIVE,
    "init_tasks": POSITIVE, "init_epochs": POSITIVE, "init_lr": _positive_number(),
    "init_shots": _items(lambda s: s >= 1, "positive integers", at_least=1),
    "reptile_iterations": POSITIVE, "reptile_meta_batch": POSITIVE,
    "landscape_grid": _int_between(2, 1000),
    "enhancement_tasks": POSITIVE,
    "enhancement_t": _items(lambda t: t >= 1, "diffusion steps >= 1 (and <= diffusion_steps)", at_least=1),
    "gradcam_images": POSITIVE,
    "gradcam_steps": _items(lambda f: 0 < f <= 1, "fractions in (0, 1]", at_least=1),
    "solution_tasks": POSITIVE, "solution_starts": _int_between(2, 64), "solution_steps": POSITIVE,
    "solution_samples": POSITIVE,
    "solution_noise": _items(lambda f: math.isfinite(f) and f >= 0, "finite numbers >= 0"),
    "solution_neighbours": POSITIVE,
}


def check_profile(profile) -> None:
    """ValueError naming the first field of `profile` (a `profiles.Profile`) outside its range."""
    import dataclasses

    for field in dataclasses.fields(profile):
        value = getattr(profile, field.name)
        test, allowed = RULES[field.name]
        if value is None and field.type.endswith("| None"):
            continue
        if not test(value):
            choices = allowed or "one of " + ", ".join(_CHOICES[field.name]())
            raise ValueError(f"profile field {field.name} = {value!r} is out of range; allowed: {choices}")
    if profile.lambda_sym > 0 and profile.prediction == "v":
        raise ValueError(f"profile field lambda_sym = {profile.lambda_sym} needs prediction 'eps' or 'x0' (L_sym acts "
                         "on ε and x0 estimates); allowed with prediction 'v': lambda_sym = 0")
    if profile.text_path and profile.prediction != "x0":
        raise ValueError(f"profile field text_path = True needs prediction = 'x0' (the path adds a linear map of the "
                         f"text to the x0 estimate); got prediction = {profile.prediction!r}")
    if profile.condition == "classes" and profile.dit not in _dit_sizes():
        raise ValueError(f"profile field condition = 'classes' needs a DiT (one token per class); got dit = "
                         f"{profile.dit!r}; allowed: {', '.join(_dit_sizes())}")
    if any(t > profile.diffusion_steps for t in profile.enhancement_t):
        raise ValueError(f"profile field enhancement_t = {profile.enhancement_t!r} is out of range; allowed: diffusion "
                         f"steps from 1 to diffusion_steps = {profile.diffusion_steps}")


_CHOICES = {"backbone": _backbones, "text_encoder": _text_encoders, "dit": _dit_names, "figure3_dit": _dit_names,
            "tokenizer_mode": _modes, "condition": _conditions,
            "noise_schedule": _schedules, "prediction": _predictions}
