"""Would more zoo, longer training or a larger DiT close the gap to the trained heads? (Table 1's
missed targets, issue evidence.) For each dataset, one seed, template prompts:

    tasks  train on the first 200 / 400 / all seen tasks (the rest held out via
           gen_validation_tasks), the profile's steps each (gen_steps, or epochs scaled to the task count)
    steps  all seen tasks, 2,000 steps instead of 1,000
    model  all seen tasks, 1,000 steps, the `cpu-base` DiT (3.4x the FLOPs of `cpu-small`)

T2W and the hypernetwork (same tasks, tokenizer and budget) are scored on all unseen tasks;
nothing is chosen from these numbers. Writes figures/<profile>/scaling.{csv,md} with provenance.
Runs already trained (e.g. the 800-task generator of 02_train) are loaded.

    .venv/bin/python scripts/scaling_study.py [--profile cpu] [--datasets digits fashion-mnist] [--artifacts DIR]
"""

from __future__ import annotations

import dataclasses
import time

import pandas as pd
from study import study_session

from t2wlib.experiments.scoring import head_scores
from t2wlib.generator.from_zoo import train_generator
from t2wlib.methods.baselines import hypernetwork_heads, train_hypernetwork
from t2wlib.pipeline.config import generator_config, generator_path, seen_split, train_config


def points(profile, seen: int) -> dict[str, dict]:
    """Profile overrides per study point: training tasks, steps and DiT size."""
    # The profile's step count: its gen_steps (kept by every task count), or its epochs' steps on all
    # seen tasks (epochs then scaled to each task count).
    steps = profile.gen_steps or profile.gen_epochs * (seen // profile.gen_batch_size)
    out = {}
    for n in (200, 400, seen):
        out[f"tasks {n}"] = {"gen_validation_tasks": seen - n}
        if not profile.gen_steps:
            out[f"tasks {n}"]["gen_epochs"] = round(steps / (n // profile.gen_batch_size))
    out[f"steps {2 * steps}"] = {"gen_steps": 2 * steps} if profile.gen_steps else {"gen_epochs": 2 * profile.gen_epochs}
    out["model cpu-base"] = {"dit": "cpu-base"}
    return out


def main() -> None:
    session, datasets = study_session(__doc__.split("\n")[0], "scripts/scaling_study.py")
    profile, artifacts, device, seed = session.profile, session.artifacts, session.device, session.seed
    out = session.writer((seed,))
    rows = []
    for dataset in datasets:
        z, test = session.zoo(dataset), session.features(dataset, "test")
        unseen, v_c = z.tasks.ids("unseen"), z.task_text["v_c/prompt"]
        trained = float(z.test_accuracy[unseen].mean())
        for point, overrides in points(profile, len(z.tasks.ids("seen"))).items():
            prof = dataclasses.replace(profile, **overrides)
            start = time.perf_counter()
            path = generator_path(artifacts, prof, z, "prompt", seed)
            gen, curves = train_generator(path, z, generator_config(prof, z, "prompt", seed), device, progress=False)
            train_ids = seen_split(z, prof)[0]
            net = train_hypernetwork(path.with_name(path.name + "-hypernetwork"), z.theta[train_ids], v_c[train_ids],
                                     gen.tokenizer, train_config(prof, seed, len(train_ids)))
            heads = {"T2W-CLIP": gen.sample(v_c[unseen], steps=prof.ddim_steps, seed=seed),
                     "Hypernetwork-CLIP": hypernetwork_heads(net, v_c[unseen], gen.tokenizer)}
            for method, theta in heads.items():
                scores = head_scores(z, theta, test, unseen)
                rows.append({"dataset": dataset, "point": point, "method": method, "train_tasks": len(train_ids),
                             "steps": len(curves), "dit": prof.dit, "accuracy": scores.accuracy.mean(),
                             "of_trained": scores.accuracy.mean() / trained, "mse": scores.mse.mean(),
                             "seconds_this_run": round(time.perf_counter() - start, 1)})
            print(pd.DataFrame(rows).tail(2).to_string(header=False), flush=True)
    table = pd.DataFrame(rows)
    out.table(table, "scaling")
    print(table.to_string())


if __name__ == "__main__":
    main()
