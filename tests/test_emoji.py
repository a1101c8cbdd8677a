"""The rendered-emoji dataset (emoji.py): classes, deterministic rendering, caching, clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from t2wlib.data import emoji
from t2wlib.data.datasets import load_split
from t2wlib.data.image_split import DatasetNotFoundError


def test_class_list_is_stable_sorted_and_named_by_unicode():
    classes, skipped = emoji.emoji_classes()
    assert classes == sorted(classes) and classes == emoji.emoji_classes()[0] and len(classes) >= 300
    assert not set(classes) & set(skipped)
    names = [emoji.class_name(c) for c in classes]
    assert "red apple" in names and "bicycle" in names and len(set(names)) == len(names)
    assert not any(word in name.split() for name in names for word in ("face", "flag", "hand"))


def test_every_listed_class_has_a_glyph_in_every_style():
    classes, skipped = emoji.emoji_classes()
    for s in emoji.STYLES.values():
        cmap = emoji._cmap(s.path)
        assert all(c in cmap for c in classes), s.name
    assert skipped and all(any(c not in emoji._cmap(s.path) for s in emoji.STYLES.values()) for c in skipped)


def test_rendering_is_deterministic_and_styles_differ():
    apple = ord("\N{RED APPLE}")
    for style in emoji.STYLES:
        a, b = emoji.render(apple, style, 48, seed=7), emoji.render(apple, style, 48, seed=7)
        assert a.shape == (48, 48, 3) and a.dtype == np.uint8 and a.tobytes() == b.tobytes()
        assert emoji.render(apple, style, 48, seed=8).tobytes() != a.tobytes()
    plain = dataclasses.replace(emoji.Augmentation(), noise=0.0, blur=0.0, jitter=0.0, rotation=0.0)
    noto, symbola = (emoji.render(apple, s, 48, 3, plain).astype(int) for s in ("noto", "symbola"))
    assert np.abs(noto - symbola).mean() > 5  # a colour bitmap and a monochrome outline


def test_the_tiny_dataset_renders_once_and_is_read_back(tmp_path):
    train = load_split("emoji-tiny", "train", tmp_path)
    assert train.array.shape == (20 * 20, 48, 48, 3) and np.bincount(train.labels).tolist() == [20] * 20
    files = sorted(tmp_path.glob("emoji-*-train.safetensors"))
    assert len(files) == 1
    again = load_split("emoji-tiny", "train", tmp_path)
    assert again.array.tobytes() == train.array.tobytes() and again.class_names == train.class_names
    test = load_split("emoji-tiny", "test", tmp_path)
    assert test.class_names == train.class_names and len(test) == 200
    files[0].write_bytes(files[0].read_bytes()[:1000])  # a truncated cache is rendered again
    assert load_split("emoji-tiny", "train", tmp_path).array.tobytes() == train.array.tobytes()


def test_bad_styles_and_missing_fonts_are_named(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown emoji style 'comic'; allowed: noto, openmoji, symbola"):
        emoji.EmojiConfig(classes=5, train_per_class=1, test_per_class=1, train_styles=("comic",))
    missing = dataclasses.replace(emoji.STYLES["symbola"], path=str(tmp_path / "Symbola.ttf"))
    monkeypatch.setitem(emoji.STYLES, "symbola", missing)
    with pytest.raises(DatasetNotFoundError, match="install it with `apt-get install fonts-symbola`"):
        load_split("emoji-tiny", "train", tmp_path)
    assert not list(tmp_path.glob("*.safetensors"))  # nothing half-written
