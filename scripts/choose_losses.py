"""Choose a profile's generator loss weights on validation tasks, for every dataset of the profile.

04_ablation's Table 2 trains the paper's four loss rows (full, w/o L_adv, w/o L_sym, w/o both) on
its one ablation dataset. This script runs the same four rows, with the same budget, seeds and
held-out seen tasks (`ablation_validation_tasks`), on each dataset given, and writes the validation
and unseen accuracies to figures/<profile>/loss_selection.{csv,md} with provenance. Only the
validation column may choose; the unseen column is reported for the record. Runs already trained
(by this script or by 04_ablation) are loaded from their artifact folders.

    .venv/bin/python scripts/choose_losses.py [--profile cpu] [--datasets fashion-mnist digits]
"""

from __future__ import annotations

import pandas as pd
from study import study_session

from t2wlib.experiments import table2


def main() -> None:
    session, datasets = study_session(__doc__.split("\n")[0], "scripts/choose_losses.py")
    profile = session.profile
    out = session.writer(table2.ablation_profile(profile, table2.FULL).seeds)
    tables = []
    for dataset in datasets:
        z, test = session.zoo(dataset), session.features(dataset, "test")
        scores, _ = table2.run_ablation(session.artifacts, profile, z, test, table2.LOSS_ROWS, session.device)
        table = table2.table2(scores, profile)
        table.insert(0, "dataset", dataset)
        table["selected"] = table.variant == table2.selected_losses(table)
        tables.append(table)
    selection = pd.concat(tables, ignore_index=True)
    out.table(selection, "loss_selection")
    print(selection[["dataset", "variant", "validation_accuracy_mean", "accuracy_mean", "selected"]].to_string())
    print(f"profile {profile.name!r} trains with: {table2.profile_losses(profile)}")


if __name__ == "__main__":
    main()
