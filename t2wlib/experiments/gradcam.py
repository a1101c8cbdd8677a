"""Grad-CAM for a backbone + CLIP-adapter head (paper App. D, Figure 4), with `pytorch_grad_cam`.

The classifier is the frozen backbone followed by a head θ scoring the task's class embeddings;
Grad-CAM weights the activations of the backbone's mid-level `gradcam_layer` (ResNet-18's
layer2[-1].conv2; EfficientNet-Lite0's last conv of the stride-8 stage) by the gradient of the
target class logit. The backbone's weights are frozen, so the input is made to require a gradient,
or autograd would build no graph to the hooked layer.
"""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from ..encoders.backbones import Backbone
from ..heads.adapter import HeadSpec, head_logits


class HeadClassifier(nn.Module):
    """Images (B, 3, S, S) -> logits (B, K) over a task's K classes: backbone trunk, then head θ (P,)
    against class_emb (K, D)."""

    def __init__(self, backbone: Backbone, theta: torch.Tensor, class_emb: torch.Tensor, spec: HeadSpec):
        super().__init__()
        self.trunk, self.spec = backbone.trunk, spec
        self.register_buffer("theta", theta.detach().float())
        self.register_buffer("class_emb", class_emb.detach().float())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not images.requires_grad:
            images = images.detach().requires_grad_(True)
        return head_logits(self.theta[None], self.trunk(images), self.class_emb, self.spec)[0]


def gradcam_maps(backbone: Backbone, theta: torch.Tensor, class_emb: torch.Tensor, spec: HeadSpec,
                 images: torch.Tensor, targets: list[int]) -> np.ndarray:
    """Grad-CAM maps (B, S, S) in [0, 1] for preprocessed images (B, 3, S, S), each for its target
    class (an index into class_emb's K classes)."""
    if len(targets) != len(images):
        raise ValueError(f"one target class per image: {len(images)} images, {len(targets)} targets")
    model = HeadClassifier(backbone, theta, class_emb, spec).eval()
    with GradCAM(model=model, target_layers=[backbone.module(backbone.gradcam_layer)]) as cam:
        return cam(input_tensor=images, targets=[ClassifierOutputTarget(int(t)) for t in targets])


def overlay(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """An RGB image (S, S, 3) in [0, 1] with a Grad-CAM map (S, S) on top, as uint8 (S, S, 3)."""
    return show_cam_on_image(image.astype(np.float32), cam, use_rgb=True)


def task_images(labels: np.ndarray, classes: list[int], n: int) -> list[int]:
    """Indices of n images for a task, cycling over its classes (the i-th image of each class in
    turn), so that every class is shown; labels (N,) are the split's global labels."""
    per_class = {c: np.flatnonzero(labels == c) for c in classes}
    short = [c for c, idx in per_class.items() if len(idx) < -(-n // len(classes))]
    if short:
        raise ValueError(f"classes {short} have too few images for {n} images over {len(classes)} classes")
    return [int(per_class[classes[i % len(classes)]][i // len(classes)]) for i in range(n)]


def displayable(images: torch.Tensor, backbone: Backbone) -> np.ndarray:
    """Preprocessed images (B, 3, S, S) back to RGB in [0, 1] for display, (B, S, S, 3)."""
    std, mean = torch.tensor(backbone.std).view(3, 1, 1), torch.tensor(backbone.mean).view(3, 1, 1)
    return (images.detach().cpu() * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()
