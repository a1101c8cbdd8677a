"""Glosses and senses from the WordNet 3.0 database files (Debian's `wordnet-base`, wndb(5) format).

nltk's reader refuses paths outside its data folders and needs a `lexnames` file that Debian does not
ship, so this reads the two files it needs directly: `index.noun` (lemma -> synset offsets, most
frequent sense first) and `data.noun` (one synset per line at its byte offset: lexicographer file,
words, pointers, then the gloss after " | ").

Which sense an image class means (`choose_senses`) is decided with the other classes of its
dataset: WordNet's first sense is the most frequent in running text, not in photos ("plate" is first
a baseball base, "castle" a mansion), while the classes of one dataset are siblings.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path(os.environ.get("WNHOME", "/usr/share/wordnet"))

# Lexicographer files (lexnames(5WN)) of things a photo can show. Other senses (acts, feelings,
# furs as possessions...) are skipped when picking the sense of an image class.
LEXFILE_NAMES = {5: "animal", 6: "artifact", 8: "body", 13: "food", 15: "location", 17: "object",
                 18: "person", 19: "phenomenon", 20: "plant"}
DEPICTABLE_LEXFILES = set(LEXFILE_NAMES)
ANIMAL = 5


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


@dataclass(frozen=True)
class Synset:
    """One noun synset: its byte offset in data.noun (a wnid is 'n' + offset), lexicographer file,
    hypernym offsets and gloss."""

    offset: int
    lexfile: int
    hypernyms: tuple[int, ...]
    gloss: str

    @property
    def definition(self) -> str:
        """The gloss without its usage examples."""
        return self.gloss.split(";")[0].strip()


@functools.lru_cache(maxsize=200_000)
def synset(offset: int, directory: Path = DEFAULT_DIR) -> Synset:
    """The noun synset at byte `offset` of data.noun. A data line is `offset lexfile pos w_cnt
    (word lex_id)*w_cnt p_cnt (symbol offset pos source/target)*p_cnt ... | gloss`, w_cnt in hex."""
    with open(directory / "data.noun", "rb") as f:
        f.seek(offset)
        line = f.readline().decode("utf-8")
    if not line.startswith(f"{offset:08d}"):
        raise KeyError(f"no noun synset at offset {offset:08d} in {directory / 'data.noun'}")
    head, _, gloss = line.partition(" | ")
    fields = head.split()
    p = 4 + 2 * int(fields[3], 16)
    pointers = [fields[p + 1 + 4 * i: p + 5 + 4 * i] for i in range(int(fields[p]))]
    hypernyms = tuple(int(ptr[1]) for ptr in pointers if ptr[0] in ("@", "@i") and ptr[2] == "n")
    return Synset(offset, int(fields[1]), hypernyms, gloss.strip())


def gloss_at(offset: int, directory: Path = DEFAULT_DIR) -> str:
    """The gloss of the noun synset at byte `offset` of data.noun."""
    return synset(offset, directory).gloss


@functools.lru_cache(maxsize=200_000)
def _ancestor_depths(offset: int, directory: Path) -> dict[int, int]:
    """Every hypernym of a synset, itself included, with its depth below the root (entity = 0)."""
    node = synset(offset, directory)
    if not node.hypernyms:
        return {offset: 0}
    merged: dict[int, int] = {}
    for h in node.hypernyms:
        for o, d in _ancestor_depths(h, directory).items():
            merged[o] = min(d, merged.get(o, d))
    merged[offset] = 1 + max(merged[h] for h in node.hypernyms)
    return merged


def similarity(a: int, b: int, directory: Path = DEFAULT_DIR) -> float:
    """Wu-Palmer similarity of two synsets: 2 depth(deepest shared hypernym) / (depth(a) + depth(b)),
    1 for the same synset, near 0 for synsets sharing only the root."""
    da, db = _ancestor_depths(a, directory), _ancestor_depths(b, directory)
    shared = max((da[o] for o in da.keys() & db.keys()), default=0)
    return 2 * shared / max(1, da[a] + db[b])


@dataclass(frozen=True)
class SenseChoice:
    """The sense chosen for one class name and why: `lemma` is what was looked up (the name, or its
    head noun), `sense` the chosen synset's 1-based WordNet rank among the lemma's `senses`."""

    lemma: str
    synset: Synset
    sense: int
    senses: int
    reason: str

    def describe(self) -> str:
        lexname = LEXFILE_NAMES.get(self.synset.lexfile, str(self.synset.lexfile))
        return f"WordNet {self.lemma!r} sense {self.sense} of {self.senses} ({lexname}): {self.reason}"


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


# WordNet's detachment rules for nouns (its morphy): plural suffix -> base-form suffix.
NOUN_SUFFIXES = (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
                 ("ies", "y"), ("s", ""))


@functools.lru_cache(maxsize=4)
def _noun_exceptions(directory: Path) -> dict[str, str]:
    """WordNet's irregular plurals (noun.exc: "mice mouse")."""
    path = directory / "noun.exc"
    if not path.exists():
        return {}
    return {w[0]: w[1] for w in (line.split() for line in path.read_text().splitlines()) if len(w) >= 2}


