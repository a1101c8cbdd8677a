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

import argparse
from pathlib import Path

import pandas as pd

from t2wlib import ablation, backbones, features, plotting, zoo
from t2wlib.cache import TensorCache
from t2wlib.profiles import get_profile
from t2wlib.runtime import resolve_device

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--datasets", nargs="+", help="default: the profile's datasets")
    parser.add_argument("--artifacts", default=str(REPO / "artifacts"))
    args = parser.parse_args()
    profile = get_profile(args.profile)
    device = resolve_device(profile.device)
    cache = TensorCache(Path(args.artifacts) / "cache")
    backbone = backbones.load_backbone(profile.backbone, device=device)
    out = plotting.FigureWriter(REPO / "figures" / profile.name, profile.name,
                                ablation.ablation_profile(profile, ablation.FULL).seeds)
    tables = []
    for dataset in args.datasets or profile.datasets:
        z = zoo.load_zoo(zoo.zoo_path(args.artifacts, profile, dataset))
        test = features.profile_features(profile, dataset, "test", backbone, cache, Path(args.artifacts) / "data", device)
        scores, _ = ablation.run_ablation(args.artifacts, profile, z, test, ablation.LOSS_ROWS, device)
        table = ablation.table2(scores, profile)
        table.insert(0, "dataset", dataset)
        table["selected"] = table.variant == ablation.selected_losses(table)
        tables.append(table)
    selection = pd.concat(tables, ignore_index=True)
    out.table(selection, "loss_selection")
    print(selection[["dataset", "variant", "validation_accuracy_mean", "accuracy_mean", "selected"]].to_string())
    print(f"profile {profile.name!r} trains with: {ablation.profile_losses(profile)}")


if __name__ == "__main__":
    main()
