"""The convergence study written out (experiments/convergence.py computes it): the curves that
02_train runs on the profile's first dataset, as figures/<profile>/convergence{,_plateau}.{csv,md},
convergence.png and convergence_references.json, rewritten after each model so that a run cut
short keeps what it finished; and the reference heads' scores that the levers are read against."""

from __future__ import annotations

import pandas as pd

from ..experiments import convergence
from .config import compact_components, seen_split
from .plotting import FigureWriter, convergence as convergence_figure


def write_references(out: FigureWriter, profile, zoo, test, name: str) -> dict[str, float]:
    """Validation accuracy of the reference heads (trained, ridge, Universal, θ0*, the trained heads
    projected on the profile's compact tokens) for a study `profile`, written as `name`.json."""
    train_ids, val_ids = seen_split(zoo, profile)
    references = convergence.reference_scores(zoo, test, train_ids, val_ids, compact_components(profile, len(train_ids)),
                                              profile.block_size)
    out.json({"dataset": zoo.source.get("dataset"), "validation_tasks": len(val_ids), "training_tasks": len(train_ids),
              "references": references}, name)
    return references


def run_curves(out: FigureWriter, artifacts, profile, zoo, test, device: str = "cpu",
               stem: str = "convergence") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The profile's convergence curves on `zoo` (`convergence.curve_rows`), written as `stem`*:
    the scores, the plateau table and the figure. Returns the scores and the plateau table."""
    references = write_references(out, convergence.study_profile(profile, {}, max(profile.convergence_steps)), zoo,
                                  test, f"{stem}_references")
    tables = {}

    def written(rows):
        tables["curves"] = pd.DataFrame(rows)
        tables["plateau"] = convergence.plateau_table(tables["curves"])
        out.table(tables["curves"], stem)
        out.table(tables["plateau"], f"{stem}_plateau")
        out.figure(convergence_figure(tables["curves"], references), stem)

    convergence.curve_rows(artifacts, profile, zoo, test, device, written)
    return tables["curves"], tables["plateau"]
