"""The probe as tests: every bad input a user can give the command line ends in one clear line
(`t2w: error: ...`, exit 2) or the documented behaviour, never a traceback; tampered or truncated
files are refused naming the file."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from t2wlib.classifier import Classifier
from t2wlib.core.files import CorruptArtifactError, write_json_checked
from t2wlib.core.sealed import load_sealed, save_sealed
from t2wlib.data.features import FeatureSet
from t2wlib.encoders.text import load_text_encoder
from t2wlib.generator.from_zoo import train_generator
from t2wlib.pipeline import cli
from t2wlib.pipeline.config import generator_config
from t2wlib.pipeline.profiles import get_profile
from t2wlib.zoo.model_zoo import build_zoo, load_zoo

sys.path.insert(0, str(Path(__file__).parent))
import zoo_job  # noqa: E402

CLASSES = ["sneaker", "sandal", "bag", "coat", "shirt", "dress"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A generator for the real stack (MiniLM texts, EfficientNet-Lite0's 1,280 features; the
    features themselves synthetic), a classifier it generated, and good and bad image files."""
    root = tmp_path_factory.mktemp("cli")
    encoder = load_text_encoder("minilm")
    emb = encoder.encode([f"A photo of {c}" for c in CLASSES])
    g = torch.Generator().manual_seed(0)
    means = 2 * torch.randn(len(CLASSES), 1280, generator=g)

    def split(n):
        y = torch.arange(len(CLASSES)).repeat_interleave(n)
        return FeatureSet("synthetic", "train", CLASSES, means[y] + torch.randn(len(y), 1280, generator=g), y,
                          torch.arange(len(y)))

    build_zoo(root / "zoo", zoo_job.config(hidden=2), split(20), split(5), {"prompt": emb, "description": emb.clone()},
              {"dataset": "synthetic", "backbone": "efficientnet-lite0", "text_encoder": "minilm"}, progress=False)
    profile = get_profile("smoke", block_size=128, gen_epochs=1, gen_batch_size=8, dit="tiny")
    zoo = load_zoo(root / "zoo")
    train_generator(root / "gen", zoo, generator_config(profile, zoo, "prompt", 0), progress=False)
    assert cli.main(["generate", "--generator", str(root / "gen"), "--classes", "sneaker,sandal,bag",
                     "--out", str(root / "clf.safetensors")]) == 0
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / f"good{i}.png")
    png = (root / "good0.png").read_bytes()
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    corrupt = bytearray(png)
    corrupt[20:40] = bytes(20)
    (root / "corrupt.png").write_bytes(bytes(corrupt))
    (root / "text.png").write_text("not an image\n")
    (root / "empty.png").write_bytes(b"")
    (root / "a_folder").mkdir()
    return root


def _copy(world: Path, tmp_path: Path, name: str) -> Path:
    src = world / name
    dst = tmp_path / name
    (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return dst


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path, at: int = -7) -> None:
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x40
    path.write_bytes(bytes(raw))


def _generate(gen: Path, out: Path, *extra: str) -> list[str]:
    return ["generate", "--generator", str(gen), "--out", str(out), *extra]


def _gen_with(world, tmp_path, edit):
    gen = _copy(world, tmp_path, "gen")
    edit(gen)
    return _generate(gen, tmp_path / "o.safetensors", "--classes", "bag,coat")


def _gen_json(gen: Path, drop: tuple[str, ...] = (), **fields) -> None:
    """Rewrite generator.json with `fields` changed and `drop` removed, checksum re-signed."""
    record = json.loads((gen / "generator.json").read_text())
    record.pop("checksum")
    write_json_checked(gen / "generator.json", {k: v for k, v in {**record, **fields}.items() if k not in drop})


def _classes_file(tmp_path, text: bytes | str):
    path = tmp_path / "classes.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _clf_with(world, tmp_path, edit):
    clf = _copy(world, tmp_path, "clf.safetensors")
    edit(clf)
    return ["predict", "--classifier", str(clf), str(world / "good0.png")]


def _resealed(clf: Path, tensors=None, **meta) -> None:
    t, m = load_sealed(clf, "classifier")
    save_sealed(clf, {**t, **(tensors or {})}, {k: v for k, v in {**m, **meta}.items() if v is not None})


