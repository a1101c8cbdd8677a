"""Calibrate the rendered-emoji dataset to the paper's regime, on seen tasks only.

For each candidate rendering (number of classes, images per class, resolution, augmentation), it
renders the images, extracts the profile's backbone features, fits a linear probe on all classes,
and builds a zoo with the paper's task sizes (k ~ U{8, 32}, r by profiles.for_dataset: 16 for 100
or more classes). The regime holds when the linear probe is about 55-85 % and the Universal Model
is at least 5 pt below the trained task heads; both are read on the zoo's *seen* tasks, so no
unseen task takes part in the choice. Writes figures/<profile>/emoji_regime.{csv,md,json}.

    .venv/bin/python scripts/emoji_regime.py [--profile cpu] [--set zoo_tasks=400]
"""

from __future__ import annotations

import dataclasses
import time

import pandas as pd
from study import study_session

from t2wlib.data import datasets
from t2wlib.data.emoji import Augmentation
from t2wlib.data.task_condition import prompts
from t2wlib.encoders import text
from t2wlib.experiments import regime
from t2wlib.pipeline.config import zoo_config, zoo_path
from t2wlib.pipeline.profiles import for_dataset
from t2wlib.zoo import model_zoo

HARD = Augmentation(scale=(0.3, 0.8), rotation=40.0, shift=0.2, noise=30.0, blur=1.8, jitter=0.35)
CANDIDATES = {
    "100 classes, 48 px": dict(classes=100, train_per_class=40, test_per_class=20),
    "300 classes, 48 px": dict(classes=300, train_per_class=40, test_per_class=20),
    "300 classes, 32 px, hard augmentation": dict(classes=300, train_per_class=40, test_per_class=20, image_size=32,
                                                  augmentation=HARD),
}
# The zoo the regime is read on: fewer tasks than the pipeline's, the paper's k range.
REGIME_OVERRIDES = {"zoo_tasks": 400, "zoo_k": (8, 32)}


def main() -> None:
    session, _ = study_session(__doc__.split("\n")[0], "scripts/emoji_regime.py")
    profile = session.profile
    rows = []
    for i, (setting, config) in enumerate(CANDIDATES.items()):
        name = f"emoji-regime-{i}"
        datasets.register_emoji_dataset(name, **config)
        start = time.perf_counter()
        splits = {s: datasets.load_split(name, s, session.data_root) for s in datasets.SPLITS}
        render_s = time.perf_counter() - start
        start = time.perf_counter()
        train, test = (session.features(name, s) for s in datasets.SPLITS)
        features_s = time.perf_counter() - start
        probe = regime.linear_probe(train, test)
        emb = text.embed_texts(session.encoder, prompts(splits["train"].class_names), session.cache)
        prof = for_dataset(dataclasses.replace(profile, **REGIME_OVERRIDES), len(train.class_names))
        identity = datasets.dataset_identity(name, session.data_root)
        directory = zoo_path(session.artifacts, prof, identity)
        source = {"dataset": name, "backbone": session.backbone.name, "text_encoder": session.encoder.name,
                  "profile": profile.name, "class_texts": {"prompt": prompts(train.class_names)}}
        start = time.perf_counter()
        model_zoo.build_zoo(directory, zoo_config(prof), train, test, {"prompt": emb}, source)
        zoo_s = time.perf_counter() - start
        seen = regime.zoo_summary(model_zoo.load_zoo(directory)).set_index("split").loc["seen"]
        rows.append({"setting": setting, "classes": probe["classes"], "images": probe["n_train"] + probe["n_test"],
                     "r": prof.hidden, "k": f"{prof.zoo_k[0]}-{prof.zoo_k[1]}", "seen_tasks": int(seen.tasks),
                     "linear_probe": probe["test_accuracy"], "trained_heads_seen": seen.trained_mean,
                     "universal_seen": seen.universal_mean, "gap_pt": 100 * seen.trained_minus_universal,
                     "in_regime": bool(regime.in_paper_regime(probe["test_accuracy"], seen.trained_minus_universal)),
                     "render_s": round(render_s, 1), "features_s": round(features_s, 1), "zoo_s": round(zoo_s, 1)})
        print(pd.DataFrame(rows).to_string(), flush=True)
    table = pd.DataFrame(rows)
    out = session.writer([profile.data_seed])
    out.table(table, "emoji_regime")
    out.json(rows, "emoji_regime")


if __name__ == "__main__":
    main()
