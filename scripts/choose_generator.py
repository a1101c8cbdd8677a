"""Choose a profile's generator settings on validation tasks: prediction target, tokens, block size,
DiT size and trained classifier-free guidance, on one dataset (default: the profile's first).

Every variant is the profile's generator with one setting changed, trained with 04_ablation's
budget (`ablation_epochs`, or `ablation_steps` with `gen_steps`) and seed on the zoo's seen tasks less `ablation_validation_tasks`
held-out seen tasks, and scored on those (DDIM with the profile's steps). The guidance variant is
trained with text dropout (its null text learned) and scored at every scale of GUIDANCE_SCALES.
Only the validation column may choose; the unseen column is reported for the record. Writes
figures/<profile>/generator_selection.{csv,md,json} with provenance; trained runs are reused.

    .venv/bin/python scripts/choose_generator.py [--profile cpu] [--datasets emoji] [--set ...]

The committed table (figures/cpu/generator_selection.md) was made with
`--datasets emoji --set dit=tiny --set block_size=256` before those became the cpu profile's.
"""

from __future__ import annotations

import dataclasses
import time

import pandas as pd
from study import study_session

from t2wlib.experiments import table2
from t2wlib.experiments.scoring import head_scores
from t2wlib.generator.from_zoo import train_generator
from t2wlib.pipeline.config import generator_config, generator_path, seen_split

GUIDANCE_SCALES = (1.0, 1.5, 2.0, 3.0)
BIGGER_DIT = {"tiny": "cpu-small", "cpu-small": "cpu-base", "cpu-base": "paper"}


def variants(profile) -> dict[str, dict]:
    """Overrides per variant of a profile with a step budget (gen_steps); the first is the profile's own setting."""
    other_prediction = "eps" if profile.prediction == "x0" else "x0"
    other_tokens = "minmax" if profile.tokenizer_mode == "standard" else "standard"
    return {
        "profile": {},
        f"{other_prediction}-prediction": {"prediction": other_prediction},
        f"{other_tokens} tokens": {"tokenizer_mode": other_tokens},
        f"block {2 * profile.block_size}": {"block_size": 2 * profile.block_size},
        f"{BIGGER_DIT[profile.dit]} DiT": {"dit": BIGGER_DIT[profile.dit]},
        "trained guidance (text dropout 0.1)": {"text_dropout": 0.1},
        f"{4 * profile.gen_steps} steps": {"gen_steps": 4 * profile.gen_steps},
    }


def main() -> None:
    session, datasets = study_session(__doc__.split("\n")[0], "scripts/choose_generator.py")
    profile = session.profile
    base = table2.ablation_profile(profile, "w/o both")  # the ablation budget, validation tasks and seeds
    base = dataclasses.replace(base, lambda_sym=profile.lambda_sym, lambda_adv=profile.lambda_adv,
                               seeds=base.seeds[:1])
    rows = []
    for dataset in datasets[:1]:
        z, test = session.zoo(dataset), session.features(dataset, "test")
        splits = {"validation": seen_split(z, base)[1], "unseen": z.tasks.ids("unseen")}
        ids = [i for part in splits.values() for i in part]
        split_of = [s for s, part in splits.items() for _ in part]
        for variant, overrides in variants(base).items():
            prof = dataclasses.replace(base, **overrides)
            seed = prof.seeds[0]
            start = time.perf_counter()
            definition = generator_config(prof, z, "prompt", seed)
            gen, curves = train_generator(generator_path(session.artifacts, prof, z, "prompt", seed), z, definition,
                                          session.device, progress=False)
            train_s = time.perf_counter() - start
            for scale in GUIDANCE_SCALES if prof.text_dropout > 0 else (1.0,):
                theta = gen.sample(z.task_text["v_c/prompt"][ids], steps=profile.ddim_steps, guidance=scale, seed=seed)
                scores = head_scores(z, theta, test, ids).assign(split=split_of)
                acc = scores.groupby("split").accuracy.mean()
                rows.append({"dataset": dataset, "variant": variant, "guidance": scale,
                             "settings": table2.describe(prof) + f", {prof.prediction}-prediction, block "
                                                                   f"{prof.block_size}, text dropout {prof.text_dropout}",
                             "validation_accuracy": acc["validation"], "unseen_accuracy": acc["unseen"],
                             "validation_tasks": len(splits["validation"]), "steps": curves[-1]["step"] if curves else 0,
                             "final_loss": curves[-1].get("loss") if curves else None, "train_s": round(train_s, 1)})
            print(pd.DataFrame(rows).drop(columns="settings").to_string(), flush=True)
    table = pd.DataFrame(rows)
    table["selected"] = table.index == table.validation_accuracy.idxmax()
    out = session.writer(base.seeds)
    out.table(table, "generator_selection")
    out.json(table.to_dict("records"), "generator_selection")


if __name__ == "__main__":
    main()
