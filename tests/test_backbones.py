"""Backbones: the bundled EfficientNet-Lite0 is really ImageNet-pretrained; the paper's ResNet-18 builds."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_image

from t2wlib.encoders.backbones import imagenet_categories, load_backbone

BUILDINGS = {"palace", "bell cote", "monastery", "church", "mosque", "stupa", "castle", "pagoda"}


@pytest.fixture(scope="module")
def effnet():
    return load_backbone("efficientnet-lite0")


def _top(bb, name: str, k: int) -> list[str]:
    x = bb.preprocess(224)(Image.fromarray(load_sample_image(name))).unsqueeze(0)
    with torch.inference_mode():
        logits = bb.classifier(bb.trunk(x))
    cats = imagenet_categories()
    return [cats[i] for i in logits.topk(k).indices[0]]


def test_bundled_efficientnet_lite0_labels_sklearn_samples(effnet):
    assert effnet.weights.endswith(".pth")
    assert "daisy" == _top(effnet, "flower.jpg", 1)[0]
    assert BUILDINGS & set(_top(effnet, "china.jpg", 3)), _top(effnet, "china.jpg", 3)


def test_features_are_frozen_and_of_dimension_F(effnet):
    x = torch.randn(2, 3, 112, 112)
    with torch.inference_mode():
        f = effnet.trunk(x)
    assert f.shape == (2, 1280) == (2, effnet.feature_dim)
    assert not any(p.requires_grad for p in effnet.trunk.parameters())
    assert not effnet.trunk.training
    assert isinstance(effnet.module(effnet.gradcam_layer), torch.nn.Conv2d)


def test_resnet18_without_pretrained_weights_has_paper_shapes():
    bb = load_backbone("resnet18", pretrained=False)
    with torch.inference_mode():
        f = bb.trunk(torch.randn(2, 3, 64, 64))
    assert bb.weights == "random" and f.shape == (2, 512) == (2, bb.feature_dim)
    assert bb.classifier.out_features == 1000
    assert bb.module(bb.gradcam_layer) is bb.trunk.layer2[-1].conv2


def test_unknown_backbone():
    with pytest.raises(KeyError, match="unknown backbone 'vgg16'.*efficientnet-lite0"):
        load_backbone("vgg16")


def test_feature_dims_known_without_building_match_the_built_backbones():
    from t2wlib.encoders.backbones import BACKBONES, FEATURE_DIMS

    assert set(FEATURE_DIMS) == set(BACKBONES.names())
    for name in BACKBONES.names():
        assert load_backbone(name, pretrained=False).feature_dim == FEATURE_DIMS[name], name
