"""One setup object per notebook run, built from the papermill parameters.

    session = Session(PROFILE, ARTIFACTS, FIGURES, DATA_ROOT, OVERRIDES, NOTEBOOK, knobs=dict(fusion_k=fusion_k))

gives the profile (with OVERRIDES and the notebook's own knobs, typed against its fields), the device, the feature and text
cache, a figure writer whose provenance records the notebook and the overrides, the backbone and
text encoder (loaded on first use), and each dataset's zoo, features and generators by name, so
that a notebook's setup is one line and its loops read `for d in session.each_dataset(): ...`.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..core.runtime import resolve_device
from ..core.tensor_cache import TensorCache
from .plotting import FigureWriter
from .overrides import typed_overrides
from .profiles import Profile, for_dataset, get_profile

# huggingface_hub (imported by timm and sentence-transformers) takes tqdm.auto, which in a kernel without
# ipywidgets warns "IProgress not found"; the library's own bars are text bars (tqdm.std), so a notebook
# session, the first thing every notebook imports, silences that one warning.
warnings.filterwarnings("ignore", message="IProgress not found")


class Session:
    def __init__(self, profile: str, artifacts: str | Path, figures: str | Path, data_root: str | Path = "",
                 overrides: dict | list[str] | None = None, notebook: str = "", knobs: dict | None = None):
        """`knobs`: the notebook's own parameters (its parameters cell, `papermill -p fusion_k 4`), profile
        fields whose None means the profile's value; the ones given join the overrides, typed and checked
        alike, and so are recorded in every output's provenance."""
        given = {k: v for k, v in (knobs or {}).items() if v is not None}
        self.overrides = {**typed_overrides(overrides), **typed_overrides(given)}
        self.profile: Profile = get_profile(profile, **self.overrides)
        self.artifacts = Path(artifacts)
        self.figures = Path(figures)
        self.data_root = Path(data_root or self.artifacts / "data")
        self.notebook = notebook
        self.device = resolve_device(self.profile.device)
        self.cache = TensorCache(self.artifacts / "cache")
        self.seed = self.profile.seeds[0]  # the applications (05-09) use the first seed's generator
        from ..data.user_folders import register_user_dataset

        for entry in self.profile.user_data:  # a user's folders, by name, in this kernel too
            register_user_dataset(entry)
        self._datasets = {name: DatasetRun(self, name) for name in self.profile.datasets}

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={v!r}" for k, v in self.overrides.items()) or "none"
        return (f"Session(profile {self.profile.name!r}, overrides: {changed}; device {self.device}; datasets "
                f"{', '.join(self.profile.datasets)}; artifacts {self.artifacts}; figures {self.figures})")

    @functools.cached_property
    def out(self) -> FigureWriter:
        """The figure writer for outputs made with all the profile's seeds (made on first use)."""
        return self.writer(self.profile.seeds)

    def writer(self, seeds) -> FigureWriter:
        """A figure writer for outputs made with `seeds`, recording this run in their provenance."""
        run = {"notebook": self.notebook, "overrides": self.overrides}
        return FigureWriter(self.figures, self.profile.name, seeds, {k: v for k, v in run.items() if v})

    @functools.cached_property
    def backbone(self):
        from ..encoders.backbones import load_backbone

        return load_backbone(self.profile.backbone, device=self.device)

    @functools.cached_property
    def encoder(self):
        from ..encoders.text import load_text_encoder

        return load_text_encoder(self.profile.text_encoder, device=self.device)

    def features(self, dataset: str, split: str):
        """Cached backbone features of one split of `dataset` (features.profile_features)."""
        from .config import profile_features

        return profile_features(self.profile, dataset, split, self.backbone, self.cache, self.data_root, self.device)

    def dataset(self, name: str) -> DatasetRun:
        if name not in self._datasets:
            raise KeyError(f"dataset {name!r} is not in this run; its datasets: {', '.join(self._datasets)}")
        return self._datasets[name]

    def zoo_dir(self, dataset: str, profile: Profile | None = None) -> Path:
        """Where the pipeline keeps the zoo of `dataset` (with `profile`: e.g. the held-out one)."""
        from .config import zoo_path

        return zoo_path(self.artifacts, profile or self.profile, self.dataset(dataset).identity)

    def zoo(self, dataset: str, profile: Profile | None = None):
        """The verified zoo the pipeline built for `dataset` (with `profile`: e.g. the held-out one)."""
        from ..zoo.model_zoo import load_zoo

        return load_zoo(self.zoo_dir(dataset, profile))

    def generator_dir(self, zoo, variant: str = "prompt", seed: int | None = None) -> Path:
        from .config import generator_path

        return generator_path(self.artifacts, self.profile, zoo, variant, self.seed if seed is None else seed)

    def generator(self, zoo, variant: str = "prompt", seed: int | None = None):
        """The trained generator of 02_train (or 03's seeds and variants) for `zoo`."""
        from ..generator.t2w import T2WGenerator

        return T2WGenerator.load(self.generator_dir(zoo, variant, seed), self.device)

    def each_dataset(self) -> list[DatasetRun]:
        """One `DatasetRun` per dataset of the profile, in order; the same objects on every call, so
        a zoo, a feature set or a generator is loaded once per notebook however many cells use it."""
        return list(self._datasets.values())


@dataclass
class DatasetRun:
    """One dataset of a session: its zoo, features and generator, each loaded on first use."""

    session: Session
    name: str

    @functools.cached_property
    def identity(self):
        """data.DatasetIdentity: class count and content digest of both splits."""
        from ..data.datasets import dataset_identity

        return dataset_identity(self.name, self.session.data_root)

    @functools.cached_property
    def profile(self) -> Profile:
        """The session's profile resolved for this dataset's number of classes (profiles.for_dataset)."""
        return for_dataset(self.session.profile, self.identity.num_classes)

    @functools.cached_property
    def zoo(self):
        return self.session.zoo(self.name)

    @functools.cached_property
    def train(self):
        return self.session.features(self.name, "train")

    @functools.cached_property
    def test(self):
        return self.session.features(self.name, "test")

    @functools.cached_property
    def generator(self):
        return self.session.generator(self.zoo)
