"""A profile resolved into the configurations the library takes: the one place that reads a
`Profile`'s size fields on behalf of the zoo, the features and the generator. The library below
(`zoo/`, `data/`, `generator/`) takes `ZooConfig`, feature settings, `GeneratorConfig` and
`TrainConfig`; the pipeline and the experiments ask here which ones a profile means, and where the
pipeline keeps the artifacts they define (folders keyed by a digest of the definition).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ..core.files import key_digest
from ..core.tensor_cache import TensorCache
from ..data.datasets import DatasetIdentity
from ..data.features import FeatureSet, dataset_features
from ..data.image_split import ImageSplit
from ..data.subtasks import sample_tasks
from ..encoders.backbones import Backbone
from ..generator.from_zoo import training_tasks
from ..generator.pca_tokenizer import PCA_MODES
from ..generator.t2w import GeneratorConfig
from ..generator.trainer import TrainConfig
from ..heads.training import HeadTrainConfig
from ..zoo.model_zoo import FORMAT as ZOO_FORMAT
from ..zoo.model_zoo import Zoo, ZooConfig
from .profiles import Profile, for_dataset


def zoo_path(artifacts: str | Path, profile, identity: DatasetIdentity) -> Path:
    """Where the pipeline keeps the zoo of a dataset (`data.dataset_identity`) for a profile
    (resolved for the dataset by `profiles.for_dataset` here): the folder
    name carries a digest of everything the zoo depends on, the data's content included, so a
    changed profile or changed images build a new zoo instead of reusing an old one."""
    inputs = {"format": ZOO_FORMAT, "zoo": zoo_config(for_dataset(profile, identity.num_classes)).to_json(),
              "features": [profile.backbone, profile.text_encoder, profile.image_size, profile.train_per_class,
                           profile.test_per_class, profile.data_seed], "data": identity.digest}
    return Path(artifacts) / "zoo" / profile.name / f"{identity.name}-{key_digest(inputs)[:10]}"


def zoo_config(profile, seed: int | None = None) -> ZooConfig:
    """The ZooConfig a profile resolved for one dataset (`profiles.for_dataset`) asks for; the zoo
    is part of the data, so its seed defaults to the profile's data seed, not the experiment seeds."""
    if profile.hidden is None:
        raise ValueError("zoo_config needs a profile resolved for its dataset: profiles.for_dataset(profile, C)")
    seed = profile.data_seed if seed is None else seed
    stage = HeadTrainConfig(epochs=profile.stage2_epochs, lr=profile.zoo_lr, batch_size=profile.zoo_batch_size)
    return ZooConfig(num_tasks=profile.zoo_tasks, k_range=tuple(profile.zoo_k), hidden=profile.hidden,
                     stage1=dataclasses.replace(stage, epochs=profile.stage1_epochs), stage2=stage,
                     universal=HeadTrainConfig(epochs=profile.universal_epochs, lr=profile.universal_lr,
                                               batch_size=profile.universal_batch_size), seed=seed,
                     held_out_classes=profile.zoo_held_out_classes, shard_size=profile.zoo_shard_size,
                     starts=profile.zoo_starts)


def profile_features(profile: Profile, dataset: str, split: str, backbone: Backbone, cache: TensorCache,
                     data_root: str | os.PathLike | None = None, device: str = "cpu") -> FeatureSet:
    """`dataset_features` with the profile's image size, images per class, data seed and batch size."""
    per_class = {"train": profile.train_per_class, "test": profile.test_per_class}[split]
    return dataset_features(dataset, split, backbone, cache, image_size=profile.image_size, per_class=per_class,
                            data_seed=profile.data_seed, data_root=data_root, batch_size=profile.batch_size,
                            device=device)


