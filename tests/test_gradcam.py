"""Grad-CAM through the frozen backbone and a head: maps of the image size, in [0, 1], class-dependent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2wlib.encoders.backbones import load_backbone
from t2wlib.experiments.gradcam import gradcam_maps, overlay
from t2wlib.heads.adapter import HeadSpec


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("efficientnet-lite0", pretrained=False)  # random weights: shapes only


def test_maps_have_the_image_size_and_range(backbone):
    torch.manual_seed(0)
    spec = HeadSpec(backbone.feature_dim, 2, 6)
    theta, emb = torch.randn(spec.num_params) * 0.05, torch.nn.functional.normalize(torch.randn(3, 6), dim=-1)
    images = torch.randn(2, 3, 64, 64)
    maps = gradcam_maps(backbone, theta, emb, spec, images, [0, 2])
    assert maps.shape == (2, 64, 64) and maps.min() >= 0 and maps.max() <= 1 and maps.max() > 0
    other = gradcam_maps(backbone, theta, emb, spec, images, [1, 1])
    assert not np.allclose(maps, other)  # the target class matters
    assert all(not p.requires_grad for p in backbone.trunk.parameters())  # the backbone stays frozen
    shown = overlay(np.random.default_rng(0).random((64, 64, 3)), maps[0])
    assert shown.shape == (64, 64, 3) and shown.dtype == np.uint8
    with pytest.raises(ValueError, match="one target class per image"):
        gradcam_maps(backbone, theta, emb, spec, images, [0])


def test_task_images_cycle_over_the_classes_and_display_inverts_preprocessing(backbone):
    from t2wlib.experiments.gradcam import displayable, task_images

    labels = np.array([3, 1, 3, 1, 3, 0, 1])
    picks = task_images(labels, [1, 3], 4)
    assert picks == [1, 0, 3, 2] and [int(labels[i]) for i in picks] == [1, 3, 1, 3]
    with pytest.raises(ValueError, match=r"classes \[0\] have too few images"):
        task_images(labels, [0, 1], 4)
    rgb = torch.rand(2, 3, 8, 8)
    normalised = (rgb - torch.tensor(backbone.mean).view(3, 1, 1)) / torch.tensor(backbone.std).view(3, 1, 1)
    np.testing.assert_allclose(displayable(normalised, backbone), rgb.permute(0, 2, 3, 1).numpy(), atol=1e-6)
