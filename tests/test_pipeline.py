"""The notebook sequence through papermill on the smoke profile, from an empty artifact folder.

The executed copies stay in runs/test-smoke/ so that `make test` can run `pytest --nbval-lax` on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from t2wlib.pipeline.runner import REPO, pipeline_notebooks

from conftest import SMOKE_RUN as RUN  # tests/ is on sys.path: pytest puts the rootdir conftest's folder there


@pytest.mark.pipeline
def test_every_notebook_ran_without_errors_or_progress_bar_warnings(smoke_run):
    """No error, and no "IProgress not found" from tqdm: 01_zoo loads the backbone (timm) and the text
    encoder (sentence-transformers), whose huggingface_hub takes tqdm.auto, which warns in a kernel without
    ipywidgets (pipeline/session.py silences it)."""
    assert list(smoke_run) == [p.stem for p in pipeline_notebooks()]
    for name in smoke_run:
        nb = nbformat.read(RUN / f"{name}.ipynb", as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"]
        assert not [o.text for o in outputs if o.output_type == "stream" and "IProgress" in o.text], name


@pytest.mark.pipeline
def test_data_stage_outputs(smoke_run):
    figs = RUN / "figures"
    for ds in ("emoji-tiny", "fashion-mnist"):
        for kind in ("samples", "text_similarity"):
            assert (figs / f"{ds}_{kind}.png").stat().st_size > 10_000
    probe = json.loads((figs / "linear_probe.json").read_text())
    assert {p["dataset"] for p in probe} == {"emoji-tiny", "fashion-mnist"}
    for p in probe:
        assert p["n_train"] == 400 and p["n_test"] == 200  # emoji-tiny: 20 x 20 / 20 x 10
        assert p["test_accuracy"] > 0.6 > p["majority_baseline"]
    texts = pd.read_csv(figs / "class_texts.csv")
    assert len(texts) == 30 and texts.description.str.len().gt(20).all()
    provenance = json.loads((figs / "provenance.json").read_text())
    # Every output but the results page (assembled from these records) has its provenance.
    produced = {p.name for p in figs.iterdir() if p.name not in ("provenance.json", "RESULTS.md")}
    assert produced <= set(provenance)
    assert all(provenance[n]["profile"] == "smoke" and provenance[n]["commit"] for n in produced)
    assert list((RUN / "artifacts" / "cache" / "features").glob("*.safetensors"))


@pytest.mark.pipeline
def test_training_stage_outputs(smoke_run):
    figs = RUN / "figures"
    assert (figs / "train_loss.png").stat().st_size > 10_000
    summary = pd.read_csv(figs / "train_summary.csv")
    assert set(summary.dataset) == {"emoji-tiny", "fashion-mnist"} and (summary.steps > 0).all()
    for name in summary.generator:
        folder = next((RUN / "artifacts" / "generator" / "smoke").glob(name))
        names = {p.name for p in folder.iterdir()}
        assert {"generator.json", "ema.safetensors", "tokenizer.safetensors", "curves.jsonl"} <= names
        assert any(n.startswith("checkpoint-") for n in names)
    # the convergence curves on emoji-tiny: every model scored at every budget, the loss beside the
    # accuracy for T2W, a plateau row per model, the figure, the references
    curves = pd.read_csv(figs / "convergence.csv")
    assert set(curves.model) == {"T2W x0 + text path, h 32 (the profile's generator)", "T2W ε, h 32", "hypernetwork"}
    for model, part in curves.groupby("model"):  # four budgets each (whole epochs: near the profile's)
        assert len(part) == 4 and part.step.is_monotonic_increasing and part.step.is_unique, model
    assert curves.accuracy.between(0, 1).all()
    assert curves[curves.model != "hypernetwork"].validation_loss.gt(0).all()
    assert set(pd.read_csv(figs / "convergence_plateau.csv").model) == set(curves.model)
    assert (figs / "convergence.png").stat().st_size > 10_000
    references = json.loads((figs / "convergence_references.json").read_text())["references"]
    assert {"ridge", "θ0*", "Universal", "trained (ceiling)"} <= set(references)
    # the projection limit: at the profile's own components it is the reference the curves are read against
    curve = pd.read_csv(figs / "ceiling.csv")
    k = int(curve.profile_components.iloc[0])
    assert curve.components.is_monotonic_increasing and k in set(curve.components) and curve.of_trained.iloc[-1] == 1
    projected = references[f"trained, projected on {k} components"]
    assert curve.set_index("components").accuracy[k] == pytest.approx(projected, abs=0.01)  # an argmax or two may flip
    floor = json.loads((figs / "ceiling_noise_floor.json").read_text())
    assert floor["tasks"] == curve.tasks.iloc[0] and floor["weight_mse"] > 0 and 0 <= floor["retrained_accuracy"] <= 1
    # the temperature fitted on seen tasks lowers the NLL of generated heads on the unseen tasks
    calibration = pd.read_csv(figs / "calibration.csv")
    assert len(calibration) == 2 and (calibration.nll_after < calibration.nll_before).all()


@pytest.mark.pipeline
def test_evaluation_stage_outputs(smoke_run):
    figs = RUN / "figures"
    table1 = pd.read_csv(figs / "table1.csv")
    methods = {"Trained (ceiling)", "Universal Model", "Stage-1 head (θ0*)", "Class identity (no text)", "Retrieval-CLIP",
               "Retrieval-NL", "Ridge-CLIP", "Ridge-NL", "Hypernetwork-CLIP", "Hypernetwork-NL", "T2W-CLIP", "T2W-NL"}
    assert len(table1) == 2 * 2 * len(methods) and set(table1.method) == methods
    assert set(table1.split) == {"seen", "unseen"} and table1.accuracy_mean.between(0, 1).all()
    assert (table1[table1.method == "Trained (ceiling)"].mse_mean == 0).all()
    # The per-task file holds every score the table averages, and the counts that reproduce each accuracy.
    tasks = pd.read_csv(figs / "table1_tasks.csv.gz")
    means = tasks.groupby(["dataset", "split", "method", "seed"]).accuracy.mean().groupby(["dataset", "split", "method"]).mean()
    assert np.allclose(means.loc[list(zip(table1.dataset, table1.split, table1.method, strict=True))], table1.accuracy_mean)
    ratio = [sum(map(int, c.split())) / sum(map(int, n.split())) for c, n in zip(tasks.class_correct, tasks.class_samples,
                                                                                   strict=True)]
    assert np.allclose(ratio, tasks.accuracy)
    differences = pd.read_csv(figs / "table1_differences.csv")
    assert len(differences) == 2 * 2 * 13  # datasets x splits x pairs (6 per text variant, and class identity's)
    assert (differences.low_pt <= differences.difference_pt).all() and (differences.difference_pt <= differences.high_pt).all()
    heldout = pd.read_csv(figs / "heldout.csv")
    assert set(heldout.split) == {"heldout", "unseen"} and "T2W-CLIP" in set(heldout.method)
    assert {"T2W-CLIP"} == set(pd.read_csv(figs / "heldout_differences.csv").method) - {"Ridge-CLIP", "Class identity (no text)"}
    novelty = pd.read_csv(figs / "novelty.csv")
    assert (novelty[novelty.method == "Retrieval-CLIP"].agree_nearest == 1).all()
    assert (figs / "fig3_trajectories.png").stat().st_size > 10_000
    table2 = pd.read_csv(figs / "table2.csv")
    assert len(table2) == 8 and table2.accuracy_mean.between(0, 1).all()
    assert table2.validation_accuracy_mean.between(0, 1).all() and (table2.validation_tasks == 16).all()
    selection = json.loads((figs / "loss_selection.json").read_text())
    assert selection["validation_picks"] in table2.variant.tolist() and selection["profile_trains_with"] == "Full T2W"


@pytest.mark.pipeline
def test_application_stage_outputs(smoke_run):
    figs = RUN / "figures"
    table3 = pd.read_csv(figs / "table3.csv")
    assert set(table3.method) == {"Model A", "Model B", "Weight averaging", "Git Re-Basin", "T2W (combined text)"}
    table4 = pd.read_csv(figs / "table4.csv")
    assert {"T2W", "Reptile", "xavier-normal", "normal-0.01"} <= set(table4["init"])
    assert {"acc_10_shot", "acc_100_shot", "epochs_to_90pct"} <= set(table4.columns)
    enhancement = pd.read_csv(figs / "fig6_enhancement.csv")
    assert set(enhancement.t) == {100, 400} and enhancement.acc_after.between(0, 1).all()
    landscape = pd.read_csv(figs / "fig5_landscape.csv")
    assert set(landscape["init"]) == {"T2W", "Xavier normal"}
    assert (landscape.grid_min <= landscape.loss_at_solution * (1 + 1e-5)).all()
    for name in ("table4_curves", "fig6_enhancement", "fig5_landscape_emoji-tiny", "fig4_gradcam_fashion-mnist"):
        assert (figs / f"{name}.png").stat().st_size > 10_000


@pytest.mark.pipeline
def test_diffusion_vs_regression_outputs(smoke_run):
    from t2wlib.experiments import diffusion_vs_regression

    figs = RUN / "figures"
    summary = pd.read_csv(figs / "diffusion_vs_regression.csv")
    trained = [*diffusion_vs_regression.GENERATORS, *diffusion_vs_regression.HYPERNETS.values()]
    methods = {(diffusion_vs_regression.ZOO_LABEL[z], m) for z, m in trained}
    assert methods <= set(zip(summary.zoo, summary.method))
    assert set(summary.zoo) == set(diffusion_vs_regression.ZOO_LABEL.values()) and summary.accuracy.between(0, 1).all()
    starts = pd.read_csv(figs / "solution_starts.csv")
    assert (starts.theta0_distance_aligned[1:] > 0).all()  # other solutions, not permutations of start 0's
    assert pd.read_csv(figs / "diffusion_vs_regression_answer.csv").answer[0].startswith("Unseen tasks: on the single")
    for name in ("diffusion_vs_regression_novelty", "diffusion_vs_regression_basins"):
        assert (figs / f"{name}.png").stat().st_size > 10_000


@pytest.mark.pipeline
def test_generate_and_predict_from_the_command_line(smoke_run, tmp_path, capsys):
    """`t2w generate` by folder and by profile and dataset (the README's way) write one classifier; `t2w predict`,
    run as the installed command runs (its own process), names most of the held-out images right."""
    import subprocess
    import sys

    from t2wlib.core.sealed import load_sealed
    from t2wlib.data.datasets import load_split
    from t2wlib.pipeline import cli

    summary = pd.read_csv(RUN / "figures" / "train_summary.csv").set_index("dataset")
    gen = RUN / "artifacts" / "generator" / "smoke" / summary.loc["fashion-mnist", "generator"]
    out = tmp_path / "head.safetensors"
    assert cli.main(["generate", "--generator", str(gen), "--classes", "sneaker,sandal,bag", "--out", str(out),
                     "--steps", "5"]) == 0, capsys.readouterr().err[-2000:]
    # The same generator found by profile and dataset, as the README's example does it.
    assert cli.main(["generate", "--profile", "smoke", "--artifacts", str(RUN / "artifacts"), "--dataset", "fashion-mnist",
                     "--classes", "sneaker,sandal,bag", "--out", str(tmp_path / "same.safetensors"), "--steps", "5"]) == 0
    (same, same_meta), (first, first_meta) = (load_sealed(p, "classifier") for p in (tmp_path / "same.safetensors", out))
    assert same_meta == first_meta and all(torch.equal(same[k], first[k]) for k in first)  # (header order may differ)
    split = load_split("fashion-mnist", "test")
    truth = {}  # the first 4 test images of each requested class
    for name in ("sneaker", "sandal", "bag"):
        for i in [int(i) for i in (split.labels == split.class_names.index(name)).nonzero()[0][:4]]:
            truth[str(tmp_path / f"{name}{i}.png")] = name
            split.image(i).save(tmp_path / f"{name}{i}.png")
    t2w = [sys.executable, "-m", "t2wlib.pipeline.cli"]
    pred = subprocess.run([*t2w, "predict", "--classifier", str(out), *truth], capture_output=True, text=True, timeout=300)
    assert pred.returncode == 0, pred.stderr[-2000:]
    lines = [line.split("\t") for line in pred.stdout.strip().splitlines()]
    assert [path for path, _, _ in lines] == list(truth) and all(0 <= float(p) <= 1 for _, _, p in lines)
    right = sum(label == truth[path] for path, label, _ in lines)
    assert right >= 8, lines  # of 12: a head that ignored the names would get about 4
    capsys.readouterr()
    bad = tmp_path / "bad.safetensors"
    assert cli.main(["generate", "--generator", str(gen), "--classes", "bag,Bag", "--out", str(bad)]) == 2
    assert "duplicate class" in capsys.readouterr().err and not bad.exists()


@pytest.mark.pipeline
def test_results_page_and_provenance_name_each_notebook(smoke_run):
    figs = RUN / "figures"
    provenance = json.loads((figs / "provenance.json").read_text())
    assert {e["notebook"] for e in provenance.values()} == set(smoke_run)  # every output knows its notebook
    results = (figs / "RESULTS.md").read_text()
    headings = [line for line in results.splitlines() if line.startswith("## ")]
    assert [h.split()[1] for h in headings] == ["Summary", "Time", *smoke_run]
    # The summary's first screen is read from Table 1 and its intervals: every unseen difference of the prompt
    # methods, with its interval.
    differences = pd.read_csv(figs / "table1_differences.csv").query("split == 'unseen' and not method.str.endswith('-NL')")
    summary = results.split("## Time", 1)[0]
    assert all(f"| {r.method} − {r.compared_with} | {r.difference_pt:+.1f} | [{r.low_pt:.1f}, {r.high_pt:.1f}] |" in summary
               for r in differences.itertuples())
    assert "[gzipped CSV](table1_tasks.csv.gz)" in results
    for table in figs.glob("*.md"):
        if table.name != "RESULTS.md":
            assert table.read_text().strip() in results, table.name  # each table inline, as generated
    for png in figs.glob("*.png"):
        assert f"]({png.name})" in results, png.name
    # A run two at a time states its wall time, each notebook's own time with their sum, and the machine.
    timings = json.loads((RUN / "timings.json").read_text())
    lanes = f"2 notebooks at a time after the first two, {timings['threads']} thread(s) each"
    assert f"| **wall** ({lanes}) | **{timings['wall_s']:,.0f}** |" in results
    assert f"| sum | {sum(smoke_run.values()):,.0f} |" in results
    assert all(f"| {name} | {value:,.0f} |" in results for name, value in smoke_run.items())
    assert "Machine: " in results and " cores, torch " in results


@pytest.mark.pipeline
def test_convergence_script_runs_levers_task_loss_and_the_eps_curves(smoke_run, tmp_path, monkeypatch):
    """scripts/convergence_study.py over the smoke run's zoos, with two levers (one of them the
    class-set condition) at a few steps: every part writes its table, with provenance."""
    import importlib.util
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location("convergence_study", REPO / "scripts" / "convergence_study.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from t2wlib.experiments import convergence

    monkeypatch.setattr(convergence, "LEVER_STEPS", 10)
    monkeypatch.setattr(convergence, "LEVER_BASE", {"tokenizer_mode": "pca-global", "gen_components": 16,
                                                    "tasks_per_component": 0, "dit": "tiny"})
    monkeypatch.setattr(convergence, "LEVERS", {"base": {}, "class set": {"condition": "classes"}})
    figures = tmp_path / "f"
    monkeypatch.setattr(sys, "argv", ["convergence_study.py", "--profile", "smoke", "--datasets", "emoji-tiny",
                                      "--artifacts", str(RUN / "artifacts"), "--figures", str(figures)])
    script.main()
    levers = pd.read_csv(figures / "convergence_levers.csv")
    assert list(levers.model) == ["base", "class set"] and levers.accuracy.between(0, 1).all()
    assert levers.settings.str.contains("condition classes").tolist() == [False, True]
    task_loss = pd.read_csv(figures / "convergence_task_loss.csv")
    assert set(task_loss.model) == {"hypernetwork", "hypernetwork + task loss"} and len(task_loss) == 6  # 3 budgets
    eps_long = pd.read_csv(figures / "convergence_eps_long.csv")
    assert len(eps_long) == 3 and eps_long.step.is_monotonic_increasing and eps_long.validation_loss.gt(0).all()
    # three ε token spaces at the curves' budgets: the profile's capped components (twice: under one
    # scale, then whitened), then every component whitened (the twin's)
    eps_tokens = pd.read_csv(figures / "convergence_eps_tokens.csv")
    assert len(eps_tokens) == 3 * 4 and eps_tokens.accuracy.between(0, 1).all()
    components = eps_tokens.groupby("model", sort=False).components.first().tolist()
    assert components[0] == components[1] < components[2]
    # Figure 3's second generator at its budget, then the same trained twice as long, scored at 1/4,
    # 1/2, 1 and 2 times that budget
    monkeypatch.setattr(sys, "argv", [*sys.argv, "--part", "eps-plateau"])
    script.main()
    plateau = pd.read_csv(figures / "convergence_eps_plateau.csv")
    own, longer = (plateau[plateau.model == m] for m in plateau.model.unique())
    steps = int(own.step.iloc[0])
    assert len(own) == 1 and list(longer.step) == sorted({steps // 4, steps // 2, steps, 2 * steps} - {0})
    assert plateau.accuracy.between(0, 1).all()
    # the hypernetworks' folders are keyed by their zoo: another dataset's cannot be loaded in their place
    folders = [p.name for p in (RUN / "artifacts" / "convergence").iterdir() if p.is_dir()]
    zoos = [p.name for p in (RUN / "artifacts" / "zoo" / "smoke").iterdir()]
    assert folders and all(any(f.startswith(f"{z}-") for z in zoos) for f in folders)
    provenance = json.loads((figures / "provenance.json").read_text())
    assert all(provenance[f"convergence_{n}.csv"]["notebook"] == "scripts/convergence_study.py"
               for n in ("levers", "task_loss", "eps_tokens", "eps_long", "eps_plateau"))


@pytest.mark.pipeline
def test_set_overrides_reach_the_notebooks_and_their_provenance(smoke_run, tmp_path, capsys):
    from t2wlib.pipeline import cli

    figures = tmp_path / "figures"
    code = cli.main(["run", "--profile", "smoke", "--only", "01", "--set", "zoo_tasks=60", "--quiet",
                     "--artifacts", str(RUN / "artifacts"), "--figures", str(figures), "--run-dir", str(tmp_path / "nb")])
    assert code == 0, capsys.readouterr().err
    summary = pd.read_csv(figures / "zoo_summary.csv")
    assert (summary.groupby("dataset").tasks.sum() == 60).all()
    provenance = json.loads((figures / "provenance.json").read_text())
    assert all(e["overrides"] == {"zoo_tasks": 60} and e["notebook"] == "01_zoo" for e in provenance.values())
    assert json.loads((tmp_path / "nb" / "timings.json").read_text())["overrides"] == {"zoo_tasks": 60}
    assert cli.main(["run", "--profile", "smoke", "--set", "zoo_taks=60", "--run-dir", str(tmp_path / "no")]) == 2
    assert "unknown profile field(s) ['zoo_taks']; fields: " in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
    # `t2w compare` on the two smoke runs: the same features give the same probe and texts, half the
    # tasks another zoo summary, and the notebooks this run left out are missing
    capsys.readouterr()
    assert cli.main(["compare", str(figures), str(RUN / "figures")]) == 1
    status = dict(line.split()[:2][::-1] for line in capsys.readouterr().out.splitlines() if not line.startswith("["))
    assert status["linear_probe.csv"] == status["class_texts.csv"] == status["linear_probe.json"] == "identical"
    assert status["zoo_summary.csv"] == "beyond" and status["table1.csv"] == "missing"
    # a partial run whose generator was trained with other settings is refused before any kernel starts
    assert cli.main(["run", "--profile", "smoke", "--only", "05", "--set", "gen_steps=1200", "--artifacts",
                     str(RUN / "artifacts"), "--figures", str(tmp_path / "f5")]) == 2
    err = capsys.readouterr().err
    assert "--only 05 needs the generator of emoji-tiny that 02_train trains with these settings" in err
    assert "train it first: t2w run --profile smoke --only 01 02 05 --set gen_steps=1200" in err


@pytest.mark.pipeline
def test_papermill_p_sets_a_notebooks_own_knobs(smoke_run, tmp_path):
    """A reviewer re-runs one experiment with papermill alone: `-p fusion_k 3 -p fusion_pairs 2` on 05_fusion,
    over the smoke run's zoos and generators, makes Table 3 of 3 + 3 classes and 2 pairs, and every output's
    provenance records the two values."""
    import subprocess
    import sys

    figures = tmp_path / "figures"
    run = subprocess.run([sys.executable, "-m", "papermill", str(REPO / "notebooks" / "05_fusion.ipynb"),
                          str(tmp_path / "05_fusion.ipynb"), "--cwd", str(REPO / "notebooks"),
                          "-p", "PROFILE", "smoke", "-p", "ARTIFACTS", str(RUN / "artifacts"), "-p", "FIGURES", str(figures),
                          "-p", "NOTEBOOK", "05_fusion", "-p", "fusion_k", "3", "-p", "fusion_pairs", "2"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    table3 = pd.read_csv(figures / "table3.csv")
    assert set(table3.k) == {3} and set(table3.pairs) == {2}
    provenance = json.loads((figures / "provenance.json").read_text())
    assert provenance and all(e["overrides"] == {"fusion_k": 3, "fusion_pairs": 2} for e in provenance.values())


@pytest.mark.pipeline
def test_run_on_a_users_folder_to_its_own_generator(tmp_path, colour_folder, capsys):
    """`t2w run --data mine=FOLDER` on a folder written here: 01-02 end to end (03 runs the same code on
    every dataset: the smoke run tests it), the user's descriptions in the T2W-NL texts, calibrated
    classifiers from the user's generator that name the colour of held-out test images."""
    from conftest import COLOUR_DESCRIPTIONS

    from t2wlib.classifier import Classifier
    from t2wlib.pipeline import cli
    from t2wlib.zoo.model_zoo import load_zoo

    folder = colour_folder(tmp_path / "mine")
    art, figs = tmp_path / "artifacts", tmp_path / "figures"
    code = cli.main(["run", "--profile", "smoke", "--data", f"mine={folder}", "--only", "01", "02", "--quiet",
                     "--threads", "2", "--artifacts", str(art), "--figures", str(figs), "--run-dir", str(tmp_path / "nb")])
    assert code == 0, capsys.readouterr().err[-3000:]
    summary = pd.read_csv(figs / "train_summary.csv")
    assert list(summary.dataset) == ["user-mine"] and (summary.generated_mean > summary.universal_mean - 0.1).all()
    texts = pd.read_csv(figs / "class_texts.csv")
    assert texts.description.tolist() == [COLOUR_DESCRIPTIONS[c] for c in texts["class"]]
    zoo = load_zoo(next((art / "zoo" / "smoke").glob("user-mine-*")))
    assert zoo.config.k_range == (2, 5) and zoo.spec.hidden == 2 and len(zoo.tasks) == 56  # for_dataset's rule, 6 classes
    assert zoo.source["class_texts"]["description"] == texts.description.tolist()
    assert not torch.allclose(zoo.task_text["v_c/description"], zoo.task_text["v_c/prompt"])
    calibration = pd.read_csv(figs / "calibration.csv")
    assert (calibration.temperature > 0).all() and calibration.ece_after.between(0, 1).all()
    provenance = json.loads((figs / "provenance.json").read_text())
    assert all(e["overrides"]["user_data"] == [f"mine={folder}"] for e in provenance.values())
    assert json.loads((tmp_path / "nb" / "timings.json").read_text())["threads"] == 2
    head = tmp_path / "head.safetensors"
    assert cli.main(["generate", "--profile", "smoke", "--artifacts", str(art), "--dataset", "user-mine", "--data",
                     f"mine={folder}", "--classes", "red apple,blue cup,black cat", "--out", str(head)]) == 0
    assert "calibrated with temperature" in capsys.readouterr().out
    clf = Classifier.load(head)
    assert clf.temperature == pytest.approx(float(calibration.temperature.iloc[0]))
    images = {image: name.replace("_", " ") for name in ("red_apple", "blue_cup", "black_cat")
              for image in sorted((folder / "test" / name).iterdir())[:3]}
    assert cli.main(["predict", "--classifier", str(head), *map(str, images)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [path for path, _, _ in rows] == list(map(str, images)) and all(0 < float(p) <= 1 for _, _, p in rows)
    right = sum(label == images[Path(path)] for path, label, _ in rows)
    assert right >= 7, rows  # one flat colour per class: a head that knows the names gets (nearly) all 9
