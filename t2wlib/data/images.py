"""Image files as the backbone sees them: one RGB picture per file, whatever its mode.

Pillow's `convert("RGB")` is right for 8-bit modes but not for all: a 16-bit greyscale image is
clipped at 255 (almost white), transparency is dropped (the colour under a transparent pixel shows),
and the EXIF orientation of a photo is ignored. `open_rgb` reads every file the same way, for
training (file datasets) and for `t2w predict`:
- EXIF orientation applied (`ImageOps.exif_transpose`);
- 16- and 32-bit integer greyscale scaled to 8 bits (65535 -> 255), float greyscale from [0, 1];
- transparency (RGBA, LA, PA, palette with a transparent colour) composited onto white;
- every other mode (1-bit, L, P, CMYK, YCbCr, RGB) through Pillow's conversion.
A path that is not a regular file (a folder, a FIFO, a device) is refused before it is opened, so
reading never blocks; a decompression bomb (more pixels than `MAX_PIXELS`) and a truncated or
unreadable file are an `ImageReadError` naming the file.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Pillow's own guard against decompression bombs (its default, 89.5 megapixels), raised to an error
# at the limit instead of a warning below twice the limit.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS
WHITE = (255, 255, 255)
# The square sides images are resized to for a backbone (a profile's and a classifier file's image_size).
IMAGE_SIZES = (16, 1024)


class ImageReadError(ValueError):
    """An image file cannot be read as a picture; the message names the file and the reason."""


def _check_regular_file(path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {path}") from None
    except OSError as err:
        raise ImageReadError(f"cannot read {path}: {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise ImageReadError(f"{path} is a directory, not an image file")
    if not stat.S_ISREG(mode):
        raise ImageReadError(f"{path} is not a regular file (a pipe, socket or device); give an image file")


def to_rgb(im: Image.Image) -> Image.Image:
    """`im` as an 8-bit RGB picture, by the rules of the module docstring (EXIF orientation aside)."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = np.asarray(im, dtype=np.float64) / 257.0  # the 16-bit range onto 0-255 (65535 / 257 = 255)
        return Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode == "F":
        grey = np.asarray(im, dtype=np.float64) * 255.0
        return Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """The image file at `path` as a fully decoded 8-bit RGB picture; ImageReadError otherwise."""
    path = Path(path)
    _check_regular_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise Image.DecompressionBombError(f"{im.width} x {im.height} pixels")
                return to_rgb(ImageOps.exif_transpose(im))  # decodes every pixel: a truncated file fails here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageReadError(f"{path} is too large to decode safely ({err}; at most {MAX_PIXELS:,} pixels)") from None
    except (OSError, SyntaxError, ValueError) as err:  # UnidentifiedImageError is an OSError
        raise ImageReadError(f"{path} is not a readable image ({err})") from None
