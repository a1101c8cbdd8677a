"""Text -> classifier, the practical product: class names (or descriptions) in, a ready classifier out.

A classifier file is one sealed safetensors file (sealed.save_sealed: a checksum over everything in
it): `theta` (P,) the generated head, `class_emb` (K, D) the class embeddings its logits use, and
string metadata (backbone, image size, head spec, class names, the generator it came from), so
`predict` needs nothing else besides the named backbone. Loading checks the checksum, the class
names against the embedding rows, theta against the head spec, and the backbone's name.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .core.sealed import load_sealed, save_sealed
from .data.class_names import check_classes
from .data.images import IMAGE_SIZES, open_rgb
from .data.task_condition import descriptions as nl_descriptions
from .data.task_condition import check_distinct, prompts
from .encoders.backbones import BACKBONES, FEATURE_DIMS, Backbone, load_backbone
from .encoders.text import TextEncoder
from .generator.t2w import T2WGenerator
from .heads.adapter import CLIPAdapter, HeadSpec

FORMAT = "t2w-classifier/3"


class OutsideTrainedRangeWarning(UserWarning):
    """A classifier was asked for more or fewer classes than the generator's tasks had."""


@dataclass
class Classifier:
    """A generated head with everything needed to apply it to images."""

    theta: torch.Tensor  # (P,)
    class_emb: torch.Tensor  # (K, D) unit norm
    class_names: list[str]
    spec: HeadSpec
    backbone: str
    image_size: int
    source: dict
    # Logits are divided by this before the softmax: the generator's fitted temperature
    # (calibration.py), 1 where the generator has none (CLIP's logit scale of 100, uncalibrated).
    temperature: float = 1.0

    def __post_init__(self):
        """A classifier that could not predict correctly is refused when made or loaded, not at predict."""
        if check_classes(self.class_names) != self.class_names:
            raise ValueError(f"class names {self.class_names!r} are not in their clean form (data/class_names.py)")
        if self.backbone not in BACKBONES.names():
            raise ValueError(f"unknown backbone {self.backbone!r}; allowed: {', '.join(BACKBONES.names())}")
        if FEATURE_DIMS[self.backbone] != self.spec.feature_dim:
            raise ValueError(f"backbone {self.backbone} gives {FEATURE_DIMS[self.backbone]} features but the head takes "
                             f"{self.spec.feature_dim}")
        low, high = IMAGE_SIZES
        if not (isinstance(self.image_size, int) and low <= self.image_size <= high):
            raise ValueError(f"image size {self.image_size!r} is out of range; allowed: {low} to {high} pixels")
        if tuple(self.theta.shape) != (self.spec.num_params,):
            raise ValueError(f"theta has shape {tuple(self.theta.shape)}; head {self.spec} needs ({self.spec.num_params},)")
        if tuple(self.class_emb.shape) != (len(self.class_names), self.spec.embed_dim):
            raise ValueError(f"class_emb has shape {tuple(self.class_emb.shape)} for {len(self.class_names)} class names; "
                             f"needs ({len(self.class_names)}, {self.spec.embed_dim})")
        if not (torch.isfinite(self.theta).all() and torch.isfinite(self.class_emb).all()):
            raise ValueError("the classifier's weights hold NaN or inf values")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature {self.temperature} must be a positive number")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        meta = {"class_names": json.dumps(self.class_names), "backbone": self.backbone,
                "image_size": str(self.image_size),
                "spec": json.dumps(self.spec.to_json()),
                "source": json.dumps(self.source), "temperature": repr(float(self.temperature)), "format": FORMAT}
        save_sealed(path, {"theta": self.theta.float(), "class_emb": self.class_emb.float()}, meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Classifier:
        """A verified classifier file (checksum, fields, shapes); errors name the file."""
        tensors, meta = load_sealed(Path(path), "classifier file")
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} classifier file (made by `t2w generate`)")
        try:
            names, spec = json.loads(meta["class_names"]), HeadSpec.from_json(json.loads(meta["spec"]))
            return cls(tensors["theta"], tensors["class_emb"], names, spec, meta["backbone"], int(meta["image_size"]),
                       json.loads(meta["source"]), float(meta["temperature"]))
        except KeyError as err:
            raise ValueError(f"classifier file {path} lacks the field {err.args[0]!r}; write it again with "
                             "`t2w generate`") from None
        except (TypeError, ValueError) as err:
            raise ValueError(f"classifier file {path} is not usable: {err}") from None

    @torch.no_grad()
    def predict(self, image_paths: list[str | Path], device: str = "cpu", batch_size: int = 32,
                backbone: Backbone | None = None) -> list[dict]:
        """Class probabilities for each image file, in order: {path, label, probability, probabilities},
        or {path, error} for a file that is not a readable image (the others are still scored).
        `backbone`: the classifier's backbone already loaded (the demo page keeps one), else loaded here."""
        if backbone is None:
            backbone = load_backbone(self.backbone, device=device)
        elif backbone.name != self.backbone:
            raise ValueError(f"the classifier needs backbone {self.backbone}, not {backbone.name}")
        if backbone.feature_dim != self.spec.feature_dim:
            raise ValueError(f"the classifier's head takes {self.spec.feature_dim} features but backbone {self.backbone} "
                             f"gives {backbone.feature_dim}; generate it with a generator trained on that backbone")
        head = CLIPAdapter.from_flat(self.theta, self.spec).to(device)
        preprocess, results = backbone.preprocess(self.image_size), []
        for s in range(0, len(image_paths), batch_size):
            chunk, images, read = image_paths[s:s + batch_size], [], []
            for p in chunk:
                try:
                    images.append(preprocess(read_image(p)))
                    read.append(p)
                except ValueError as err:
                    results.append({"path": str(p), "error": str(err)})
            if not images:
                continue
            logits = head.logits(backbone.trunk(torch.stack(images).to(device)), self.class_emb.to(device))
            probs = (logits / self.temperature).softmax(-1)
            for p, row in zip(read, probs.cpu()):
                i = int(row.argmax())
                results.append({"path": str(p), "label": self.class_names[i], "probability": float(row[i]),
                                "probabilities": dict(zip(self.class_names, map(float, row)))})
        order = {str(p): i for i, p in enumerate(image_paths)}
        return sorted(results, key=lambda r: order[r["path"]])


URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # scheme://, as a URL starts


def read_image(path: str | Path) -> Image.Image:
    """An RGB image, fully decoded; a URL, or a missing, unreadable, truncated or non-image file is a
    ValueError naming it."""
    if URL.match(str(path)):
        raise ValueError(f"{path} is a URL; t2w reads image files only (nothing is downloaded): save the image and "
                         "give its path")
    return open_rgb(path)  # its errors are ValueErrors naming the file


def text_to_classifier(generator: T2WGenerator, encoder: TextEncoder, classes: list[str],
                       descriptions: list[str] | None = None, seed: int = 0, steps: int = 20,
                       guidance: float = 1.0) -> Classifier:
    """Generate a classifier for `classes`: v_c from the generator's text variant (Alg. 1 over
    "A photo of {class}" or over descriptions), a head sampled by DDIM, logits over the prompts."""
    names = check_classes(classes)
    cfg = generator.config
    if encoder.name != cfg.text_encoder:
        raise ValueError(f"the generator was trained with text encoder {cfg.text_encoder!r}, not {encoder.name!r}")
    if cfg.backbone is None:
        raise ValueError("the generator's definition names no backbone, so its heads cannot be applied to images")
    low, high = cfg.k_range
    if not low <= len(names) <= high:
        warnings.warn(f"{len(names)} classes is outside the {low} to {high} classes of the generator's training tasks; "
                      "the head may be poor", OutsideTrainedRangeWarning, stacklevel=2)
    class_emb = encoder.encode(prompts(names))  # (K, D): the heads' logits use template prompts
    check_distinct(names, class_emb)
    if cfg.text_variant == "description":
        texts = descriptions if descriptions is not None else nl_descriptions(names)
        if len(texts) != len(names):
            raise ValueError(f"{len(texts)} descriptions for {len(names)} classes")
        cond = encoder.encode(texts)
    else:
        cond = class_emb
    if cfg.class_slots() and len(names) > cfg.class_slots():
        raise ValueError(f"{len(names)} classes: this generator is conditioned on the set of class embeddings, "
                         f"of at most {cfg.class_slots()} classes (its largest training task); allowed: 2 to "
                         f"{cfg.class_slots()} classes")
    theta = generator.sample(generator.condition_of(cond.unsqueeze(0)), steps=steps, guidance=guidance, seed=seed)[0]
    calibration = generator.calibration or {}
    source = {"generator": cfg.dataset, "generator_definition": cfg.digest(), "text_variant": cfg.text_variant,
              "seed": seed, "steps": steps, "guidance": guidance,
              "calibration": {k: calibration[k] for k in ("fitted_on", "ece_before", "ece_after") if k in calibration}}
    return Classifier(theta, class_emb, names, cfg.spec, cfg.backbone, cfg.image_size, source,
                      calibration.get("temperature", 1.0))
