"""A user's own image folders (t2w run --data NAME=PATH): layouts, namespace, content-keyed caches,
descriptions, the per-dataset rule for r and k, and one-line errors for bad folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import COLOUR_DESCRIPTIONS
from PIL import Image
from torch import nn

from t2wlib.core.tensor_cache import TensorCache
from t2wlib.data import datasets, task_condition, user_folders, wordnet
from t2wlib.data.datasets import dataset_identity, load_split
from t2wlib.data.features import dataset_features
from t2wlib.data.image_split import DatasetNotFoundError
from t2wlib.data.user_folders import register_user_dataset
from t2wlib.encoders.backbones import Backbone
from t2wlib.pipeline import cli
from t2wlib.pipeline.config import zoo_path
from t2wlib.pipeline.overrides import data_overrides
from t2wlib.pipeline.profiles import for_dataset, get_profile


@pytest.fixture(scope="module")
def colours(tmp_path_factory, colour_folder) -> Path:
    return colour_folder(tmp_path_factory.mktemp("colours"))


def test_a_user_name_equal_to_a_built_in_one_lives_in_its_own_namespace(colours, cifar_root):
    name = register_user_dataset(f"cifar100={colours}")
    assert name == "user-cifar100"
    mine, paper = load_split(name, "train"), load_split("cifar100", "train", cifar_root)
    assert mine.class_names == sorted(COLOUR_DESCRIPTIONS) and mine.paths is not None
    assert paper.array is not None and paper.class_names != mine.class_names  # the paper loader is untouched
    assert register_user_dataset(f"cifar100={colours}") == name  # the same folder again: a no-op
    with pytest.raises(ValueError, match="already"):
        register_user_dataset(f"cifar100={cifar_root}")


def test_layouts_one_folder_cifar_and_caltech(tmp_path, cifar_root, caltech_root, colour_folder):
    flat = colour_folder(tmp_path / "flat", train=4, test=1, split=False)
    train, test = (load_split(register_user_dataset(f"flat={flat}"), s) for s in datasets.SPLITS)
    assert len(train) + len(test) == 30 and not set(train.paths) & set(test.paths)
    assert np.bincount(test.labels).tolist() == [1] * 6  # 20 % per class, seeded
    cifar = load_split(register_user_dataset(f"mycifar={cifar_root / 'cifar-100-python'}"), "test")
    assert cifar.dataset == "user-mycifar" and cifar.array is not None
    with pytest.raises(DatasetNotFoundError, match=r"user-mycaltech .* has 2 class\(es\) \(ak47, electric guitar\)"):
        load_split(register_user_dataset(f"mycaltech={caltech_root}"), "train")  # read as Caltech: 2 classes


def test_a_changed_image_misses_the_feature_cache_and_a_renamed_class_moves_the_zoo(tmp_path, colour_folder):
    root = colour_folder(tmp_path / "c", train=3, test=2)
    name = register_user_dataset(f"changing={root}")
    calls = []
    trunk = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    backbone = Backbone("stub", trunk, nn.Identity(), 3, (0.5,) * 3, (0.25,) * 3, "random", "")
    cache = TensorCache(tmp_path / "cache")

    def features():
        def counted(x):
            calls.append(len(x))
            return trunk(x)
        backbone.trunk = counted
        return dataset_features(name, "train", backbone, cache, image_size=16, per_class=None, data_seed=0,
                                progress=False)

    first = features()
    features()
    assert len(calls) == 1  # the second call was a cache hit
    profile = get_profile("smoke")
    before = dataset_identity(name)
    image = Path(load_split(name, "train").paths[0])
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)  # same name, same size class: new pixels
    second = features()
    assert len(calls) == 2 and not torch.equal(first.X, second.X)
    after = dataset_identity(name)
    assert after.digest != before.digest and zoo_path("a", profile, after) != zoo_path("a", profile, before)
    for part in datasets.SPLITS:
        shutil.move(root / part / "black_cat", root / part / "black_dog")
    (root / user_folders.DESCRIPTIONS_FILE).write_text("".join(
        f"{k.replace('black cat', 'black dog')}: {v}\n" for k, v in COLOUR_DESCRIPTIONS.items()))
    renamed = dataset_identity(name)
    assert "black dog" in load_split(name, "test").class_names
    assert zoo_path("a", profile, renamed) != zoo_path("a", profile, after)


def test_descriptions_file_reaches_the_t2w_nl_texts(colours):
    split = load_split(register_user_dataset(f"described={colours}"), "train")
    assert split.descriptions == [COLOUR_DESCRIPTIONS[c] for c in split.class_names]
    texts = task_condition.class_descriptions(split.class_names, split.wnids, split.descriptions)
    assert [t for t, _ in texts] == split.descriptions
    assert {source for _, source in texts} == {"the dataset's descriptions file"}


@pytest.mark.parametrize("lines, message", [
    ("red apple: red\n", r"no description for \['black cat'"),
    ("".join(f"{k}: {v}\n" for k, v in COLOUR_DESCRIPTIONS.items()) + "pear: a pear\n", r"no class named \['pear'\]"),
    ("red apple\n", "every line must be 'class name: description'"),
])
def test_a_bad_descriptions_file_names_the_file(tmp_path, colours, lines, message):
    root = tmp_path / "d"
    shutil.copytree(colours, root)
    (root / user_folders.DESCRIPTIONS_FILE).write_text(lines)
    with pytest.raises(ValueError, match=message) as err:
        load_split(register_user_dataset(f"baddesc{len(lines)}={root}"), "train")
    assert str(root / user_folders.DESCRIPTIONS_FILE) in str(err.value)


def _one_line_error(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2w: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_folders_give_one_line_errors_naming_them(tmp_path, colours, capsys):
    run = ["run", "--profile", "smoke", "--artifacts", str(tmp_path / "a"), "--figures", str(tmp_path / "f"), "--data"]
    empty_class = tmp_path / "empty_class"
    shutil.copytree(colours, empty_class)
    for f in (empty_class / "train" / "blue_cup").iterdir():
        f.unlink()
    assert str(empty_class / "train" / "blue_cup") in _one_line_error(run + [f"e={empty_class}"], capsys)
    no_images = tmp_path / "no_images"
    no_images.mkdir()
    (no_images / "notes.txt").write_text("nothing here")
    assert "holds no class folders" in _one_line_error(run + [f"n={no_images}"], capsys)
    single = tmp_path / "single"
    for part in datasets.SPLITS:
        shutil.copytree(colours / part / "red_apple", single / part / "red_apple")
    assert "has 1 class(es) (red apple)" in _one_line_error(run + [f"s={single}"], capsys)
    broken = tmp_path / "broken"
    shutil.copytree(colours, broken)
    (broken / user_folders.DESCRIPTIONS_FILE).unlink()
    bad = broken / "test" / "green_leaf" / "test_0.png"
    bad.write_bytes(b"not a png")
    assert f"{bad} is not a readable image" in _one_line_error(run + [f"b={broken}"], capsys)
    assert "is not a folder" in _one_line_error(run + [f"m={tmp_path / 'missing'}"], capsys)
    assert "lower-case" in _one_line_error(run + [f"Bad Name={colours}"], capsys)
    assert not (tmp_path / "f").exists()  # refused before any notebook ran


def test_data_overrides_replace_the_datasets(colours):
    overrides = data_overrides([f"birds={colours}", f"cars={colours}"])
    assert overrides == {"user_data": (f"birds={colours}", f"cars={colours}"), "datasets": ("user-birds", "user-cars")}
    with pytest.raises(ValueError, match="repeat"):
        data_overrides([f"birds={colours}", f"birds={colours}"])


def test_one_rule_for_r_and_k_from_the_number_of_classes():
    cpu, paper, smoke = get_profile("cpu"), get_profile("paper"), get_profile("smoke")
    ten = for_dataset(cpu, 10)  # the cpu profile asks for 4,000 tasks of 8-32 classes
    assert (ten.hidden, ten.zoo_k, ten.zoo_tasks, ten.heldout_split_classes) == (2, (2, 9), 1012, 2)  # all there are
    many = for_dataset(cpu, 300)
    assert (many.hidden, many.zoo_k, many.zoo_tasks, many.fusion_k) == (16, (8, 32), 4000, 8)
    assert for_dataset(cpu, 40).zoo_k == (8, 32) and for_dataset(cpu, 20).zoo_k == (4, 19)
    for c in (100, 200, 256):
        assert (for_dataset(paper, c).hidden, for_dataset(paper, c).zoo_k) == (16, (8, 32))
    six = for_dataset(smoke, 6)
    assert (six.zoo_k, six.zoo_tasks, six.heldout_split_classes, six.fusion_k) == ((2, 5), 56, 0, 2)
    assert for_dataset(get_profile("cpu", hidden=5), 10).hidden == 5  # an explicit r is kept
    assert for_dataset(ten, 10) == ten  # idempotent
    with pytest.raises(ValueError, match="at least 3 classes"):
        for_dataset(cpu, 2)


CIFAR_CONTEXT = ["bowl", "cup", "plate", "shark", "ray", "trout", "whale", "house", "castle", "aquarium fish"]


def test_wordnet_senses_use_the_other_classes_and_are_shown():
    assert wordnet.available(), "Debian's wordnet-base should be installed by scripts/setup.sh"
    chosen = dict(zip(CIFAR_CONTEXT, wordnet.choose_senses(CIFAR_CONTEXT)))
    assert "baseball" not in chosen["plate"].synset.gloss  # the first sense, a subject-field sense, is dropped
    assert "cartilaginous fishes" in chosen["ray"].synset.gloss  # not a spine of a fin: the animal beside the shark
    assert "fin of a fish" in wordnet.synset(wordnet._noun_index(wordnet.DEFAULT_DIR)["ray"][5]).gloss
    assert chosen["aquarium fish"].lemma == "fish" and "head noun" in chosen["aquarium fish"].reason
    socks, mice = wordnet.choose_senses(["socks", "mice"])  # plurals by WordNet's rules and exceptions
    assert (socks.lemma, mice.lemma) == ("sock", "mouse") and "base form of 'socks'" in socks.reason
    texts = task_condition.class_descriptions(CIFAR_CONTEXT)
    assert all(source for _, source in texts) and texts[4][1].startswith("WordNet 'ray' sense 7 of 7 (animal)")
