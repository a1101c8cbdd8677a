"""Hostile inputs (docs/ARCHITECTURE.md §6): own-data folders with links, names that are one class,
image modes, out-of-range overrides, full disks and kills, and user errors inside the pipeline. Each
gives the right result or one clear line, never a plausible wrong one."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import COLOURS
from PIL import Image
from safetensors import SafetensorError

from t2wlib.core import files
from t2wlib.data import datasets, images
from t2wlib.data.datasets import check_available, dataset_identity, load_split
from t2wlib.data.image_split import DatasetNotFoundError
from t2wlib.data.user_folders import register_user_dataset
from t2wlib.pipeline import cli, runner
from t2wlib.pipeline.overrides import typed_overrides
from t2wlib.pipeline.profiles import get_profile

# --- 1. links inside an own-data folder --------------------------------------------------------


def test_links_to_folders_inside_a_class_are_not_followed(tmp_path, colour_folder):
    root = colour_folder(tmp_path / "links", train=3, test=2, split=False)
    (root / "red_apple" / "self").symlink_to(".")
    (root / "red_apple" / "loop").symlink_to("..")
    with pytest.warns(UserWarning, match=r"2 link\(s\) to folders not followed"):
        train, test = (load_split(register_user_dataset(f"links={root}"), s) for s in datasets.SPLITS)
    assert len(train) + len(test) == 5 * len(COLOURS)  # no image counted twice, none taken from other classes
    assert not set(train.paths) & set(test.paths)


def test_one_file_reached_twice_is_refused(tmp_path, colour_folder):
    root = colour_folder(tmp_path / "twice", train=3, test=2, split=False)
    first = sorted((root / "red_apple").iterdir())[0]
    (root / "red_apple" / "again.png").symlink_to(first)
    with pytest.raises(DatasetNotFoundError, match=r"test_0\.png and .*again\.png are the same file"):
        load_split(register_user_dataset(f"twice={root}"), "train")


def test_a_test_image_with_a_training_images_bytes_is_refused(tmp_path, colour_folder):
    root = colour_folder(tmp_path / "leak", train=3, test=2)
    leaked = sorted((root / "train" / "blue_cup").iterdir())[0]
    (root / "test" / "blue_cup" / "copy.png").write_bytes(leaked.read_bytes())
    name = register_user_dataset(f"leak={root}")
    with pytest.raises(DatasetNotFoundError, match=r"test image .*copy\.png has the same bytes as training image"):
        dataset_identity(name)
    with pytest.raises(DatasetNotFoundError, match="same bytes"):
        check_available([name])


# --- 2. names that are one class ---------------------------------------------------------------

@pytest.mark.parametrize("a, b", [("Maple_tree", "maple tree"), ("Maple", "maple"), ("caf\u00e9", "cafe\u0301")])
def test_class_folders_that_name_one_class_are_refused(tmp_path, colour_folder, a, b):
    root = colour_folder(tmp_path / "same", train=3, test=2, split=False)
    os.rename(root / "red_apple", root / a)
    os.rename(root / "green_leaf", root / b)
    with pytest.raises(DatasetNotFoundError, match="name one class"):
        load_split(register_user_dataset(f"same-{len(a)}={root}"), "train")


def test_hidden_folders_are_no_class_and_names_are_clean(tmp_path, colour_folder):
    root = colour_folder(tmp_path / "hidden", train=3, test=2)
    for split in ("train", "test"):
        (root / split / ".ipynb_checkpoints").mkdir()
        Image.new("RGB", (8, 8)).save(root / split / ".ipynb_checkpoints" / "x.png")
    os.rename(root / "train" / "blue_cup", root / "train" / "blue\u200b_cup")
    os.rename(root / "test" / "blue_cup", root / "test" / "blue\u200b_cup")
    (root / datasets.USER_PREFIX).mkdir(exist_ok=True)  # unrelated folder names do not matter
    descriptions = (root / "descriptions.txt").read_text()
    (root / "descriptions.txt").write_text("\ufeff" + descriptions)  # a byte-order mark, as Windows editors write
    train = load_split(register_user_dataset(f"hidden={root}"), "train")
    assert ".ipynb checkpoints" not in train.class_names and "blue cup" in train.class_names
    assert train.descriptions is not None and len(train.descriptions) == len(COLOURS)


def test_control_characters_in_a_folder_name_are_refused(tmp_path, colour_folder):
    root = colour_folder(tmp_path / "ctl", train=3, test=2, split=False)
    os.rename(root / "red_apple", root / "red\tapple")
    with pytest.raises(DatasetNotFoundError, match="class folder .*ctl/red\tapple: .*control character U\\+0009"):
        load_split(register_user_dataset(f"ctl={root}"), "train")


# --- 3. image modes ------------------------------------------------------------------------------

def _png(im: Image.Image, path: Path, **kw) -> Path:
    im.save(path, **kw)
    return path


def _expected_grey(value: int) -> np.ndarray:
    return np.full((6, 4, 3), value, dtype=np.uint8)


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    grey16 = Image.fromarray(np.full((6, 4), 124 * 257, dtype=np.uint16))
    assert grey16.mode.startswith("I;16")
    out = np.asarray(images.open_rgb(_png(grey16, tmp_path / "g16.png")))
    np.testing.assert_array_equal(out, _expected_grey(124))


def test_transparency_is_composited_on_white(tmp_path):
    rgba = np.zeros((6, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red where opaque
    rgba[:3, :, 3] = 255  # top half opaque, bottom half fully transparent (black under it)
    out = np.asarray(images.open_rgb(_png(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png")))
    assert (out[:3] == (200, 0, 0)).all() and (out[3:] == 255).all()
    pal = Image.new("P", (4, 6), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.paste(0, (0, 0, 4, 3))
    out = np.asarray(images.open_rgb(_png(pal, tmp_path / "p.png", transparency=0)))
    assert (out[:3] == 255).all() and (out[3:] == (10, 20, 30)).all()
    la = Image.fromarray(np.stack([np.full((6, 4), 50, np.uint8), np.full((6, 4), 255, np.uint8)], -1), "LA")
    np.testing.assert_array_equal(np.asarray(images.open_rgb(_png(la, tmp_path / "la.png"))), _expected_grey(50))


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((6, 4, 3), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0)  # the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rot.png"
    Image.fromarray(pixels).save(path, exif=exif)
    out = np.asarray(images.open_rgb(path))
    assert out.shape == (4, 6, 3)  # displayed sideways
    assert tuple(out[0, -1]) == (255, 0, 0)  # the stored top-left shows top-right


def test_other_modes_come_out_as_their_rgb_picture(tmp_path):
    bits = Image.fromarray(np.array([[True, False]] * 3))
    np.testing.assert_array_equal(np.asarray(images.open_rgb(_png(bits, tmp_path / "b.png")))[:, :, 0],
                                  [[255, 0]] * 3)
    cmyk = Image.new("CMYK", (4, 6), (0, 255, 255, 0))  # pure red in print colours
    out = np.asarray(images.open_rgb(_png(cmyk, tmp_path / "c.jpg", quality=100)))
    assert (np.abs(out.astype(int) - (255, 0, 0)) <= 3).all()
    floats = Image.fromarray(np.full((6, 4), 0.5, dtype=np.float32), "F")
    np.testing.assert_array_equal(np.asarray(images.open_rgb(_png(floats, tmp_path / "f.tiff"))), _expected_grey(128))


def test_a_decompression_bomb_is_one_clear_error(tmp_path, monkeypatch):
    path = _png(Image.new("1", (200, 200)), tmp_path / "bomb.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 100 * 100)
    with pytest.raises(images.ImageReadError, match=r"bomb\.png is too large to decode safely .* at most 10,000 pixels"):
        images.open_rgb(path)


def test_a_fifo_named_like_an_image_does_not_hang(tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    code = ("import sys; from t2wlib.data.images import open_rgb\n"
            f"try:\n open_rgb({str(fifo)!r})\nexcept ValueError as e:\n print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "is not a regular file" in out


# --- 4. overrides ------------------------------------------------------------------------------

BAD_OVERRIDES = [
    ("gen_steps=-5", "gen_steps = -5 is out of range; allowed: an integer >= 1"),
    ("gen_steps=0", "gen_steps = 0 is out of range"),
    ("zoo_k=32,8", r"zoo_k = \(32, 8\) is out of range; allowed: two integers k_min,k_max with 2 <= k_min <= k_max"),
    ("zoo_k=2,3,4", "zoo_k is tuple.int, int.: 2 values"),
    ("zoo_k=-3,4", r"zoo_k = \(-3, 4\) is out of range"),
    ("zoo_k=5", "zoo_k is tuple.int, int.: 2 values"),
    ("zoo_lr=NaN", "zoo_lr = nan is out of range; allowed: a finite number > 0"),
    ("zoo_lr=Infinity", "zoo_lr = inf is out of range"),
    ("zoo_tasks=-5", "zoo_tasks = -5 is out of range"),
    ("hidden=10**12", "profile field hidden is int . None; '10..12' is not one"),
    ("hidden=1000000000000", "hidden = 1000000000000 is out of range; allowed: an integer from 1 to 4096"),
    ("seeds=[]", r"seeds = \(\) is out of range; allowed: 1 or more seeds"),
    ("datasets=[]", r"datasets = \(\) is out of range"),
    ("image_size=0", "image_size = 0 is out of range; allowed: an integer from 16 to 1024"),
    ("text_dropout=1", "text_dropout = 1.0 is out of range"),
    ("dit=huge", "dit = 'huge' is out of range; allowed: one of cpu-small, cpu-base, tiny, paper, mlp-film"),
    ("enhancement_t=5000", r"enhancement_t = \(5000,\) is out of range; allowed: diffusion steps from 1 to"),
    ("seeds=()", r"seeds = \(\) is out of range; allowed: 1 or more seeds"),
    ("convergence_steps=(1,x)", r"convergence_steps is tuple\[int, ...\] \(write a tuple as 2,5 or \[2,5\]\); 'x' is not one"),
    ("device=cuda", "device = 'cuda': this machine has no CUDA device; allowed here: auto or cpu"),
]


@pytest.mark.parametrize("override, message", BAD_OVERRIDES, ids=[o for o, _ in BAD_OVERRIDES])
def test_an_out_of_range_override_is_one_line_before_any_work(tmp_path, capsys, override, message):
    code = cli.main(["run", "--profile", "smoke", "--set", override, "--run-dir", str(tmp_path / "run"),
                     "--artifacts", str(tmp_path / "a"), "--figures", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("t2w: error: ")
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "run").exists() and not (tmp_path / "a").exists()


def test_every_profile_field_has_a_rule_and_the_profiles_pass_them():
    import dataclasses

    from t2wlib.pipeline.profile_checks import RULES
    from t2wlib.pipeline.profiles import PROFILES, Profile

    assert {f.name for f in dataclasses.fields(Profile)} == set(RULES)
    for name in PROFILES:
        get_profile(name)
    assert get_profile("cpu", **typed_overrides(["zoo_k=2,9", "sym_batch=None"])).zoo_k == (2, 9)


# --- 5. half-written files ---------------------------------------------------------------------

def test_a_write_error_from_safetensors_names_the_path_and_leaves_nothing(tmp_path):
    def full_disk(tmp):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    target = tmp_path / "weights.safetensors"
    with pytest.raises(files.WriteError, match=r"cannot write .*weights\.safetensors: .*No space left"):
        files.atomic_write(target, full_disk)
    assert list(tmp_path.iterdir()) == []


def test_temp_files_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".head.safetensors.{pid}.x1y2.tmp"
    stale.write_bytes(b"half")
    live = tmp_path / f".head.safetensors.{os.getpid()}.z3.tmp"  # this process is alive: never touched
    live.write_bytes(b"mine")
    files.atomic_write_text(tmp_path / "head.safetensors", "done")
    assert not stale.exists() and live.exists() and (tmp_path / "head.safetensors").read_text() == "done"


def _notebook(path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("PROFILE = ARTIFACTS = FIGURES = DATA_ROOT = NOTEBOOK = ''\nOVERRIDES = {}",
                                          metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)
    return path


def test_an_executed_notebook_is_never_left_truncated_under_its_name(tmp_path, monkeypatch):
    nb = _notebook(tmp_path / "01_a.ipynb", "x = 1")

    def full_disk(source, output, **kw):
        Path(output).write_text('{"cells": [')  # papermill got this far
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner.papermill, "execute_notebook", full_disk)
    out = tmp_path / "run" / "01_a.ipynb"
    out.parent.mkdir()
    with pytest.raises(files.WriteError, match=r"cannot write the executed notebook .*01_a\.ipynb: No space left"):
        runner._execute(nb, out, {"PROFILE": "smoke"}, False, None)
    assert list(out.parent.iterdir()) == []


# --- 6. user errors inside the pipeline --------------------------------------------------------

def test_a_user_error_inside_a_notebook_is_one_line(tmp_path, capsys, monkeypatch):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "01_a.ipynb", "from t2wlib.data.datasets import DatasetNotFoundError\n"
                                  "raise DatasetNotFoundError('no images in /x/y (image files end in .png)')")
    with pytest.raises(runner.PipelineInputError, match=r"^no images in /x/y .* \(01_a\.ipynb, cell \d+\)$"):
        runner.run_pipeline("smoke", notebooks_dir=nbs, run_dir=tmp_path / "run", artifacts=tmp_path / "a",
                            figures=tmp_path / "f", log_output=False)
    assert (tmp_path / "run" / "01_a.ipynb").exists()  # the executed copy, with its traceback, under its name


@pytest.mark.parametrize("train, test, classes, message", [
    (12, 1, 6, r"6 class\(es\) too small: 'black cat' 1 test, 'blue cup' 1 test, .*'yellow lemon' 1 test; every "
               r"class needs at least 8 train and 2 test images"),
    (1, 6, 6, r"'black cat' 1 train, .*'yellow lemon' 1 train;"),
    (8, 2, 3, r"its 3 classes give 3 distinct tasks \(2 seen\), but profile smoke trains its generator on batches"),
])
def test_a_dataset_the_profile_cannot_use_is_refused_before_any_kernel(tmp_path, capsys, colour_folder, train, test,
                                                                      classes, message):
    root = colour_folder(tmp_path / "small", train=train, test=test)
    for name in list(COLOURS)[classes:]:
        for split in ("train", "test"):
            for f in (root / split / name).iterdir():
                f.unlink()
            (root / split / name).rmdir()
    (root / "descriptions.txt").unlink()
    code = cli.main(["run", "--profile", "smoke", "--data", f"small{train}{test}{classes}={root}", "--run-dir",
                     str(tmp_path / "run"), "--artifacts", str(tmp_path / "a"), "--figures", str(tmp_path / "f")])
    err = capsys.readouterr().err
    import re

    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "run").exists()


def test_short_classes_are_named_each_with_its_own_count_after_the_split(tmp_path, capsys, colour_folder):
    """One folder per class, split 80/20 by t2w: the refusal names every short class with its own counts
    and says they are after the split."""
    root = colour_folder(tmp_path / "flat", train=12, test=6, split=False)  # 18 images a class
    for name, keep in (("red_apple", 9), ("blue_cup", 5)):
        for f in sorted((root / name).iterdir())[keep:]:
            f.unlink()
    code = cli.main(["run", "--profile", "smoke", "--data", f"shortflat={root}", "--run-dir", str(tmp_path / "run"),
                     "--artifacts", str(tmp_path / "a"), "--figures", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert ("2 class(es) too small (after the 80/20 split of each class folder): 'blue cup' 4 train and 1 test, "
            "'red apple' 7 train; every class needs") in err


def test_artifacts_pointing_at_a_file_is_refused_before_any_kernel(tmp_path, capsys):
    (tmp_path / "a").write_text("not a folder")
    code = cli.main(["run", "--profile", "smoke", "--run-dir", str(tmp_path / "run"), "--artifacts",
                     str(tmp_path / "a"), "--figures", str(tmp_path / "f")])
    assert code == 2 and "--artifacts" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_the_image_reader_reads_what_pillow_writes_for_every_mode(tmp_path):
    """A sweep: every mode Pillow saves as PNG opens as an RGB picture of the same size."""
    for mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        buf = io.BytesIO()
        Image.new(mode, (5, 3)).save(buf, format="PNG")
        path = tmp_path / f"{mode.replace(';', '_')}.png"
        path.write_bytes(buf.getvalue())
        im = images.open_rgb(path)
        assert im.mode == "RGB" and im.size == (5, 3), mode
    assert json.dumps(images.IMAGE_SIZES)


def test_images_in_hidden_folders_inside_a_class_are_not_read(tmp_path, colour_folder):
    root = colour_folder(tmp_path / "nested", train=3, test=2)
    hidden = root / "train" / "red_apple" / ".thumbnails"
    hidden.mkdir()
    Image.new("RGB", (8, 8)).save(hidden / "thumb.png")
    train = load_split(register_user_dataset(f"nested={root}"), "train")
    assert len(train) == 3 * len(COLOURS) and not any(".thumbnails" in p for p in train.paths)
