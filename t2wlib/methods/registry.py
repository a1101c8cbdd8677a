"""Every method that gives a head for a task, in one registry.

An entry says what the tables need to know of a method: its name; its kind (a reference read off
the zoo itself, a regression on the task's class identities that reads no text, a memorisation of
seen heads, a regression v_c -> θ, or a generative model); whether
its heads depend on the seed (a trained model or a sampler does; a closed form does not, so its heads
are scored once); and, for a method that needs no training, how its heads are computed from the seen
zoo. A method that reads the task text is named per text variant in Table 1 ("Ridge-CLIP",
"Ridge-NL": the paper's T2W-CLIP and T2W-NL). Table 1 and the novelty table
(`experiments/table1.py`, `experiments/novelty.py`) and notebook 10
(`experiments/diffusion_vs_regression.py`) read this registry: a new baseline is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..generator.ridge import fit_ridge
from .baselines import class_identity_heads, retrieve_heads

if TYPE_CHECKING:  # annotations only
    from ..zoo.model_zoo import Zoo

REFERENCE, CLASS_IDENTITY, MEMORISATION, REGRESSION, GENERATIVE = (
    "reference", "class identity", "memorisation", "regression", "generative")
TEXT_FREE = (REFERENCE, CLASS_IDENTITY)  # kinds whose heads read no task text
# Table 1's label of each text variant (the zoo's `v_c/<variant>` text vectors).
VARIANT_LABEL = {"prompt": "CLIP", "description": "NL"}

# (zoo, task ids, seen task ids, text variant) -> heads (len(ids), P)
ClosedForm = Callable[["Zoo", list[int], list[int], str], torch.Tensor]


@dataclass(frozen=True)
class Method:
    name: str
    kind: str
    seeded: bool  # its heads depend on the seed: trained per seed, scored per seed
    closed_form: ClosedForm | None = None  # None: a trained model gives the heads (experiments train it)

    @property
    def reads_text(self) -> bool:
        return self.kind not in TEXT_FREE

    def label(self, variant: str | None = None) -> str:
        """The method's name in the tables: with its text variant when it reads text."""
        return f"{self.name}-{VARIANT_LABEL[variant]}" if self.reads_text and variant else self.name


def _text(zoo: Zoo, ids: list[int], variant: str) -> torch.Tensor:
    return zoo.task_text[f"v_c/{variant}"][ids]


METHODS = (
    Method("Trained (ceiling)", REFERENCE, False, lambda zoo, ids, seen, variant: zoo.theta[ids]),
    Method("Universal Model", REFERENCE, False, lambda zoo, ids, seen, variant: zoo.universal.expand(len(ids), -1)),
    # The head every zoo head is fine-tuned from: what a generator that returns the zoo's centre for
    # every text would score.
    Method("Stage-1 head (θ0*)", REFERENCE, False, lambda zoo, ids, seen, variant: zoo.stage1.expand(len(ids), -1)),
    # No text: which seen classes a task holds, each with its own learned vector (methods/baselines.py).
    Method("Class identity (no text)", CLASS_IDENTITY, False,
           lambda zoo, ids, seen, variant: class_identity_heads(zoo.tasks.padded(ids), zoo.tasks.padded(seen),
                                                                zoo.theta[seen], len(zoo.class_names))),
    Method("Retrieval", MEMORISATION, False,
           lambda zoo, ids, seen, variant: retrieve_heads(_text(zoo, ids, variant), _text(zoo, seen, variant),
                                                          zoo.theta[seen])[0]),
    Method("Ridge", REGRESSION, False,
           lambda zoo, ids, seen, variant: fit_ridge(_text(zoo, seen, variant), zoo.theta[seen])(_text(zoo, ids, variant))),
    Method("Hypernetwork", REGRESSION, True),
    Method("T2W", GENERATIVE, True),
)
TRAINED, UNIVERSAL, STAGE1, CLASS_IDS, RETRIEVAL, RIDGE, HYPERNETWORK, T2W = (m.name for m in METHODS)


def labels(variants) -> list[str]:
    """Every method's label in registry order, the text-reading ones once per variant: Table 1's rows."""
    return [label for m in METHODS for label in ([m.label(v) for v in variants] if m.reads_text else [m.label()])]


def method_of(label: str) -> Method:
    """The method a table label names ("Ridge-CLIP" -> Ridge)."""
    name = label.rsplit("-", 1)[0] if label.rsplit("-", 1)[-1] in VARIANT_LABEL.values() else label
    for method in METHODS:
        if method.name == name:
            return method
    raise KeyError(f"no method {label!r}; the registry has {', '.join(m.name for m in METHODS)}")
