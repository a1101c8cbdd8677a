"""The convergence study's levers and extras, beside the curves that 02_train runs (`make run`):
T2W's validation accuracy after `LEVER_STEPS` steps with one training lever changed at a time, the
hypernetwork trained through the task loss, the ε twin's token space against the profile's,
ε on the profile's tokens trained 4x longer than the curves, and Figure 3's ε generator beside the
same trained twice as long (`--part eps-plateau`); the curves too, for a dataset other than the
profile's first or a profile run without 02 (t2wlib/experiments/convergence.py says what each part
is). Validation seen tasks only: nothing here looks at the unseen tasks. Writes
figures/<profile>/convergence{,_plateau,_levers,_task_loss,_eps_tokens,_eps_long,_eps_plateau}.{csv,md} and convergence.png with
provenance (convergence_<dataset>* for a dataset other than the profile's first), after each model
(a run cut short keeps what it finished); trained generators are reused and resumed.

    .venv/bin/python scripts/convergence_study.py [--profile cpu] [--datasets emoji] [--set ...] [--part ...]
"""

from __future__ import annotations

import sys

import pandas as pd
from study import study_session

from t2wlib.experiments import convergence as study
from t2wlib.experiments import figure3
from t2wlib.experiments.convergence import PREDICTION_NAMES
from t2wlib.pipeline import convergence_report
from t2wlib.pipeline.config import compact_components, seen_split, train_steps

# The parts run by default; "curves" (02_train's) and "eps-plateau" (Figure 3's second generator
# trained twice as long, for a dataset other than the first) may be asked for too.
PARTS = ("levers", "task-loss", "eps-tokens", "eps-long")


def main() -> None:
    parts = PARTS
    if "--part" in sys.argv:  # the parts to run (default: PARTS), before study_session parses the rest
        i = sys.argv.index("--part")
        parts = tuple(sys.argv[i + 1].split(","))
        del sys.argv[i:i + 2]
    session, datasets = study_session(__doc__.split("\n")[0], "scripts/convergence_study.py")
    run = session.dataset(datasets[0])
    zoo, test, profile = run.zoo, run.test, run.profile
    # The profile's first dataset writes convergence*; another one convergence_<dataset>*.
    stem = "convergence" if datasets[0] == session.profile.datasets[0] else f"convergence_{datasets[0]}"
    out = session.writer(profile.seeds[:1])
    base = study.study_profile(profile, study.BASE, study.LEVER_STEPS)
    train_ids = seen_split(zoo, base)[0]

    def levers_part():
        references = convergence_report.write_references(out, base, zoo, test, f"{stem}_levers_references")
        print(references, flush=True)
        levers = []
        for name, overrides in study.LEVERS.items():
            prof = study.study_profile(profile, {**study.LEVER_BASE, **overrides}, study.LEVER_STEPS)
            row = study.generator_rows(session.artifacts, prof, zoo, test, name, (study.LEVER_STEPS,),
                                       session.device, run.train)[-1]
            components = compact_components(prof, len(train_ids))
            levers.append({**row, "settings": f"{prof.tokenizer_mode} tokens, block {prof.block_size}, {prof.dit}, "
                                              f"{prof.prediction}, text path {prof.text_path}, min-SNR {prof.min_snr},"
                                              f" draws {prof.noise_draws}, components {components}, "
                                              f"task loss {prof.lambda_task:g}, condition {prof.condition}"})
            out.table(pd.DataFrame(levers), f"{stem}_levers")

    def task_loss_part():
        # The hypernetwork in the levers' base token space, MSE against through the task loss as well,
        # a budget short of the curves' for time: each task-loss step also decodes 32 heads (P weights
        # each, not the K coordinates the MSE compares) and runs them on 64 samples of their tasks.
        budgets = profile.convergence_steps[:-1]
        rows = study.hypernetwork_rows(session.artifacts, base, zoo, test, budgets)
        rows += study.hypernetwork_rows(session.artifacts, base, zoo, test, budgets, run.train)
        out.table(pd.DataFrame(rows), f"{stem}_task_loss")

    def eps_long_part():
        # ε at figure3_dit on the profile's own tokens (the first row of eps-tokens), which still
        # rises where the curves stop: trained 4x the curves' largest budget, scored at 1x, 2x and 4x.
        budgets = tuple(max(profile.convergence_steps) * f for f in (1, 2, 4))
        dit = profile.figure3_dit or profile.dit
        overrides = study.eps_twin(profile, dit, own_tokens=True)
        rows = study.generator_rows(session.artifacts, study.study_profile(profile, overrides, max(budgets)), zoo, test,
                                    f"T2W ε, {dit}, {max(budgets)} steps", budgets, session.device)
        out.table(pd.DataFrame(rows), f"{stem}_eps_long")

    def eps_tokens_part():
        # Why the ε twin has its own tokens: ε at figure3_dit on the profile's compact tokens, on the
        # same components whitened, and on every component whitened (study.EPS_TOKENS), alike otherwise.
        twin = study.eps_twin(profile, profile.figure3_dit or profile.dit)
        if "tokenizer_mode" not in twin:  # block tokens: the twin keeps the profile's, nothing to compare
            print(f"eps-tokens: {profile.tokenizer_mode} tokens have no compact space to compare", flush=True)
            return
        spaces = {"the profile's tokens": study.eps_twin(profile, twin["dit"], own_tokens=True),
                  "the profile's components, whitened": {**twin, "tasks_per_component": profile.tasks_per_component},
                  "every component, whitened (the ε twin)": twin}
        rows = []
        for name, overrides in spaces.items():
            prof = study.study_profile(profile, overrides, max(profile.convergence_steps))
            components = compact_components(prof, len(seen_split(zoo, prof)[0]))
            rows += [{**r, "components": components} for r in study.generator_rows(
                session.artifacts, prof, zoo, test, f"T2W ε, {twin['dit']}, {name}", profile.convergence_steps,
                session.device)]
            out.table(pd.DataFrame(rows), f"{stem}_eps_tokens")

    def eps_plateau_part():
        # Has Figure 3's second generator plateaued at its budget on this dataset (on the first
        # dataset the curves show it)? Its score at the end, beside the same generator trained twice
        # as long and scored at 1/4, 1/2, 1 and 2 times that budget.
        fig3 = figure3.other_generator_profile(profile)
        steps = train_steps(fig3, len(seen_split(zoo, fig3)[0]))
        longer = study.study_profile(profile, figure3.other_generator_overrides(profile), 2 * steps)
        name = f"Figure 3's {PREDICTION_NAMES[fig3.prediction]}, {fig3.dit}"
        rows = study.generator_rows(session.artifacts, fig3, zoo, test, f"{name}, {steps} steps", (steps,),
                                    session.device)
        out.table(pd.DataFrame(rows), f"{stem}_eps_plateau")
        budgets = tuple(sorted({b for b in (steps // 4, steps // 2, steps, 2 * steps) if b > 0}))
        rows += study.generator_rows(session.artifacts, longer, zoo, test, f"{name}, {2 * steps} steps", budgets,
                                     session.device)
        out.table(pd.DataFrame(rows), f"{stem}_eps_plateau")

    def curves_part():
        convergence_report.run_curves(out, session.artifacts, profile, zoo, test, session.device, stem)

    for part in parts:  # in the order given
        {"levers": levers_part, "task-loss": task_loss_part, "curves": curves_part, "eps-long": eps_long_part,
         "eps-tokens": eps_tokens_part, "eps-plateau": eps_plateau_part}[part]()


if __name__ == "__main__":
    main()
