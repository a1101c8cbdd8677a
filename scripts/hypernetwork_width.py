"""Measure the hypernetwork baseline's hidden width on validation tasks, for every dataset given.

Table 1's hypernetwork is `baselines.HYPERNETWORK_HIDDEN` wide. This script trains it at several
widths with Table 2's budget and held-out seen tasks (`ablation_validation_tasks`, the "w/o both"
variant's profile: L_diff's tokens, the same steps and seed), and writes each width's accuracy on
those validation tasks and its training time to figures/<profile>/hypernetwork_width.{csv,md} with
provenance. Unseen tasks take no part.

    .venv/bin/python scripts/hypernetwork_width.py [--profile cpu] [--datasets emoji]
"""

from __future__ import annotations

import tempfile
import time

import pandas as pd
from study import study_session

from t2wlib.experiments import table2
from t2wlib.experiments.scoring import head_scores
from t2wlib.generator.from_zoo import train_generator
from t2wlib.methods import baselines
from t2wlib.pipeline.config import generator_config, generator_path, seen_split, train_config

WIDTHS = (512, 256, 128)  # hidden units per layer tried


def main() -> None:
    session, datasets = study_session(__doc__.split("\n")[0], "scripts/hypernetwork_width.py")
    prof = table2.ablation_profile(session.profile, "w/o both")
    seed = prof.seeds[0]
    rows = []
    for dataset in datasets:
        z, test = session.zoo(dataset), session.features(dataset, "test")
        train, validation = seen_split(z, prof)
        # The tokenizer of Table 2's "w/o both" generator, trained on the same rows (loaded if 04 ran).
        tokenizer = train_generator(generator_path(session.artifacts, prof, z, "prompt", seed), z,
                                    generator_config(prof, z, "prompt", seed), session.device, progress=False)[0].tokenizer
        v = z.task_text["v_c/prompt"]
        for width in WIDTHS:
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                net = baselines.train_hypernetwork(tmp, z.theta[train], v[train], tokenizer,
                                                   train_config(prof, seed, len(train)), hidden=width)
            seconds = time.perf_counter() - start
            scores = head_scores(z, baselines.hypernetwork_heads(net, v[validation], tokenizer), test, validation)
            rows.append({"dataset": dataset, "hidden": width, "in_table1": width == baselines.HYPERNETWORK_HIDDEN,
                         "steps": prof.gen_steps, "validation_tasks": len(validation),
                         "validation_accuracy": scores.accuracy.mean(), "train_s": round(seconds, 1)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    session.writer((seed,)).table(table, "hypernetwork_width")
    print(table.to_string())


if __name__ == "__main__":
    main()
