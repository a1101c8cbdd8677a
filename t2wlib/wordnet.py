"""Glosses from the WordNet 3.0 database files (Debian's `wordnet-base`, wndb(5) format).

nltk's reader refuses paths outside its data folders and needs a `lexnames` file that Debian does not
ship, so this reads the two files it needs directly: `index.noun` (lemma -> synset offsets, most
frequent sense first) and `data.noun` (one synset per line at its byte offset, gloss after " | ").
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

DEFAULT_DIR = Path(os.environ.get("WNHOME", "/usr/share/wordnet"))


def available(directory: Path = DEFAULT_DIR) -> bool:
    return (directory / "index.noun").is_file() and (directory / "data.noun").is_file()


@functools.lru_cache(maxsize=4)
def _noun_index(directory: Path) -> dict[str, list[int]]:
    """lemma -> synset offsets; an index line is `lemma pos n_synsets n_ptrs ptr... n_senses n_tagged off...`."""
    index = {}
    with open(directory / "index.noun", encoding="utf-8") as f:
        for line in f:
            if line.startswith(" "):  # license header lines start with two spaces
                continue
            fields = line.split()
            n_synsets = int(fields[2])
            index[fields[0]] = [int(o) for o in fields[-n_synsets:]]
    return index


# Lexicographer files (lexnames(5WN)) of things a photo can show: animal, artifact, body, food,
# location, object, person, phenomenon, plant. Other senses (acts, feelings, furs as possessions...)
# are skipped when picking the sense of an image class.
DEPICTABLE_LEXFILES = {5, 6, 8, 13, 15, 17, 18, 19, 20}
ANIMAL = 5


def _synset_line(offset: int, directory: Path) -> str:
    with open(directory / "data.noun", "rb") as f:
        f.seek(offset)
        line = f.readline().decode("utf-8")
    if not line.startswith(f"{offset:08d}"):
        raise KeyError(f"no noun synset at offset {offset:08d} in {directory / 'data.noun'}")
    return line


def gloss_at(offset: int, directory: Path = DEFAULT_DIR) -> str:
    """The gloss of the noun synset at byte `offset` of data.noun (a TinyImageNet wnid is 'n' + offset)."""
    return _synset_line(offset, directory).partition(" | ")[2].strip()


def image_class_gloss(lemma: str, directory: Path = DEFAULT_DIR) -> str | None:
    """Gloss of the sense of `lemma` an image class most likely means: an animal sense if any (a
    "flatfish" photo shows the fish, not its flesh), else the most frequent depictable sense, else
    the most frequent sense; None if WordNet lacks the lemma. A data line is `offset lexfile ...`."""
    offsets = _noun_index(directory).get(lemma.strip().lower().replace(" ", "_").replace("-", "_"))
    if not offsets:
        return None
    lines = [_synset_line(o, directory) for o in offsets]
    lexfile = [int(ln.split()[1]) for ln in lines]
    ranked = sorted(range(len(lines)), key=lambda i: (lexfile[i] != ANIMAL, lexfile[i] not in DEPICTABLE_LEXFILES, i))
    chosen = lines[ranked[0]]
    return chosen.partition(" | ")[2].strip()
