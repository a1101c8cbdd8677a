"""Images a person drops on the page, scored exactly as `t2w predict` scores files, with the Grad-CAM
map of 09_gradcam for the class each image is given.

Uploads arrive as bytes. Each is written, under a name of the page's own making (never the uploader's),
into the page's temporary folder, the one place the page writes, and then read by the pipeline's image
rules (`classifier.read_image`, `data/images.open_rgb`); so an upload is scored by the very call that
`t2w predict` makes (`Classifier.predict`), and its probabilities are the same numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..classifier import Classifier, read_image
from ..encoders.backbones import Backbone

# The largest upload read, in bytes (the page's server refuses larger ones before they arrive).
MAX_UPLOAD_MB = 10
SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}$")  # kept from an uploaded name, for a reader's sake only


@dataclass
class ScoredImage:
    """One uploaded image: its top classes with calibrated probabilities and its Grad-CAM overlay,
    or the one-line reason it could not be read."""

    name: str  # as the uploader named it
    probabilities: dict[str, float]  # every class, the classifier's order
    overlay: np.ndarray | None  # (S, S, 3) uint8: the image with the Grad-CAM map of its top class
    error: str | None = None

    def top(self, n: int) -> list[tuple[str, float]]:
        """The n most probable classes, most probable first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:n]


def save_uploads(files: list[tuple[str, bytes]], folder: Path, max_bytes: int = MAX_UPLOAD_MB * 2**20) -> list[Path]:
    """Write each upload (name, bytes) into `folder` as <index><suffix>, a name the uploader cannot
    choose; an upload over `max_bytes` is a ValueError naming it."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (name, data) in enumerate(files):
        if len(data) > max_bytes:
            raise ValueError(f"{name} is {len(data) / 2**20:.1f} MB; the page reads images of at most "
                             f"{max_bytes / 2**20:.0f} MB")
        suffix = SUFFIX.search(name)
        path = folder / f"{i:04d}{suffix.group(0).lower() if suffix else ''}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def score_images(classifier: Classifier, backbone: Backbone, paths: list[Path], names: list[str]) -> list[ScoredImage]:
    """`Classifier.predict` on the files, then for each readable one the Grad-CAM map
    (experiments/gradcam.py) of its most probable class; errors name the upload, not its temp file."""
    from ..experiments.gradcam import displayable, gradcam_maps, overlay

    results = classifier.predict(paths, backbone=backbone)
    readable = [i for i, r in enumerate(results) if "error" not in r]
    overlays: dict[int, np.ndarray] = {}
    if readable:
        preprocess = backbone.preprocess(classifier.image_size)
        images = torch.stack([preprocess(read_image(paths[i])) for i in readable])
        targets = [classifier.class_names.index(results[i]["label"]) for i in readable]
        with torch.enable_grad():
            cams = gradcam_maps(backbone, classifier.theta, classifier.class_emb, classifier.spec, images, targets)
        shown = displayable(images, backbone)
        overlays = {i: overlay(shown[j], cams[j]) for j, i in enumerate(readable)}
    scored = []
    for i, (r, name) in enumerate(zip(results, names)):
        if "error" in r:
            scored.append(ScoredImage(name, {}, None, r["error"].replace(str(paths[i]), name)))
        else:
            scored.append(ScoredImage(name, r["probabilities"], overlays[i]))
    return scored
