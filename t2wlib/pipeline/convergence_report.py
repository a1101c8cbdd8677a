"""The convergence study written out (experiments/convergence.py computes it): the curves that
02_train runs on the profile's first dataset, as figures/<profile>/convergence{,_plateau}.{csv,md},
convergence.png and convergence_references.json, rewritten after each model so that a run cut
short keeps what it finished; the reference heads' scores that the levers are read against; and the
projection limit of the compact token space against its number of components (ceiling.csv/.md) and the
trained heads' noise floor (ceiling_noise_floor.json), experiments/ceiling.py."""

from __future__ import annotations

import pandas as pd

from ..experiments import ceiling, convergence
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


def write_ceiling(out: FigureWriter, profile, zoo, test, train=None, name: str = "ceiling") -> pd.DataFrame:
    """The projection limit on a study `profile`'s validation tasks (`ceiling.projection_curve`): from an
    eighth of the profile's compact components to every direction its training heads span, written as `name`;
    with the training features `train`, also the trained heads' noise floor on the same tasks
    (`ceiling.noise_floor`), as `name`_noise_floor.json."""
    train_ids, val_ids = seen_split(zoo, profile)
    if train is not None:
        out.json(ceiling.noise_floor(zoo, train, test, val_ids), f"{name}_noise_floor")
    k, rank = compact_components(profile, len(train_ids)), min(len(train_ids) - 1, zoo.spec.num_params)
    curve = ceiling.projection_curve(zoo, test, train_ids, val_ids,
                                     sorted({max(1, k // 8), max(1, k // 4), max(1, k // 2), k, min(2 * k, rank), rank}))
    out.table(curve.assign(profile_components=k), name)
    return curve


def run_curves(out: FigureWriter, artifacts, profile, zoo, test, device: str = "cpu",
               stem: str = "convergence", train=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The profile's convergence curves on `zoo` (`convergence.curve_rows`), written as `stem`*:
    the scores, the plateau table and the figure; and the ceiling beside them (`write_ceiling`, with
    `train` the training features its noise floor re-trains on). Returns the scores and the plateau table."""
    study = convergence.study_profile(profile, {}, max(profile.convergence_steps))
    references = write_references(out, study, zoo, test, f"{stem}_references")
    write_ceiling(out, study, zoo, test, train, "ceiling" if stem == "convergence" else f"{stem}_ceiling")
    tables = {}

    def written(rows):
        tables["curves"] = pd.DataFrame(rows)
        tables["plateau"] = convergence.plateau_table(tables["curves"])
        out.table(tables["curves"], stem)
        out.table(tables["plateau"], f"{stem}_plateau")
        out.figure(convergence_figure(tables["curves"], references), stem)

    convergence.curve_rows(artifacts, profile, zoo, test, device, written)
    return tables["curves"], tables["plateau"]
