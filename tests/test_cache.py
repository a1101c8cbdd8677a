"""The tensor cache and cached features: verification, recompute on corruption, atomic writes."""

from __future__ import annotations

import json

import pytest
import torch

from t2wlib.core.files import atomic_write
from t2wlib.core.tensor_cache import CacheCorruptionWarning, TensorCache
from t2wlib.data.features import dataset_features
from t2wlib.encoders.backbones import load_backbone

KEY = {"dataset": "toy", "split": "train"}


def _leftovers(root):
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_roundtrip_and_sidecar(tmp_path):
    cache = TensorCache(tmp_path)
    t = {"X": torch.arange(6.0).reshape(2, 3), "y": torch.tensor([1, 0])}
    cache.save("features", KEY, t)
    data = cache.path("features", KEY)
    sidecar = json.loads(data.with_suffix(".json").read_text())
    assert sidecar["key"] == KEY and sidecar["shapes"] == {"X": [2, 3], "y": [2]} and len(sidecar["sha256"]) == 64
    loaded = cache.load("features", KEY)
    assert all(torch.equal(loaded[k], t[k]) for k in t)
    assert data.stat().st_mode & 0o044  # readable by others as the umask allows, not mkstemp's 0600
    assert cache.load("features", {**KEY, "split": "test"}) is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "sidecar"])
def test_corrupted_entry_is_reported_and_recomputed(tmp_path, damage):
    cache = TensorCache(tmp_path)
    cache.save("features", KEY, {"X": torch.ones(50, 4)})
    data = cache.path("features", KEY)
    meta = data.with_suffix(".json")
    raw = bytearray(data.read_bytes())
    if damage == "flip":
        raw[-3] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif damage == "truncate":
        data.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        meta.unlink()
    calls = []
    with pytest.warns(CacheCorruptionWarning, match=str(data.name)):
        out = cache.get_or_compute("features", KEY, lambda: calls.append(1) or {"X": torch.zeros(50, 4)})
    assert calls == [1] and torch.equal(out["X"], torch.zeros(50, 4))
    assert torch.equal(cache.load("features", KEY)["X"], torch.zeros(50, 4))  # repaired on disk


def test_failed_computation_leaves_nothing_behind(tmp_path):
    cache = TensorCache(tmp_path)

    def broken():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("features", KEY, broken)
    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.bin", lambda tmp: (tmp.write_bytes(b"half"), broken()))
    assert not (tmp_path / "x.bin").exists() and not _leftovers(tmp_path)
    assert cache.load("features", KEY) is None


def test_features_are_computed_once_and_keyed_by_preprocessing(tmp_path, monkeypatch):
    bb = load_backbone("resnet18", pretrained=False)
    cache = TensorCache(tmp_path)
    kwargs = dict(per_class=2, data_seed=0, progress=False)
    first = dataset_features("digits", "test", bb, cache, image_size=32, **kwargs)
    assert first.X.shape == (20, 512) and sorted(first.y.tolist()) == sorted(list(range(10)) * 2)
    assert not first.X.is_inference()  # fresh features must be usable in autograd (head training)

    def must_not_run(*a, **k):
        raise AssertionError("backbone ran although the features are cached")

    monkeypatch.setattr("t2wlib.data.features.extract_features", must_not_run)
    again = dataset_features("digits", "test", bb, cache, image_size=32, **kwargs)
    assert torch.equal(again.X, first.X) and torch.equal(again.index, first.index)
    with pytest.raises(AssertionError, match="cached"):
        dataset_features("digits", "test", bb, cache, image_size=48, **kwargs)  # new preprocessing: new entry


def test_update_json_entry_keeps_the_other_entries(tmp_path):
    import json

    from t2wlib.core.files import update_json_entry

    path = tmp_path / "bench.json"
    update_json_entry(path, "emoji", {"heads_per_s": 1.0})
    update_json_entry(path, "fashion-mnist", {"heads_per_s": 2.0})
    update_json_entry(path, "emoji", {"heads_per_s": 3.0})
    assert json.loads(path.read_text()) == {"emoji": {"heads_per_s": 3.0}, "fashion-mnist": {"heads_per_s": 2.0}}
