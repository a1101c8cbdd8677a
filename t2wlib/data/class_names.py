"""Class names as a user gives them, in one form wherever they come from (a folder's name, a
classes file, `--classes`, descriptions.txt): Unicode compatibility form (NFKC), invisible characters
dropped (a byte-order mark, zero-width spaces and joiners, soft hyphens), `_` read as a space, runs of
spaces as one; control characters (newlines, tabs, terminal escapes) are refused, since a name is
printed and written into tab-separated output. Two names are one class when they agree beyond case
(`class_key`): "Maple_tree", "maple tree" and "MAPLE TREE" are one class, refused as a duplicate."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

# Characters that show as nothing, dropped from a name: BOM / zero-width no-break space, zero-width
# space, non-joiner, joiner, word joiner, soft hyphen.
INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"))
INLINE_COMMENT = re.compile(r"\s#")  # a comment after a name: "#" after white space


def clean_text(text: str, what: str) -> str:
    """`text` in Unicode compatibility form, invisible characters dropped and spaces collapsed; a
    control character is a ValueError naming it (`what` says whose text it is)."""
    form = unicodedata.normalize("NFKC", text).translate(INVISIBLE)
    bad = next((c for c in form if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co")), None)
    if bad is not None:
        raise ValueError(f"{what} {text!r} holds the control character U+{ord(bad):04X}; give printable text on "
                         "one line")
    return " ".join(form.split())


# Scripts whose letters look alike: a word that mixes them prints like another word ("аpple" with a
# Cyrillic "а"), so it is refused.
LOOK_ALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def clean_name(name: str, what: str = "class name") -> str:
    """`name` in the one form every class name takes (module docstring); a word mixing Latin,
    Cyrillic or Greek letters is a ValueError naming the odd letter."""
    clean = " ".join(clean_text(name, what).replace("_", " ").split())
    for word in clean.split():
        letters = {}  # script -> its first letter in the word
        for ch in word:
            letters.setdefault(unicodedata.name(ch, "").split(" ")[0], ch)
        letters = {script: ch for script, ch in letters.items() if script in LOOK_ALIKE_SCRIPTS}
        if len(letters) > 1:
            odd = min(letters.values(), key=word.count)
            raise ValueError(f"{what} {name!r} mixes {' and '.join(sorted(letters))} letters in one word ({odd!r} is "
                             f"{unicodedata.name(odd)}), so it prints like another name; type it in one script")
    return clean


def class_key(name: str) -> str:
    """What makes two class names the same class: their clean form, case-folded ("Straße" and
    "STRASSE", "Maple_tree" and "maple tree" are one class)."""
    return clean_name(name).casefold()


def check_classes(classes: list[str], what: str = "class name") -> list[str]:
    """Clean class names (`clean_name`); fewer than two, empty names and duplicates are errors."""
    names = [clean_name(c, what) for c in classes]
    if len(names) < 2 or any(not n for n in names):
        raise ValueError(f"need at least two non-empty class names, got {classes!r}")
    seen = {}
    for given, n in zip(classes, names):
        if class_key(n) in seen:
            raise ValueError(f"duplicate class {given!r} (also given as {seen[class_key(n)]!r}); class names must "
                             "differ beyond case, spaces, '_' and Unicode form")
        seen[class_key(n)] = given
    return names


def read_classes_file(path: str | Path) -> tuple[list[str], list[str] | None]:
    """Class names (and descriptions) from a text file: one class per line, either every line
    `name: description` or every line a bare name; blank lines and `#` comments are ignored, a whole
    line or the rest of a line from a `#` after a space ("sneaker  # running shoes"; "C#" keeps its `#`)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"classes file {path} is a directory; give a text file with one class per line")
    if path.exists() and not path.is_file():
        raise ValueError(f"classes file {path} is not a regular file (a pipe or device); give a text file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a leading byte-order mark is not part of the first name
    except UnicodeDecodeError as err:
        raise ValueError(f"classes file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    return parse_classes_text(text, f"classes file {path}")


def parse_classes_text(text: str, where: str) -> tuple[list[str], list[str] | None]:
    """Class names (and descriptions) from text as a classes file holds it (`read_classes_file`'s
    rules); `where` names the text in errors ("classes file x.txt", "the class list")."""
    lines = [INLINE_COMMENT.split(ln, 1)[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    pairs = [ln.split(":", 1) for ln in lines]
    with_desc = [len(p) == 2 for p in pairs]
    if any(with_desc) and not all(with_desc):
        bare = [lines[i] for i, d in enumerate(with_desc) if not d][:3]
        raise ValueError(f"{where} mixes 'name: description' lines with bare names (e.g. {bare}); "
                         "give a description on every line or on none")
    names = [clean_name(p[0], f"class name in {where}") for p in pairs]
    if all(with_desc) and pairs:
        descs = [clean_text(p[1], f"description in {where}") for p in pairs]
        empty = [n for n, d in zip(names, descs) if not d]
        if empty:
            raise ValueError(f"{where}: empty description for {empty[:3]}")
        return names, descs
    return names, None