# (case id, argv builder (world, tmp_path) -> argv, message regex on stderr)
ERROR_CASES = [
    # a Python traceback before
    ("truncated-ema", lambda w, t: _gen_with(w, t, lambda g: _truncate(g / "ema.safetensors")),
     r"generator weights .*ema\.safetensors is truncated"),
    ("truncated-tokenizer", lambda w, t: _gen_with(w, t, lambda g: _truncate(g / "tokenizer.safetensors")),
     r"generator tokenizer .*tokenizer\.safetensors is truncated"),
    ("truncated-classifier", lambda w, t: _clf_with(w, t, _truncate), r"classifier file .*clf\.safetensors is truncated"),
    ("out-parent-is-a-file", lambda w, t: _generate(w / "gen", w / "good0.png" / "x.safetensors", "--classes", "a,b"),
     r"--out .*good0\.png is a file, not a directory"),
    ("out-is-a-directory", lambda w, t: _generate(w / "gen", t, "--classes", "a,b"), r"--out .* is a directory; give a file"),
    ("classes-file-is-a-directory", lambda w, t: _generate(w / "gen", t / "o", "--classes-file", str(t)),
     r"classes file .* is a directory"),
    # wrong results with exit 0 before
    ("bit-flipped-ema", lambda w, t: _gen_with(w, t, lambda g: _flip(g / "ema.safetensors")),
     r"ema\.safetensors fails its checksum: it was corrupted or edited"),
    ("bit-flipped-classifier", lambda w, t: _clf_with(w, t, _flip), r"clf\.safetensors fails its checksum"),
    ("class-emb-rows-short", lambda w, t: _clf_with(w, t, lambda c: _resealed(
        c, {"class_emb": load_sealed(c, "c")[0]["class_emb"][:2]})), r"class_emb has shape \(2, 384\) for 3 class names"),
    ("guidance-nan", lambda w, t: _generate(w / "gen", t / "o", "--classes", "a,b", "--guidance", "nan"),
     r"--guidance nan is not a finite number"),
    ("guidance-inf", lambda w, t: _generate(w / "gen", t / "o", "--classes", "a,b", "--guidance", "inf"),
     r"--guidance inf is not a finite number"),
    ("guidance-untrained", lambda w, t: _generate(w / "gen", t / "o", "--classes", "a,b", "--guidance", "2"),
     r"guidance scale 2.0 needs a generator trained with text dropout"),
    ("mixed-descriptions", lambda w, t: _generate(w / "gen", t / "o", "--classes-file", str(
        _classes_file(t, "bag: a thing to carry\ncoat\n"))), r"mixes 'name: description' lines with bare names"),
    ("unicode-duplicates", lambda w, t: _generate(w / "gen", t / "o", "--classes", "Straße,STRASSE"),
     r"duplicate class 'STRASSE' \(also given as 'Straße'\)"),
    ("unknown-backbone", lambda w, t: _gen_with(w, t, lambda g: _gen_json(g, backbone="vgg16")),
     r"generator\.json: unknown backbone 'vgg16'; allowed: efficientnet-lite0, resnet18"),
    # unclear messages before
    ("generator-json-not-json", lambda w, t: _gen_with(w, t, lambda g: (g / "generator.json").write_text("{oops")),
     r"generator definition .*generator\.json is not readable JSON"),
    ("generator-json-missing-field", lambda w, t: _gen_with(w, t, lambda g: _gen_json(g, drop=("text_dim",))),
     r"generator\.json: missing fields \['text_dim'\]"),
    ("classifier-missing-field", lambda w, t: _clf_with(w, t, lambda c: _resealed(c, class_names=None)),
     r"classifier file .* lacks the field 'class_names'; write it again"),
    ("classes-file-not-utf8", lambda w, t: _generate(w / "gen", t / "o", "--classes-file", str(
        _classes_file(t, b"bag\n\xff\xfecoat\n"))), r"classes file .*classes\.txt is not UTF-8 text"),
    ("out-in-proc", lambda w, t: _generate(w / "gen", Path("/proc/t2w-head.safetensors"), "--classes", "bag,coat"),
     r"cannot write /proc/t2w-head\.safetensors"),
    ("generator-folder-missing", lambda w, t: _generate(t / "nowhere", t / "o", "--classes", "a,b"),
     r"not a T2W generator folder"),
    # hostile inputs (issue 25): names that are one class, control characters, re-sealed classifiers
    ("bom-duplicate", lambda w, t: _generate(w / "gen", t / "o", "--classes", "\ufeffsneaker,sneaker,bag"),
     r"duplicate class 'sneaker'"),
    ("zero-width-duplicate", lambda w, t: _generate(w / "gen", t / "o", "--classes", "sneak\u200ber,sneaker,bag"),
     r"duplicate class 'sneaker'"),
    ("underscore-duplicate", lambda w, t: _generate(w / "gen", t / "o", "--classes", "maple_tree,Maple Tree,oak"),
     r"duplicate class 'Maple Tree' \(also given as 'maple_tree'\)"),
    ("classes-file-bom-duplicate", lambda w, t: _generate(w / "gen", t / "o", "--classes-file", str(
        _classes_file(t, "\ufeffsneaker\nsneaker\nbag\n"))), r"duplicate class 'sneaker'"),
    # silent wrong results before: a classifier that scores every image 1/3, a class that prints like another
    ("emoji-names", lambda w, t: _generate(w / "gen", t / "o", "--classes", "\U0001F45F,\U0001FA74,\U0001F45C"),
     r"classes '\U0001F45F' and '\U0001FA74' have the same text embedding"),
    ("look-alike-name", lambda w, t: _generate(w / "gen", t / "o", "--classes", "apple,\u0430pple,pear"),
     r"mixes CYRILLIC and LATIN letters in one word"),
    ("tab-in-name", lambda w, t: _generate(w / "gen", t / "o", "--classes", "snea\tker,bag,coat"),
     r"class name 'snea\\tker' holds the control character U\+0009"),
    ("escape-in-classes-file", lambda w, t: _generate(w / "gen", t / "o", "--classes-file", str(
        _classes_file(t, "bag\n\x1b[31mcoat\nsneaker\n"))), r"holds the control character U\+001B"),
    ("classifier-other-backbone", lambda w, t: _clf_with(w, t, lambda c: _resealed(c, backbone="resnet18")),
     r"backbone resnet18 gives 512 features but the head takes 1280"),
    ("classifier-image-size-1", lambda w, t: _clf_with(w, t, lambda c: _resealed(c, image_size="1")),
     r"image size 1 is out of range; allowed: 16 to 1024 pixels"),
    ("classifier-control-name", lambda w, t: _clf_with(w, t, lambda c: _resealed(c, class_names='["a\\nb", "c", "d"]')),
     r"holds the control character U\+000A"),
]


