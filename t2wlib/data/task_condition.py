"""Task text (paper App. B.2): class prompts, natural-language descriptions and Alg. 1's fusion.

T2W-CLIP describes class s_i by the template "A photo of {s_i}"; T2W-NL by a sentence about it.
`fuse_features` turns a task's k class embeddings into the task text vector v_c (Alg. 1).
"""

from __future__ import annotations

import torch

from . import wordnet

TEMPLATE = "A photo of {}"


def prompts(class_names: list[str], template: str = TEMPLATE) -> list[str]:
    """T2W-CLIP texts: the template filled with each class name (Alg. 1, step 1)."""
    if "{}" not in template:
        raise ValueError(f"template {template!r} needs a '{{}}' placeholder for the class name")
    return [template.format(name) for name in class_names]


# Two classes whose text embeddings are at least this similar (cosine) cannot be told apart by a head
# that scores images against them: e.g. names the text encoder reads as unknown tokens (emoji in
# MiniLM's vocabulary). The closest distinct names in the embedded datasets stay below 0.97.
INDISTINCT_COSINE = 0.99


class IndistinctClassesError(ValueError):
    """Two class names whose text embeddings are (nearly) the same."""


def check_distinct(class_names: list[str], class_emb: torch.Tensor) -> None:
    """IndistinctClassesError naming the most similar pair of classes when their embeddings (K, D) have
    cosine >= INDISTINCT_COSINE: every image would get the same score for both."""
    e = torch.nn.functional.normalize(class_emb.double(), dim=-1)
    sim = (e @ e.T).fill_diagonal_(-1)
    i, j = divmod(int(sim.argmax()), len(class_names))
    if float(sim[i, j]) >= INDISTINCT_COSINE:
        raise IndistinctClassesError(
            f"classes {class_names[i]!r} and {class_names[j]!r} have the same text embedding to the text encoder "
            f"(cosine {float(sim[i, j]):.3f} >= {INDISTINCT_COSINE}), so no head can tell them apart; name them in "
            "words it knows (e.g. 'sneaker' for an emoji)")


def fuse_features(e: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Alg. 1, step 3: e (..., k, D) class embeddings -> v_c (..., D).

    mu = mean_i e_i; w_i = softmax_i(cos(e_i, mu)); v_c = sum_i w_i e_i. `mask` (..., k) bool marks
    real classes when tasks of different k are padded into one tensor; padded rows get no weight.
    """
    if e.ndim < 2 or e.shape[-2] == 0:
        raise ValueError(f"fuse_features needs (..., k, D) with k >= 1, got shape {tuple(e.shape)}")
    if mask is None:
        mask = torch.ones(e.shape[:-1], dtype=torch.bool, device=e.device)
    m = mask.unsqueeze(-1).to(e.dtype)  # (..., k, 1)
    mu = (e * m).sum(-2) / m.sum(-2).clamp_min(1)  # (..., D)
    cos = torch.nn.functional.cosine_similarity(e, mu.unsqueeze(-2), dim=-1)  # (..., k)
    w = cos.masked_fill(~mask, float("-inf")).softmax(-1)  # (..., k)
    return (w.unsqueeze(-1) * e).sum(-2)  # (..., D)


# T2W-NL descriptions written for this project, for classes whose WordNet sense does not fit
# (digits, garment names whose first sense is something else).
OWN_DESCRIPTIONS = {
    "t-shirt": "a short-sleeved collarless shirt of knitted cotton pulled on over the head",
    "trouser": "a pair of long trousers covering each leg from waist to ankle",
    "pullover": "a long-sleeved knitted sweater pulled on over the head, worn for warmth",
    "dress": "a one-piece garment for a woman with a skirt hanging down from the bodice",
    "coat": "a long outer garment with sleeves and buttons worn over other clothes outdoors",
    "sandal": "an open shoe whose sole is held to the foot by straps, leaving the toes bare",
    "shirt": "a buttoned garment with a collar and sleeves for the upper body",
    "sneaker": "a low canvas or leather sports shoe with a flexible rubber sole and laces",
    "bag": "a handbag or tote with handles or a strap, for carrying belongings",
    "ankle boot": "a short boot with a heel whose shaft reaches just above the ankle",
    "digit zero": "the handwritten numeral 0, a single closed oval loop",
    "digit one": "the handwritten numeral 1, one vertical stroke, sometimes with a small flag at the top",
    "digit two": "the handwritten numeral 2, a curved hook on top ending in a flat horizontal base",
    "digit three": "the handwritten numeral 3, two open bumps stacked on the right side",
    "digit four": "the handwritten numeral 4, an angled stroke and a crossbar met by a vertical line",
    "digit five": "the handwritten numeral 5, a flat top bar, a short down stroke and a round belly",
    "digit six": "the handwritten numeral 6, a curve sweeping down into a closed loop at the bottom",
    "digit seven": "the handwritten numeral 7, a horizontal top bar and a long diagonal stroke",
    "digit eight": "the handwritten numeral 8, two closed loops stacked one above the other",
    "digit nine": "the handwritten numeral 9, a closed loop on top with a straight or curved tail",
}


def class_descriptions(class_names: list[str], wnids: list[str] | None = None,
                       given: list[str | None] | None = None) -> list[tuple[str, str]]:
    """T2W-NL text and where it came from, per class, first found of: `given` (the user's own
    descriptions, used as written), the project's own wording, the WordNet synset `wnids` names
    (TinyImageNet), the WordNet sense `wordnet.choose_senses` picks with the other classes as
    context, the template."""
    for what, values in (("wnids", wnids), ("descriptions", given)):
        if values is not None and len(values) != len(class_names):
            raise ValueError(f"{len(values)} {what} for {len(class_names)} class names")
    senses = wordnet.choose_senses(class_names) if wordnet.available() else [None] * len(class_names)
    out = []
    for i, name in enumerate(class_names):
        if given is not None and given[i]:
            out.append((given[i], "the dataset's descriptions file"))
        elif name in OWN_DESCRIPTIONS:
            out.append((_sentence(name, OWN_DESCRIPTIONS[name]), "the project's own wording"))
        elif wnids is not None and wordnet.available():
            out.append((_sentence(name, wordnet.gloss_at(int(wnids[i][1:]))), f"WordNet synset {wnids[i]}"))
        elif senses[i] is not None:
            out.append((_sentence(name, senses[i].synset.gloss), senses[i].describe()))
        else:
            out.append((TEMPLATE.format(name), "the template (no WordNet sense)"))
    return out


def _sentence(class_name: str, gloss: str) -> str:
    return f"A photo of {class_name}, {gloss.split(';')[0].strip()}."


def describe(class_name: str, wnid: str | None = None) -> str:
    """T2W-NL text for one class on its own (no other classes as context; `class_descriptions`)."""
    return class_descriptions([class_name], None if wnid is None else [wnid])[0][0]


def descriptions(class_names: list[str], wnids: list[str] | None = None, given: list[str | None] | None = None) -> list[str]:
    """T2W-NL texts for the classes of one dataset (`class_descriptions` without the sources)."""
    return [text for text, _ in class_descriptions(class_names, wnids, given)]
