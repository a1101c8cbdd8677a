"""Hostile names and files (docs/ARCHITECTURE.md §6): names that clean to nothing, carry a comment, look
like another name or mean nothing to the text encoder; one image twice in a class; names that are not
UTF-8. Each is refused in one line naming what and where, never trained on as a plausible class."""

from __future__ import annotations

import os

import pytest
import torch

from t2wlib.data import datasets
from t2wlib.data.class_names import check_classes, read_classes_file
from t2wlib.data.datasets import check_available, load_split
from t2wlib.data.image_split import DatasetNotFoundError
from t2wlib.data.task_condition import IndistinctClassesError, check_distinct
from t2wlib.data.user_folders import register_user_dataset


def test_a_class_folder_whose_name_cleans_to_nothing_is_refused(tmp_path, colour_folder):
    root = colour_folder(tmp_path / "blank", train=3, test=2, split=False)
    (root / "red_apple").rename(root / "___")
    with pytest.raises(DatasetNotFoundError, match=r"class folder .*___ has no name once cleaned"):
        load_split(register_user_dataset(f"blank={root}"), "train")


def test_a_comment_after_a_name_in_a_classes_file_is_not_part_of_it(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# my classes\nsneaker  # the running kind\nsandal\t# open\nC#\n")
    assert read_classes_file(path) == (["sneaker", "sandal", "C#"], None)
    path.write_text("sneaker: a running shoe # with laces\nsandal: an open shoe\n")
    assert read_classes_file(path) == (["sneaker", "sandal"], ["a running shoe", "an open shoe"])


def test_a_name_that_mixes_look_alike_scripts_is_refused_wherever_it_comes_from(tmp_path, colour_folder):
    with pytest.raises(ValueError, match=r"'\u0430pple' mixes CYRILLIC and LATIN letters .*CYRILLIC SMALL LETTER A"):
        check_classes(["apple", "\u0430pple"])  # prints as "apple, apple"
    assert check_classes(["Москва", "Αθήνα", "apple"]) == ["Москва", "Αθήνα", "apple"]  # one script a word: fine
    root = colour_folder(tmp_path / "cyrillic", train=3, test=2, split=False)
    (root / "red_apple").rename(root / "red_\u0430pple")
    with pytest.raises(DatasetNotFoundError, match=r"class folder .*red_\u0430pple: .* mixes CYRILLIC and LATIN"):
        load_split(register_user_dataset(f"cyrillic={root}"), "train")


def test_names_the_text_encoder_reads_alike_are_refused_naming_both():
    from t2wlib.data.task_condition import prompts
    from t2wlib.encoders.text import load_text_encoder

    encoder = load_text_encoder("minilm")
    emoji = ["\U0001F45F", "\U0001FA74", "\U0001F45C"]  # 👟 🩴 👜: each read as MiniLM's unknown token
    with pytest.raises(IndistinctClassesError, match=r"classes '\U0001F45F' and '\U0001FA74' have the same text embedding"):
        check_distinct(emoji, encoder.encode(prompts(emoji)))
    words = ["house building", "house buildings", "t-shirt", "shirt", "cat", "cats"]  # close, but told apart
    check_distinct(words, encoder.encode(prompts(words)))
    with pytest.raises(IndistinctClassesError, match="'a' and 'b'"):
        check_distinct(["a", "b", "c"], torch.tensor([[1.0, 0.0], [1.0, 0.001], [0.0, 1.0]]))


def test_one_image_twice_in_a_class_is_refused(tmp_path, colour_folder):
    root = colour_folder(tmp_path / "dup", train=3, test=2)
    first = sorted((root / "train" / "blue_cup").iterdir())[0]
    os.link(first, root / "train" / "blue_cup" / "hard_link.png")  # the same file under two names
    with pytest.raises(DatasetNotFoundError, match=r"train images .*hard_link\.png.* same bytes \(a copy or a hard link\)"):
        check_available([register_user_dataset(f"dup={root}")])
    (root / "train" / "blue_cup" / "hard_link.png").unlink()
    (root / "train" / "green_leaf" / "copy.png").write_bytes(first.read_bytes())  # a copy, in another class
    with pytest.raises(DatasetNotFoundError, match=r"train images .*copy\.png have the same bytes"):
        check_available([register_user_dataset(f"dup2={root}")])


def test_file_and_folder_names_that_are_not_utf8_are_refused_naming_their_bytes(tmp_path, colour_folder):
    root = colour_folder(tmp_path / "bytes", train=3, test=2, split=False)
    image = sorted((root / "red_apple").iterdir())[0]
    os.rename(image, os.fsencode(root / "red_apple") + b"/caf\xe9.png")  # Latin-1 "café.png"
    with pytest.raises(DatasetNotFoundError, match=r"the name b'caf\\xe9.png' of .*red_apple' is not UTF-8 text"):
        load_split(register_user_dataset(f"bytes={root}"), "train")
    os.rename(os.fsencode(root / "red_apple") + b"/caf\xe9.png", image)
    os.rename(root / "blue_cup", os.fsencode(root) + b"/tasse_bleue_\xe9")
    with pytest.raises(DatasetNotFoundError, match=r"the name b'tasse_bleue_\\xe9' of .*bytes' is not UTF-8 text"):
        load_split(register_user_dataset(f"bytes2={root}"), "train")


def test_the_built_in_datasets_pass_the_distinct_names_rule():
    """Every embedded dataset's classes are told apart by the text encoder (the rule refuses no real set)."""
    from t2wlib.data.task_condition import prompts
    from t2wlib.encoders.text import load_text_encoder

    encoder = load_text_encoder("minilm")
    for name in ("fashion-mnist", "emoji-tiny", "digits"):
        if name in datasets.DATASETS.names():
            names = load_split(name, "train").class_names
            check_distinct(names, encoder.encode(prompts(names)))


def test_data_whose_features_separate_nothing_stops_in_one_line_with_the_probe_accuracy():
    """Random features (noise images, one colour everywhere) give a probe near the majority class: one
    line naming the dataset and the measured accuracy, before any zoo (01_zoo checks right after the probe)."""
    import nbformat

    from t2wlib.data.features import FeatureSet
    from t2wlib.experiments import regime
    from t2wlib.pipeline.runner import REPO, USER_ERRORS

    g = torch.Generator().manual_seed(0)
    names = [f"class {i}" for i in range(5)]

    def noise(n):
        y = torch.arange(5).repeat_interleave(n)
        return FeatureSet("user-noise", "train", names, torch.randn(len(y), 32, generator=g), y, torch.arange(len(y)))

    probe = regime.linear_probe(noise(20), noise(10))
    with pytest.raises(regime.InseparableDataError, match=r"^dataset user-noise: a linear probe on its backbone features "
                       r"scores \d+\.\d % on its test images \(majority class 20\.0 %"):
        regime.check_separable(probe)
    assert "InseparableDataError" in USER_ERRORS  # the runner reports it as one line, not a failed cell
    code = [c.source for c in nbformat.read(REPO / "notebooks" / "01_zoo.ipynb", as_version=4).cells
            if c.cell_type == "code"]
    check = next(i for i, c in enumerate(code) if "regime.check_separable" in c)
    assert check < next(i for i, c in enumerate(code) if "build_zoo" in c or "zoos[" in c)