@pytest.mark.parametrize("case, argv, message", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_input_gives_one_clear_line(world, tmp_path, capsys, case, argv, message):
    args = argv(world, tmp_path)  # may write the bad input itself into tmp_path
    before = set(tmp_path.rglob("*"))  # rglob's "*" matches hidden names: temp files are seen too
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("t2w: error: "), err
    assert __import__("re").search(message, lines[0]), lines[0]
    assert set(tmp_path.rglob("*")) == before, "nothing is written after an error, not even a temp file"


@pytest.mark.parametrize("reason, code", [("full", errno.ENOSPC), ("read-only", errno.EROFS)])
def test_a_full_or_read_only_disk_is_one_line(world, tmp_path, capsys, monkeypatch, reason, code):
    import safetensors.torch

    def refuse(*args, **kwargs):
        raise OSError(code, __import__("os").strerror(code))

    monkeypatch.setattr(safetensors.torch, "save_file", refuse)
    monkeypatch.setattr("t2wlib.core.sealed.save_file", refuse)
    assert cli.main(_generate(world / "gen", tmp_path / "o.safetensors", "--classes", "bag,coat")) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"t2w: error: cannot write {tmp_path / 'o.safetensors'}: {__import__('os').strerror(code)}"
    assert not list(tmp_path.iterdir())  # no temp file left behind


def test_predict_reports_each_unreadable_image_and_scores_the_rest(world, capsys):
    bad = ["text.png", "empty.png", "truncated.png", "corrupt.png", "a_folder", "missing.png"]
    paths = [str(world / n) for n in ["good0.png", *bad, "good1.png"]]
    assert cli.main(["predict", "--classifier", str(world / "clf.safetensors"), *paths]) == 2
    out, err = capsys.readouterr()
    scored = [line.split("\t") for line in out.strip().splitlines()]
    assert [s[0] for s in scored] == [paths[0], paths[-1]] and all(s[1] in ("sneaker", "sandal", "bag") for s in scored)
    errors = err.strip().splitlines()
    assert "Traceback" not in err and len(errors) == len(bad) + 1
    for name, line in zip(bad, errors):
        assert line.startswith("t2w: error: ") and name in line, line
    assert errors[-1] == f"t2w: error: {len(bad)} of {len(paths)} images could not be read (scored the others)"


def test_predict_output_keeps_one_row_per_image_whatever_the_path_holds(world, tmp_path, capsys):
    """A path with a tab or a newline is quoted (csv's excel-tab dialect), so each row reads back as
    path, label, probability; --json gives one object per image; a URL is one line, not a missing file."""
    import csv
    import io

    odd = [tmp_path / "a\tb.png", tmp_path / "line\nbreak.png", tmp_path / 'say "cheese".png']
    for path in odd:
        shutil.copy(world / "good0.png", path)
    clf = str(world / "clf.safetensors")
    assert cli.main(["predict", "--classifier", clf, *map(str, odd)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out), dialect="excel-tab"))
    assert [r[0] for r in rows] == list(map(str, odd)) and all(len(r) == 3 for r in rows)
    assert cli.main(["predict", "--json", "--classifier", clf, *map(str, odd)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in records] == list(map(str, odd))
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 and r["label"] in r["probabilities"] for r in records)
    url = "https://example.org/cat.png"
    assert cli.main(["predict", "--classifier", clf, url, str(world / "good0.png")]) == 2
    out, err = capsys.readouterr()
    assert f"t2w: error: {url} is a URL; t2w reads image files only" in err and len(out.splitlines()) == 1