def train_config(profile, seed: int, train_tasks: int) -> TrainConfig:
    """The TrainConfig a profile  asks for, on `train_tasks` zoo heads: its
    `gen_epochs`, or with `gen_steps` set, the epochs closest to that many steps (so a 4,000-task zoo
    and a 1,000-task one get the same step budget)."""
    epochs = profile.gen_epochs
    if profile.gen_steps is not None:
        epochs = max(1, round(profile.gen_steps / max(1, train_tasks // profile.gen_batch_size)))
    return TrainConfig(epochs=epochs, batch_size=profile.gen_batch_size, lambda_sym=profile.lambda_sym,
                       sym_batch=profile.sym_batch, lambda_adv=profile.lambda_adv, augment=profile.gen_augment,
                       text_dropout=profile.text_dropout, min_snr=profile.min_snr, noise_draws=profile.noise_draws,
                       lambda_task=profile.lambda_task, checkpoint_every=profile.checkpoint_every, seed=seed)


def train_steps(profile, train_tasks: int) -> int:
    """The optimiser steps `train_config` amounts to on `train_tasks` zoo heads: its whole epochs of
    full batches (a step budget rounds to them)."""
    cfg = train_config(profile, profile.seeds[0], train_tasks)
    return cfg.epochs * (train_tasks // cfg.batch_size)


def compact_components(profile, train_tasks: int) -> int:
    """Principal components of a profile's compact tokenizer on `train_tasks` (T) seen heads:
    `gen_components`, at most T / `tasks_per_component` when that is set, and at most the T - 1
    directions those heads span (a small zoo, e.g. the held-out-classes one, has fewer); 0 for block tokens."""
    if profile.tokenizer_mode not in PCA_MODES:
        return 0
    cap = train_tasks // profile.tasks_per_component if profile.tasks_per_component else train_tasks
    return max(1, min(profile.gen_components, cap, train_tasks - 1))


def seen_split(zoo: Zoo, profile: Profile) -> tuple[list[int], list[int]]:
    """The seen tasks a profile's generators train on, and its validation tasks (`training_tasks`)."""
    return training_tasks(zoo, profile.gen_validation_tasks, profile.gen_batch_size)


def generator_config(profile, zoo: Zoo, variant: str, seed: int) -> GeneratorConfig:
    """The definition of the generator a profile trains on a zoo's `variant` text vectors."""
    train_tasks = len(seen_split(zoo, profile)[0])
    return GeneratorConfig(
        spec=zoo.spec, block_size=profile.block_size,
        tokenizer=profile.tokenizer_mode, components=compact_components(profile, train_tasks),
        dit=profile.dit, text_path=profile.text_path, diffusion_steps=profile.diffusion_steps,
        schedule=profile.noise_schedule, prediction=profile.prediction, text_variant=variant,
        text_dim=zoo.task_text[f"v_c/{variant}"].shape[1], text_encoder=zoo.source.get("text_encoder"),
        backbone=zoo.source.get("backbone"), image_size=profile.image_size, dataset=zoo.source.get("dataset"),
        zoo=zoo.name, k_range=tuple(zoo.config.k_range), validation_tasks=profile.gen_validation_tasks,
        seed=seed, train=train_config(profile, seed, train_tasks).record(), condition=profile.condition)


def generator_path(artifacts, profile, zoo: Zoo, variant: str, seed: int) -> Path:
    """Where the pipeline keeps a generator: keyed by everything that defines it."""
    cfg = generator_config(profile, zoo, variant, seed)
    return Path(artifacts) / "generator" / profile.name / f"{cfg.dataset}-{variant}-s{seed}-{cfg.digest()[:10]}"


# A user's dataset needs, per class, this many training images (the zoo fits task heads on them) and
# test images (each task is scored on them).
MIN_TRAIN_PER_CLASS = 8
MIN_TEST_PER_CLASS = 2


def check_fits(profile: Profile, dataset: str, splits: dict[str, ImageSplit], split_by_us: bool = False) -> None:
    """ValueError, in one line naming the dataset and what would do, when `profile` cannot run on
    `dataset` (both splits loaded): too few images of a class (every short class named with its own
    count; `split_by_us`: the counts are after t2w's 80/20 split of one folder per class), or too few
    seen tasks in its zoo for the generator's batches. Checked before any kernel starts."""
    short: dict[str, list[str]] = {}  # class -> its counts below the minimum, in class order
    for split, least in (("train", MIN_TRAIN_PER_CLASS), ("test", MIN_TEST_PER_CLASS)):
        counts = np.bincount(splits[split].labels, minlength=len(splits[split].class_names))
        for i in np.flatnonzero(counts < least):
            short.setdefault(splits[split].class_names[i], []).append(f"{int(counts[i])} {split}")
    if short:
        after = " (after the 80/20 split of each class folder)" if split_by_us else ""
        named = ", ".join(f"{name!r} {' and '.join(counts)}" for name, counts in sorted(short.items()))
        raise ValueError(f"dataset {dataset}: {len(short)} class(es) too small{after}: {named}; every class needs at "
                         f"least {MIN_TRAIN_PER_CLASS} train and {MIN_TEST_PER_CLASS} test images")
    resolved = for_dataset(profile, len(splits["train"].class_names))
    cfg = zoo_config(resolved)
    tasks = sample_tasks(len(splits["train"].class_names), cfg.num_tasks, cfg.k_range, cfg.seed, cfg.unseen_fraction)
    seen, needed = len(tasks.ids("seen")), resolved.gen_batch_size + resolved.gen_validation_tasks
    if seen < needed:
        raise ValueError(f"dataset {dataset}: its {len(splits['train'].class_names)} classes give {len(tasks)} distinct "
                         f"tasks ({seen} seen), but profile {profile.name} trains its generator on batches of "
                         f"gen_batch_size = {resolved.gen_batch_size} seen tasks besides gen_validation_tasks = "
                         f"{resolved.gen_validation_tasks}; give more classes, or --set gen_batch_size and "
                         "gen_validation_tasks lower")