def _in_index(word: str, directory: Path) -> tuple[str, list[int]] | None:
    """(lemma, offsets) of a word or of its base form ("socks" -> "sock"), or None."""
    index = _noun_index(directory)
    key = _key(word)
    bases = [key, _noun_exceptions(directory).get(key, "")]
    bases += [key[:-len(suffix)] + base for suffix, base in NOUN_SUFFIXES if key.endswith(suffix)]
    for lemma in bases:
        if lemma in index:
            return (word if lemma == key else lemma.replace("_", " ")), index[lemma]
    return None


def _lookup(name: str, directory: Path) -> tuple[str, list[int]]:
    """(lemma, offsets) of a class name, or of its base form, falling back to its head noun (the
    last word) when the whole name is not in WordNet ("aquarium fish" -> "fish")."""
    found = _in_index(name, directory)
    if found:
        return found
    words = name.replace("-", " ").split()
    head = words[-1] if words else name
    return _in_index(head, directory) or (head, [])


def _depictable(offsets: list[int], directory: Path) -> list[int]:
    """The senses an image can show (all senses if none can), in WordNet's order."""
    keep = [o for o in offsets if synset(o, directory).lexfile in DEPICTABLE_LEXFILES]
    return keep or list(offsets)


def _default(offsets: list[int], directory: Path) -> int:
    """The sense a name means without context: an animal sense if any (a "flatfish" photo shows the
    fish, not its flesh), else the most frequent depictable sense, else the most frequent sense."""
    return min(_depictable(offsets, directory), key=lambda o: (synset(o, directory).lexfile != ANIMAL, offsets.index(o)))


# How many of the nearest other classes a sense's context similarity averages over, and by how much
# it must beat the default's before it replaces it.
CONTEXT_CLASSES = 2
CONTEXT_MARGIN = 0.01


def _context(offset: int, related: list[int], directory: Path) -> float:
    """Mean similarity of a sense to its CONTEXT_CLASSES most similar senses of other classes."""
    nearest = sorted((similarity(offset, r, directory) for r in related), reverse=True)
    return sum(nearest[:CONTEXT_CLASSES]) / CONTEXT_CLASSES


def _domain_label(gloss: str) -> bool:
    """A gloss opening with a subject field in parentheses ("(baseball) base ...", "(chess) the piece
    ...") marks a specialised sense, not what a photo of the thing shows."""
    return gloss.startswith("(")


def choose_senses(names: list[str], directory: Path = DEFAULT_DIR) -> list[SenseChoice | None]:
    """The WordNet sense each class of one dataset most likely means (None where WordNet lacks the
    name and its head noun). From the depictable senses (`_depictable`):

    1. senses whose gloss opens with a subject field ("(baseball) ...") are dropped;
    2. a sense whose direct hypernym is another class's default sense is dropped: the classes of
       one dataset exclude each other, so beside "house" a "castle" is not a mansion (a house);
    3. the default (`_default`) of what is left, except that between animal senses, where
       WordNet's order carries little evidence, the one nearest the other classes (Wu-Palmer
       similarity, `similarity`, averaged over the `CONTEXT_CLASSES` nearest, `CONTEXT_MARGIN`
       ahead) wins: beside "shark", a "ray" is the fish, not a spine of a fin.
    Only whole names are context, not head nouns ("aquarium fish" does not make every fish a kind of it)."""
    looked_up = [_lookup(n, directory) for n in names]
    # A whole name, or its base form ("socks" -> "sock"), is context; a head noun is not.
    whole = [c for c, (lemma, offsets) in enumerate(looked_up)
             if offsets and (lemma == names[c] or " " not in names[c].strip())]
    defaults = {c: _default(looked_up[c][1], directory) for c in whole}
    choices: list[SenseChoice | None] = []
    for c, (lemma, offsets) in enumerate(looked_up):
        if not offsets:
            choices.append(None)
            continue
        reason = [] if lemma == names[c] else [f"base form of {names[c]!r}" if c in whole else f"head noun of {names[c]!r}"]
        candidates = _depictable(offsets, directory)
        plain = [o for o in candidates if not _domain_label(synset(o, directory).gloss)]
        if plain and len(plain) < len(candidates):
            reason.append("senses with a subject field dropped")
        candidates = plain or candidates
        others = {o for c2, o in defaults.items() if c2 != c}
        distinct = [o for o in candidates if not others & set(synset(o, directory).hypernyms)]
        if distinct and len(distinct) < len(candidates):
            reason.append("senses that are directly a kind of another class dropped")
        candidates = distinct or candidates
        best = _default(candidates, directory)
        animals = [o for o in candidates if synset(o, directory).lexfile == ANIMAL]
        related = [o for c2 in whole if c2 != c for o in _depictable(looked_up[c2][1], directory)]
        if len(animals) > 1 and related:
            context = {o: _context(o, related, directory) for o in {*animals, best}}
            nearest = max(animals, key=context.get)
            if context[nearest] >= context[best] + CONTEXT_MARGIN:
                reason.append(f"the animal sense nearest the other classes (over sense {offsets.index(best) + 1})")
                best = nearest
        if not reason or reason[-1].startswith("senses"):
            reason.append("an animal sense, else the most frequent depictable one" if len(candidates) > 1
                          else "the only sense left" if len(offsets) > 1 else "the only sense")
        choices.append(SenseChoice(lemma, synset(best, directory), offsets.index(best) + 1, len(offsets),
                                   "; ".join(reason)))
    return choices