def test_a_locale_that_cannot_encode_a_name_escapes_it(world, tmp_path):
    """LANG=C without UTF-8 mode: a class name from a UTF-8 classes file is printed escaped, a path given
    on the command line is printed as its bytes came; neither ends in a codec error after the file is written
    (predict prints through the same stream)."""
    import subprocess
    import sys

    env = {**os.environ, "LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0"}
    env.pop("PYTHONIOENCODING", None)
    t2w = [sys.executable, "-m", "t2wlib.pipeline.cli"]
    out = tmp_path / "café.safetensors"
    made = subprocess.run([*t2w, "generate", "--generator", str(world / "gen"), "--classes-file",
                           str(_classes_file(tmp_path, "café\nthé\nbag\n")), "--out", str(out)],
                          capture_output=True, env=env, timeout=300)
    assert made.returncode == 0, made.stderr.decode(errors="replace")[-2000:]
    assert b"(caf\\xe9, th\\xe9, bag)" in made.stdout and "caf\xe9.safetensors".encode("latin-1") not in made.stdout
    assert "café.safetensors".encode() in made.stdout  # the path, byte for byte


def test_classes_file_comments_and_blank_lines_are_ignored(world, tmp_path, capsys):
    path = _classes_file(tmp_path, "# my classes\n\nbag\n  # another comment\ncoat\n\n")
    assert cli.main(_generate(world / "gen", tmp_path / "o.safetensors", "--classes-file", str(path))) == 0
    assert Classifier.load(tmp_path / "o.safetensors").class_names == ["bag", "coat"]


def test_generating_outside_the_trained_k_range_warns(world, tmp_path, capsys):
    assert cli.main(_generate(world / "gen", tmp_path / "o.safetensors", "--classes", ",".join(CLASSES))) == 0
    err = capsys.readouterr().err
    assert "t2w: warning: 6 classes is outside the 2 to 4 classes of the generator's training tasks" in err
    assert len(Classifier.load(tmp_path / "o.safetensors").class_names) == 6


def test_nan_text_vectors_are_refused(world):
    from t2wlib.generator.t2w import T2WGenerator

    gen = T2WGenerator.load(world / "gen")
    with pytest.raises(ValueError, match="NaN or inf"):
        gen.sample(torch.full((1, gen.model.text_dim), float("nan")))


