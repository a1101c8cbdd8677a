"""Class names as a user gives them: what makes two names one class, the checks every list of
names passes, and the classes file (`--classes-file`, a folder's class list)."""

from __future__ import annotations

import unicodedata
from pathlib import Path


def class_key(name: str) -> str:
    """What makes two class names the same class: Unicode compatibility form, case-folded
    ("Straße" and "STRASSE" are one class)."""
    return unicodedata.normalize("NFKC", name).casefold()


def check_classes(classes: list[str]) -> list[str]:
    """Stripped class names; empty lists, empty names and duplicates are errors."""
    names = [c.strip() for c in classes]
    if len(names) < 2 or any(not n for n in names):
        raise ValueError(f"need at least two non-empty class names, got {classes!r}")
    seen = {}
    for n in names:
        if class_key(n) in seen:
            raise ValueError(f"duplicate class {n!r} (also given as {seen[class_key(n)]!r}); class names must differ "
                             "beyond case and Unicode form")
        seen[class_key(n)] = n
    return names


def read_classes_file(path: str | Path) -> tuple[list[str], list[str] | None]:
    """Class names (and descriptions) from a text file: one class per line, either every line
    `name: description` or every line a bare name; blank lines and `#` comments are ignored."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"classes file {path} is a directory; give a text file with one class per line")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"classes file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    pairs = [ln.split(":", 1) for ln in lines]
    with_desc = [len(p) == 2 for p in pairs]
    if any(with_desc) and not all(with_desc):
        bare = [lines[i] for i, d in enumerate(with_desc) if not d][:3]
        raise ValueError(f"classes file {path} mixes 'name: description' lines with bare names (e.g. {bare}); "
                         "give a description on every line or on none")
    names = [p[0].strip() for p in pairs]
    if all(with_desc) and pairs:
        descs = [p[1].strip() for p in pairs]
        empty = [n for n, d in zip(names, descs) if not d]
        if empty:
            raise ValueError(f"classes file {path}: empty description for {empty[:3]}")
        return names, descs
    return names, None
