"""The convergence study: T2W's validation accuracy and loss against training steps, at two widths,
x0 and ε, beside the hypernetwork and the reference heads, and the training levers one at a time
(t2wlib/experiments/convergence.py says what each part is). Validation seen tasks only: nothing
here looks at the unseen tasks. Writes figures/<profile>/convergence{,_levers,_plateau}.{csv,md,json}
and convergence.png with provenance (convergence_<dataset>* for a dataset other than the profile's
first), after each model (a run cut short keeps what it finished);
trained generators are reused and resumed.

    .venv/bin/python scripts/convergence_study.py [--profile cpu] [--datasets emoji] [--set ...] [--part ...]
"""

from __future__ import annotations

import sys

import pandas as pd
from study import study_session

from t2wlib.experiments import convergence as study
from t2wlib.pipeline import plotting
from t2wlib.pipeline.config import compact_components, seen_split

# The parts run by default; "logged" (the curves' scores logged so far, without training further)
# may be asked for too, for a study whose curves were stopped short.
PARTS = ("curves", "hypernetwork", "task-loss", "levers")


def main() -> None:
    parts = PARTS
    if "--part" in sys.argv:  # the parts to run (default: all), before study_session parses the rest
        i = sys.argv.index("--part")
        parts = tuple(sys.argv[i + 1].split(","))
        del sys.argv[i:i + 2]
    session, datasets = study_session(__doc__.split("\n")[0], "scripts/convergence_study.py")
    run = session.dataset(datasets[0])
    zoo, test, profile = run.zoo, run.test, run.profile
    base = study.study_profile(profile, study.BASE, max(study.BUDGETS))
    train_ids, val_ids = seen_split(zoo, base)
    references = study.reference_scores(zoo, test, train_ids, val_ids, base.gen_components, base.block_size)
    print(references, flush=True)
    # The profile's first dataset writes convergence*; another one convergence_<dataset>*.
    stem = "convergence" if datasets[0] == session.profile.datasets[0] else f"convergence_{datasets[0]}"
    out = session.writer(base.seeds)
    out.json({"dataset": datasets[0], "validation_tasks": len(val_ids), "training_tasks": len(train_ids),
              "references": references}, f"{stem}_references")
    curves, levers = [], []

    def write():
        if curves:
            table = pd.DataFrame(curves)
            out.table(table, stem)
            out.table(study.plateau_table(table), f"{stem}_plateau")
            out.figure(plotting.convergence(table, references), stem)
        if levers:
            out.table(pd.DataFrame(levers), f"{stem}_levers")

    def levers_part():
        for name, overrides in study.LEVERS.items():
            prof = study.study_profile(profile, {**study.LEVER_BASE, **overrides}, study.LEVER_STEPS)
            row = study.generator_rows(session.artifacts, prof, zoo, test, name, (study.LEVER_STEPS,),
                                       session.device, run.train)[-1]
            components = compact_components(prof, len(train_ids))
            levers.append({**row, "settings": f"{prof.tokenizer_mode} tokens, block {prof.block_size}, {prof.dit}, "
                                              f"{prof.prediction}, text path {prof.text_path}, min-SNR {prof.min_snr},"
                                              f" draws {prof.noise_draws}, components {components}, "
                                              f"task loss {prof.lambda_task:g}"})
            write()

    def hypernetwork_part():
        curves.extend(study.hypernetwork_rows(session.artifacts, base, zoo, test, study.BUDGETS))
        write()

    def task_loss_part():  # the hypernetwork trained through the task loss as well
        curves.extend(study.hypernetwork_rows(session.artifacts, base, zoo, test, study.TASK_LOSS_BUDGETS, run.train))
        write()

    def curves_part():
        for name, overrides in study.CURVES.items():
            prof = study.study_profile(profile, overrides, max(study.BUDGETS))
            curves.extend(study.generator_rows(session.artifacts, prof, zoo, test, name, study.BUDGETS, session.device))
            write()

    def logged_part():  # the curves' scores made so far, without training further
        for name, overrides in study.CURVES.items():
            curves.extend(study.logged_rows(session.artifacts, study.study_profile(profile, overrides, max(study.BUDGETS)),
                                            zoo, name))
        write()

    for part in parts:  # in the order given
        {"levers": levers_part, "hypernetwork": hypernetwork_part, "task-loss": task_loss_part, "curves": curves_part,
         "logged": logged_part}[part]()

if __name__ == "__main__":
    main()
