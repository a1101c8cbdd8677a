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


def describe(class_name: str, wnid: str | None = None) -> str:
    """T2W-NL text for one class: the project's own wording, else a WordNet gloss (the synset
    itself for a wnid like TinyImageNet's, the most frequent depictable sense otherwise), else the template."""
    gloss = OWN_DESCRIPTIONS.get(class_name)
    if gloss is None and wordnet.available():
        gloss = wordnet.gloss_at(int(wnid[1:])) if wnid else wordnet.image_class_gloss(class_name)
    if gloss is None:
        return TEMPLATE.format(class_name)
    gloss = gloss.split(";")[0].strip()  # the definition, without usage examples
    return f"A photo of {class_name}, {gloss}."


def descriptions(class_names: list[str], wnids: list[str] | None = None) -> list[str]:
    """T2W-NL texts for a list of classes (wnids, when given, pick the exact WordNet synset)."""
    if wnids is not None and len(wnids) != len(class_names):
        raise ValueError(f"{len(wnids)} wnids for {len(class_names)} class names")
    return [describe(c, None if wnids is None else wnids[i]) for i, c in enumerate(class_names)]
