"""Temperature scaling and the expected calibration error (calibration.py)."""

from __future__ import annotations

import pytest
import torch

from t2wlib.experiments.calibration import expected_calibration_error, fit_temperature, nll


def _calibrated_at(temperature: float, n: int = 20_000, k: int = 5, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / temperature): calibrated at that T."""
    g = torch.Generator().manual_seed(seed)
    logits = 4 * torch.randn(n, k, generator=g, dtype=torch.float64)
    labels = torch.multinomial((logits / temperature).softmax(-1), 1, generator=g).squeeze(1)
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 3.0])
def test_fit_temperature_recovers_the_temperature_labels_were_drawn_at(true_t):
    logits, labels = _calibrated_at(true_t)
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(true_t, rel=0.06)
    assert nll(logits, labels, t) <= nll(logits, labels, 1.0) + 1e-12


def test_ece_is_small_when_calibrated_and_falls_after_fitting_an_overconfident_model():
    logits, labels = _calibrated_at(1.0)
    assert expected_calibration_error(logits, labels) < 0.02
    overconfident = 10 * logits  # CLIP-like: the same ranking, far too sure
    t = fit_temperature(overconfident, labels)
    before, after = expected_calibration_error(overconfident, labels), expected_calibration_error(overconfident, labels, t)
    assert before > 0.1 and after < 0.02 and t == pytest.approx(10, rel=0.06)


def test_masked_classes_and_bad_input():
    logits = torch.tensor([[2.0, float("-inf"), 0.0], [0.0, 1.0, float("-inf")]])  # tasks of 2 classes in 3
    labels = torch.tensor([0, 1])
    assert 0 <= expected_calibration_error(logits, labels) <= 1 and fit_temperature(logits, labels) > 0
    with pytest.raises(ValueError, match="at least one"):
        fit_temperature(torch.empty(0, 3), torch.empty(0, dtype=torch.int64))


def test_a_temperature_fitted_on_some_rows_lowers_the_ece_of_other_rows():
    """As calibration.py fits it: on one set of logits (seen tasks), measured on another (unseen tasks)."""
    fit_logits, fit_labels = _calibrated_at(1.0, n=5_000, seed=1)
    held_logits, held_labels = _calibrated_at(1.0, n=5_000, seed=2)
    t = fit_temperature(8 * fit_logits, fit_labels)  # overconfident by 8x, as CLIP's scale of 100 is
    before = expected_calibration_error(8 * held_logits, held_labels)
    after = expected_calibration_error(8 * held_logits, held_labels, t)
    assert after < 0.5 * before and after < 0.03


def test_predict_returns_softmax_of_the_logits_over_the_files_temperature(tmp_path):
    """Classifier.predict's probabilities are softmax(head logits / T) with the T stored in the file,
    computed here independently from the backbone's features."""
    import numpy as np
    from PIL import Image

    from t2wlib.classifier import Classifier
    from t2wlib.encoders.backbones import FEATURE_DIMS, load_backbone
    from t2wlib.heads.adapter import HeadSpec, head_logits

    name, g = "efficientnet-lite0", torch.Generator().manual_seed(0)
    spec = HeadSpec(FEATURE_DIMS[name], 4, 8)
    emb = torch.nn.functional.normalize(torch.randn(3, 8, generator=g), dim=-1)
    clf = Classifier(0.05 * torch.randn(spec.num_params, generator=g), emb, ["red", "green", "blue"], spec, name, 32,
                     {}, temperature=30.0)
    clf = Classifier.load(clf.save(tmp_path / "c.safetensors"))
    rng, paths = np.random.default_rng(0), []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(paths[-1])
    got = torch.tensor([[r["probabilities"][c] for c in clf.class_names] for r in clf.predict(paths)], dtype=torch.float64)
    backbone = load_backbone(name)
    with torch.no_grad():
        features = backbone.trunk(torch.stack([backbone.preprocess(32)(Image.open(p).convert("RGB")) for p in paths]))
        logits = head_logits(clf.theta[None], features, emb, spec)[0].double()
    expected = (logits / 30.0).softmax(-1)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert (expected - logits.softmax(-1)).abs().max() > 0.05  # T = 1 would give other probabilities
