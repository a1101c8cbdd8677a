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
