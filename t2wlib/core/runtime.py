"""Run-time choices shared by all stages: the device, and the test-only switch for downloaded weights."""

from __future__ import annotations

import os
import warnings

import torch

# Test-only: with this set to "1", the models whose weights come from the internet (ResNet-18, CLIP)
# are built with random weights, so the paper profile's pipeline runs offline on fixture data.
# Results made under it are meaningless; every load says so.
RANDOM_WEIGHTS_FOR_TESTS = "T2W_TEST_RANDOM_WEIGHTS"


def downloaded_weights_replaced(name: str) -> bool:
    """True (with a warning naming `name`) when the test-only switch replaces downloaded weights."""
    if os.environ.get(RANDOM_WEIGHTS_FOR_TESTS) != "1":
        return False
    warnings.warn(f"{RANDOM_WEIGHTS_FOR_TESTS}=1: {name} has RANDOM weights (tests only; results are meaningless)",
                  stacklevel=3)
    return True

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> str:
    """"auto" -> "cuda" when available else "cpu"; "cuda" without a GPU is an error."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r}; allowed: {', '.join(DEVICES)} or cuda:N")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available")
    return name

