"""Generator bundle and text -> classifier: save/load with shape checks, sampling, clear errors."""

from __future__ import annotations

import dataclasses

import json
import sys
from pathlib import Path

import pytest
import torch

from t2wlib.classifier import Classifier
from t2wlib.core.sealed import load_sealed
from t2wlib.data.class_names import check_classes
from t2wlib.generator.from_zoo import train_generator
from t2wlib.generator.t2w import T2WGenerator
from t2wlib.heads.adapter import HeadSpec
from t2wlib.pipeline.config import generator_config, seen_split
from t2wlib.pipeline.profiles import get_profile
from t2wlib.zoo.model_zoo import load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    zoo_job.build(root / "zoo")
    zoo = load_zoo(root / "zoo")
    profile = get_profile("smoke", block_size=8, gen_epochs=2, gen_batch_size=8)
    gen, curves = train_generator(root / "generator", zoo, generator_config(profile, zoo, "prompt", 3), progress=False)
    return root / "generator", gen, curves, zoo


def test_train_save_load_and_sample(trained):
    directory, gen, curves, zoo = trained
    assert len(curves) == 2 * (len(zoo.tasks.ids("seen")) // 8) and {"diff", "sym", "adv", "disc"} <= set(curves[0])
    again = T2WGenerator.load(directory)
    v = zoo.task_text["v_c/prompt"][:3]
    a = gen.sample(v, steps=5, seed=1)
    assert a.shape == (3, zoo.spec.num_params) and torch.isfinite(a).all()
    assert torch.equal(a, again.sample(v, steps=5, seed=1))  # deterministic given the seed
    b, trajectory = again.sample(v, sampler="ddpm", seed=1, record=True)
    assert len(trajectory) == gen.diffusion.num_steps and torch.equal(trajectory[-1][1], b)


def test_edited_or_mismatched_generator_files_are_rejected(trained, tmp_path):
    """Three layers: generator.json's own checksum, the definition each weight file was sealed for,
    and the shapes the definition implies."""
    import shutil

    from t2wlib.core.files import CorruptArtifactError, write_json_checked
    from t2wlib.core.sealed import load_sealed, save_sealed
    from t2wlib.generator.t2w import GeneratorConfig

    copy = tmp_path / "g"
    shutil.copytree(trained[0], copy)
    meta = json.loads((copy / "generator.json").read_text())
    meta["text_dim"] += 1
    (copy / "generator.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptArtifactError, match="generator.json fails its checksum"):
        T2WGenerator.load(copy)
    meta.pop("checksum")
    write_json_checked(copy / "generator.json", meta)  # a consistent file, but not the weights' definition
    with pytest.raises(CorruptArtifactError, match="tokenizer.safetensors was written for another generator definition"):
        T2WGenerator.load(copy)
    definition = {"definition": GeneratorConfig.from_json(meta).digest()}
    for name in ("tokenizer.safetensors", "ema.safetensors"):
        save_sealed(copy / name, load_sealed(copy / name, name)[0], definition)
    with pytest.raises(ValueError, match="does not fit generator.json"):
        T2WGenerator.load(copy)
    with pytest.raises(FileNotFoundError, match="not a T2W generator"):
        T2WGenerator.load(tmp_path)


def test_a_folder_of_another_generator_is_refused(trained):
    directory, _, _, zoo = trained
    other = get_profile("smoke", block_size=8, gen_epochs=2, gen_batch_size=8, lambda_adv=0.0)
    with pytest.raises(ValueError, match="another definition"):
        train_generator(directory, zoo, generator_config(other, zoo, "prompt", 3), progress=False)


def test_validation_tasks_are_held_out_of_training(trained, tmp_path):
    zoo, seen = trained[3], trained[3].tasks.ids("seen")
    profile = get_profile("smoke", block_size=8, gen_epochs=1, gen_batch_size=8, gen_validation_tasks=6)
    train, validation = seen_split(zoo, profile)
    assert train + validation == seen and len(validation) == 6
    assert seen_split(zoo, get_profile("smoke", gen_batch_size=8)) == (seen, [])
    _, curves = train_generator(tmp_path / "g", zoo, generator_config(profile, zoo, "prompt", 3), progress=False)
    assert len(curves) == len(train) // 8  # one epoch over the training tasks only
    with pytest.raises(ValueError, match="gen_validation_tasks = -1 is out of range"):  # refused by the profile
        get_profile("smoke", gen_batch_size=8, gen_validation_tasks=-1)
    n = len(seen) - 7  # in range for a profile, too many for this zoo
    with pytest.raises(ValueError, match=f"gen_validation_tasks = {n} must be in \\[0, {len(seen) - 8}\\]"):
        seen_split(zoo, get_profile("smoke", gen_batch_size=8, gen_validation_tasks=n))


def test_sample_rejects_bad_input(trained):
    gen = trained[1]
    with pytest.raises(ValueError, match="v_c must be"):
        gen.sample(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unknown sampler"):
        gen.sample(torch.zeros(1, gen.model.text_dim), sampler="euler")


@pytest.mark.parametrize("classes, message", [([], "at least two"), (["cat"], "at least two"), (["cat", " "], "non-empty"),
                                              (["cat", "dog", "Cat"], "duplicate class 'Cat'")])
def test_class_lists_are_checked(classes, message):
    with pytest.raises(ValueError, match=message):
        check_classes(classes)


def test_classifier_file_roundtrip_and_unknown_backbone(tmp_path):
    spec = HeadSpec(512, 2, 3)  # ResNet-18's 512 features
    clf = Classifier(torch.randn(spec.num_params), torch.randn(2, 3), ["a", "b"], spec, "resnet18", 32, {"seed": 0})
    loaded = Classifier.load(clf.save(tmp_path / "c.safetensors"))
    assert loaded.class_names == ["a", "b"] and torch.equal(loaded.theta, clf.theta) and loaded.spec == spec
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'; allowed: .*resnet18"):
        Classifier(clf.theta, clf.class_emb, clf.class_names, spec, "vgg16", 32, {})


def test_compact_generator_with_text_path_probes_resumes_and_loads(trained, tmp_path):
    """The convergence study's generator: pca tokens, x0 with the linear text path, min-SNR and two
    noise draws. Probes see the EMA at their steps; a run stopped after a probe resumes to the same
    weights as one uninterrupted; the folder loads with its tokenizer and samples ridge-like heads."""
    from t2wlib.generator.ridge import fit_ridge
    from t2wlib.generator.trainer import checkpoint_files

    zoo = trained[3]
    profile = get_profile("smoke", block_size=4, gen_epochs=3, gen_batch_size=8, tokenizer_mode="pca",
                          gen_components=10, tasks_per_component=0, prediction="x0", text_path=True, min_snr=5.0,
                          noise_draws=2, lambda_sym=0.0, lambda_adv=0.0, lambda_task=1.0, checkpoint_every=1000)
    features = zoo_job.synthetic_data()[0]  # the zoo's training features, for the task loss
    cfg = generator_config(profile, zoo, "prompt", 3)
    assert (cfg.components, cfg.text_path) == (10, True)
    seen = zoo.tasks.ids("seen")
    # the components: gen_components, at most T / tasks_per_component and T - 1; none for block tokens
    capped = [generator_config(dataclasses.replace(profile, **change), zoo, "prompt", 3).components
              for change in ({"tasks_per_component": len(seen) // 4}, {"gen_components": 10_000}, {"tokenizer_mode": "standard"})]
    assert capped == [4, len(seen) - 1, 0]
    per_epoch = len(seen) // 8
    probed = []

    def probe(step, generator, curves):
        probed.append((step, len(curves), generator.sample(zoo.task_text["v_c/prompt"][:2], steps=3).shape))
        probed_weights.update({k: v.clone() for k, v in generator.model.state_dict().items()})

    probed_weights = {}

    with pytest.raises(ValueError, match="lambda_task = 1.0 needs the zoo's training features"):
        train_generator(tmp_path / "a", zoo, cfg, progress=False)
    gen, curves = train_generator(tmp_path / "a", zoo, cfg, progress=False, probe_steps=(per_epoch, 10_000), probe=probe,
                                  train_features=features)
    assert probed == [(per_epoch, per_epoch, (2, zoo.spec.num_params))]  # steps beyond the run are not probed
    assert len(curves) == 3 * per_epoch and gen.tokenizer.mode == "pca" and gen.tokenizer.num_tokens == 3
    assert all(0 < r["task"] < float("inf") for r in curves)  # the task loss is a term of every step
    loaded = T2WGenerator.load(tmp_path / "a")
    v = zoo.task_text["v_c/prompt"][seen[:4]]
    assert torch.equal(loaded.sample(v, steps=5, seed=1), gen.sample(v, steps=5, seed=1))
    # the estimate starts at ridge: after training it is still near the ridge heads, far from 0
    ridge = fit_ridge(zoo.task_text["v_c/prompt"][seen], zoo.theta[seen])(v)
    sample = gen.sample(v, steps=5, seed=1)
    assert float(((sample - ridge) ** 2).mean()) < 0.5 * float(((sample - zoo.theta[seen].mean(0)) ** 2).mean())
    # interrupted after the probe (its checkpoint), resumed: the same bits as the uninterrupted run
    train_generator(tmp_path / "b", zoo, cfg, progress=False, probe_steps=(per_epoch,), train_features=features)
    # the probe saw the EMA of its step: the weights of that step's checkpoint's "ema/", not its "model/"
    at_probe, meta = load_sealed(checkpoint_files(tmp_path / "b")[1], "checkpoint")
    assert int(meta["step"]) == per_epoch
    for k, v in probed_weights.items():
        assert torch.equal(v, at_probe[f"ema/{k}"]), k
    assert any(not torch.equal(v, at_probe[f"model/{k}"]) for k, v in probed_weights.items())
    for path in checkpoint_files(tmp_path / "b")[:1]:
        path.unlink()  # back to the probe's checkpoint
    (tmp_path / "b" / "ema.safetensors").unlink()
    resumed, _ = train_generator(tmp_path / "b", zoo, cfg, progress=False, train_features=features)
    for (k, a), b in zip(gen.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("overrides, message", [
    ({"text_path": True, "prediction": "eps"}, "text_path = True needs prediction = 'x0'"),
    ({"prediction": "v", "lambda_sym": 0.1}, "lambda_sym = 0.1 needs prediction 'eps' or 'x0'"),
    ({"min_snr": -1.0}, "min_snr = -1.0 is out of range"),
    ({"noise_draws": 0}, "noise_draws = 0 is out of range"),
    ({"lambda_task": -1.0}, "lambda_task = -1.0 is out of range"),
    ({"tasks_per_component": -1}, "tasks_per_component = -1 is out of range"),
    ({"gen_components": 0}, "gen_components = 0 is out of range"),
    ({"tokenizer_mode": "svd"}, "allowed: one of minmax, standard, pca"),
    ({"condition": "tokens"}, "condition = 'tokens' is out of range; allowed: one of pooled, classes"),
    ({"condition": "classes", "dit": "mlp-film"}, "condition = 'classes' needs a DiT"),
])
def test_generator_levers_are_range_checked(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_profile("smoke", **overrides)


@pytest.mark.filterwarnings("ignore:5 classes is outside")
def test_class_set_generator_trains_resumes_loads_and_samples_from_class_embeddings(trained, tmp_path):
    """condition = "classes": the denoiser takes each task's class embeddings (zero-padded to the
    zoo's largest task), not the pooled v_c. Its definition records the condition (a pooled one's
    generator.json and digest do not mention it); it resumes to the same bits; a sample takes the
    class set, refuses a pooled v_c, and equals the sample from the same set padded or not."""
    from t2wlib.generator.t2w import GeneratorConfig
    from t2wlib.generator.trainer import checkpoint_files

    zoo = trained[3]
    k_max = zoo.config.k_range[1]
    seen = zoo.tasks.ids("seen")
    condition = zoo.task_condition("prompt", seen[:5], "classes")
    emb = zoo.task_text["class_emb/prompt"]
    for row, task in zip(condition, seen[:5]):
        k = len(zoo.tasks.classes[task])
        assert torch.equal(row[:k], emb[list(zoo.tasks.classes[task])]) and not row[k:].any()
    assert condition.shape == (5, k_max, emb.shape[1])
    with pytest.raises(ValueError, match="unknown condition 'set'; allowed: pooled, classes"):
        zoo.task_condition("prompt", seen[:5], "set")

    profile = get_profile("smoke", block_size=4, gen_epochs=2, gen_batch_size=8, tokenizer_mode="pca-global",
                          gen_components=10, prediction="x0", text_path=True, condition="classes", checkpoint_every=1000)
    cfg = generator_config(profile, zoo, "prompt", 3)
    pooled = generator_config(dataclasses.replace(profile, condition="pooled"), zoo, "prompt", 3)
    assert cfg.class_slots() == k_max and pooled.class_slots() == 0
    assert "condition" not in pooled.to_json() and cfg.to_json()["condition"] == "classes"
    assert GeneratorConfig.from_json(cfg.to_json()) == cfg and GeneratorConfig.from_json(pooled.to_json()) == pooled
    with pytest.raises(ValueError, match="unknown condition 'tokens'; allowed: pooled, classes"):
        GeneratorConfig.from_json({**cfg.to_json(), "condition": "tokens"})

    gen, curves = train_generator(tmp_path / "a", zoo, cfg, progress=False, probe_steps=(len(seen) // 8,))
    assert gen.model.classes == k_max and all(r["diff"] < float("inf") for r in curves)
    ids = zoo.tasks.ids("unseen")[:3]
    sets = zoo.task_condition("prompt", ids, "classes")
    theta = gen.sample(sets, steps=5, seed=1)
    assert theta.shape == (3, zoo.spec.num_params) and torch.isfinite(theta).all()
    k = len(zoo.tasks.classes[ids[0]])  # one task alone, unpadded: the padding changes nothing
    assert torch.allclose(gen.sample(sets[:1, :k], steps=5, seed=1), theta[:1], atol=1e-5)
    # condition_of: the set itself here; for a pooled generator Alg. 1's v_c, the padding left out
    from t2wlib.data.task_condition import fuse_features

    assert gen.condition_of(sets) is sets
    assert torch.allclose(trained[1].condition_of(sets)[:1], fuse_features(sets[:1, :k]), atol=1e-6)
    with pytest.raises(ValueError, match=f"conditioned on class sets: its condition must be \\(B, k <= {k_max}"):
        gen.sample(zoo.task_text["v_c/prompt"][ids], steps=5)
    assert torch.equal(T2WGenerator.load(tmp_path / "a").sample(sets, steps=5, seed=1), theta)
    # killed after the first epoch's checkpoint and resumed: the same weights as the uninterrupted run
    for path in checkpoint_files(tmp_path / "a")[:1]:
        path.unlink()
    (tmp_path / "a" / "ema.safetensors").unlink()
    resumed, _ = train_generator(tmp_path / "a", zoo, cfg, progress=False)
    for (name, a), b in zip(gen.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    # text -> classifier refuses more classes than the generator's slots, before it samples
    from t2wlib.classifier import text_to_classifier
    from t2wlib.encoders.text import TextEncoder

    dim = zoo.task_text["class_emb/prompt"].shape[1]
    encoder = TextEncoder("minilm", dim, "random", lambda texts: torch.randn(len(texts), dim,
                                                                            generator=torch.Generator().manual_seed(0)))
    named = dataclasses.replace(gen, config=dataclasses.replace(gen.config, text_encoder="minilm",
                                                                backbone="efficientnet-lite0"))
    with pytest.raises(ValueError, match=f"5 classes: this generator is conditioned on the set of class embeddings, "
                                         f"of at most {k_max}"):
        text_to_classifier(named, encoder, ["cat", "dog", "owl", "fox", "elk"], steps=3)
