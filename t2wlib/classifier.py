"""Text -> classifier, the practical product: class names (or descriptions) in, a ready classifier out.

A classifier file is one safetensors file: `theta` (P,) the generated head, `class_emb` (K, D) the
class embeddings its logits use, and string metadata (backbone, image size, head spec, class names,
the generator it came from), so `predict` needs nothing else besides the named backbone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from .backbones import load_backbone
from .cache import atomic_write
from .generator import T2WGenerator
from .head import CLIPAdapter, HeadSpec
from .task_text import descriptions as nl_descriptions
from .task_text import fuse_features, prompts
from .text import TextEncoder


def check_classes(classes: list[str]) -> list[str]:
    """Stripped class names; empty lists, empty names and duplicates are errors."""
    names = [c.strip() for c in classes]
    if len(names) < 2 or any(not n for n in names):
        raise ValueError(f"need at least two non-empty class names, got {classes!r}")
    seen = {}
    for n in names:
        if n.lower() in seen:
            raise ValueError(f"duplicate class {n!r} (also given as {seen[n.lower()]!r})")
        seen[n.lower()] = n
    return names


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

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        meta = {"class_names": json.dumps(self.class_names), "backbone": self.backbone,
                "image_size": str(self.image_size), "spec": json.dumps([self.spec.feature_dim, self.spec.hidden, self.spec.embed_dim]),
                "source": json.dumps(self.source), "format": "t2w-classifier/1"}
        tensors = {"theta": self.theta.float().contiguous(), "class_emb": self.class_emb.float().contiguous()}
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Classifier":
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "t2w-classifier/1":
                raise ValueError(f"{path} is not a t2w classifier file (made by `t2w generate`)")
            theta, class_emb = f.get_tensor("theta"), f.get_tensor("class_emb")
        return cls(theta, class_emb, json.loads(meta["class_names"]), HeadSpec(*json.loads(meta["spec"])),
                   meta["backbone"], int(meta["image_size"]), json.loads(meta["source"]))

    @torch.no_grad()
    def predict(self, image_paths: list[str | Path], device: str = "cpu", batch_size: int = 32) -> list[dict]:
        """Class probabilities for each image file: [{path, label, probability, probabilities}]."""
        backbone = load_backbone(self.backbone, device=device)  # unknown names raise, listing the valid ones
        head = CLIPAdapter.from_flat(self.theta, self.spec).to(device)
        preprocess, results = backbone.preprocess(self.image_size), []
        for s in range(0, len(image_paths), batch_size):
            chunk = image_paths[s:s + batch_size]
            images = []
            for p in chunk:
                with Image.open(p) as im:
                    images.append(preprocess(im.convert("RGB")))
            probs = head.logits(backbone.trunk(torch.stack(images).to(device)), self.class_emb.to(device)).softmax(-1)
            for p, row in zip(chunk, probs.cpu()):
                i = int(row.argmax())
                results.append({"path": str(p), "label": self.class_names[i], "probability": float(row[i]),
                                "probabilities": dict(zip(self.class_names, map(float, row)))})
        return results


def text_to_classifier(generator: T2WGenerator, encoder: TextEncoder, classes: list[str],
                       descriptions: list[str] | None = None, seed: int = 0, steps: int = 20,
                       guidance: float = 1.0) -> Classifier:
    """Generate a classifier for `classes`: v_c from the generator's text variant (Alg. 1 over
    "A photo of {class}" or over descriptions), a head sampled by DDIM, logits over the prompts."""
    names = check_classes(classes)
    meta = generator.meta
    if encoder.name != meta["text_encoder"]:
        raise ValueError(f"the generator was trained with text encoder {meta['text_encoder']!r}, not {encoder.name!r}")
    class_emb = encoder.encode(prompts(names))  # (K, D): the heads' logits use template prompts
    if meta["text_variant"] == "description":
        texts = descriptions if descriptions is not None else nl_descriptions(names)
        if len(texts) != len(names):
            raise ValueError(f"{len(texts)} descriptions for {len(names)} classes")
        cond = encoder.encode(texts)
    else:
        cond = class_emb
    v_c = fuse_features(cond).unsqueeze(0)  # (1, D)
    theta = generator.sample(v_c, steps=steps, guidance=guidance, seed=seed)[0]
    source = {"generator": meta.get("dataset"), "text_variant": meta["text_variant"], "seed": seed, "steps": steps,
              "guidance": guidance}
    return Classifier(theta, class_emb, names, HeadSpec(*meta["spec"]), meta["backbone"], meta["image_size"], source)