def test_a_bug_shows_no_traceback_without_debug(world, capsys, monkeypatch):
    def broken(args):
        raise TypeError("a bug")

    monkeypatch.setattr(cli, "_info", broken)
    assert cli.main(["info"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error: TypeError: a bug" in err and "--debug" in err
    with pytest.raises(TypeError):
        cli.main(["--debug", "info"])


def test_run_only_unknown_leaves_no_run_folder(tmp_path, capsys):
    assert cli.main(["run", "--profile", "smoke", "--only", "99", "--run-dir", str(tmp_path / "run"),
                     "--artifacts", str(tmp_path / "a"), "--figures", str(tmp_path / "f")]) == 2
    assert "no notebook matches ['99']" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_missing_paper_data_is_reported_naming_the_dataset(tmp_path):
    from t2wlib.data.datasets import check_available
    from t2wlib.data.image_split import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="CIFAR-100: missing"):
        check_available(get_profile("paper").datasets, tmp_path)


def test_the_zoo_notebook_checks_the_data_before_any_weights_load():
    """01_zoo's code calls check_available before it first touches the session's backbone, text encoder
    or features (each loads weights on first use), so missing data stops a run before any model loads."""
    import nbformat

    from t2wlib.pipeline.runner import REPO

    code = "\n".join(c.source for c in nbformat.read(REPO / "notebooks" / "01_zoo.ipynb", as_version=4).cells
                     if c.cell_type == "code")
    check = code.index("datasets.check_available(profile.datasets")
    assert all(check < code.index(use) for use in ("session.backbone", "session.encoder", "session.features"))


# --- the zoo's own files ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("zoo") / "zoo"
    zoo_job.build(directory)
    return directory


def _edit_json(path: Path, edit) -> None:
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))


ZOO_CASES = [
    ("tasks-seen-to-unseen", "tasks.json",
     lambda r: r.update(split=["unseen" if s == "seen" else s for s in r["split"]]), "tasks.json fails its checksum"),
    ("class-names-swapped", "config.json",
     lambda r: r.update(class_names=r["class_names"][::-1]), "config.json fails its checksum"),
    ("accuracy-edited", "manifest.json",
     lambda r: r["tasks"][0].update(test_accuracy=0.123), "manifest.json fails its checksum"),
]


@pytest.mark.parametrize("case, name, edit, message", ZOO_CASES, ids=[c[0] for c in ZOO_CASES])
def test_edited_zoo_files_are_refused(zoo_dir, tmp_path, case, name, edit, message):
    copy = tmp_path / "zoo"
    shutil.copytree(zoo_dir, copy)
    _edit_json(copy / name, edit)
    with pytest.raises(CorruptArtifactError, match=message):
        load_zoo(copy)


def test_a_resigned_zoo_file_still_differs_from_the_manifest(zoo_dir, tmp_path):
    copy = tmp_path / "zoo"
    shutil.copytree(zoo_dir, copy)
    record = json.loads((copy / "tasks.json").read_text())
    record.pop("checksum")
    record["split"] = ["unseen"] * len(record["split"])
    write_json_checked(copy / "tasks.json", record)
    with pytest.raises(CorruptArtifactError, match="tasks.json differs from the one the manifest recorded"):
        load_zoo(copy)


@pytest.mark.parametrize("name", ["manifest.json", "config.json"])
def test_unreadable_zoo_json_names_the_file(zoo_dir, tmp_path, name):
    copy = tmp_path / "zoo"
    shutil.copytree(zoo_dir, copy)
    (copy / name).write_text("{not json")
    with pytest.raises(CorruptArtifactError, match=f"{name} is not readable JSON"):
        load_zoo(copy)


@pytest.mark.parametrize("bad, message", [
    (lambda e: e[:-1], r"text embeddings 'prompt' have shape \(5, 8\); need one row per class, \(6, D\)"),
    (lambda e: torch.full_like(e, float("nan")), "text embeddings 'prompt' hold NaN"),
])
def test_bad_zoo_inputs_fail_before_any_file(tmp_path, bad, message):
    train, test, emb = zoo_job.synthetic_data()
    with pytest.raises(ValueError, match=message):
        build_zoo(tmp_path / "zoo", zoo_job.config(), train, test, {**emb, "prompt": bad(emb["prompt"])}, {})
    assert not (tmp_path / "zoo").exists()
