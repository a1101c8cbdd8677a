"""`t2w demo` without a browser: the generators it offers, uploads scored as `t2w predict` scores files,
the server's safe defaults. The page itself, and the server bound to localhost and leaving no temporary
folder after SIGTERM, in Chromium: test_demo_browser.py."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from t2wlib.demo.catalogue import find_generators
from t2wlib.demo.server import PAGE, streamlit_command
from t2wlib.demo.uploads import save_uploads, score_images
from t2wlib.pipeline import cli

from conftest import SMOKE_RUN  # tests/ is on sys.path: pytest puts the rootdir conftest's folder there


def test_the_catalogue_offers_every_finished_generator_and_skips_the_rest(smoke_run, tmp_path):
    entries = find_generators(SMOKE_RUN / "artifacts")  # 02_train's, the calibrated ones, of the run's many
    assert sorted(e.config.dataset for e in entries) == ["emoji-tiny", "fashion-mnist"]
    fmnist = entries[1]
    assert fmnist.profile == "smoke" and "backbone efficientnet-lite0" in fmnist.trained_on
    assert f"tasks of {fmnist.config.k_range[0]} to {fmnist.config.k_range[1]} classes" in fmnist.trained_on
    root = tmp_path / "artifacts" / "generator"
    for name, spoil in (("unfinished", lambda d: (d / "ema.safetensors").unlink()),
                        ("edited", lambda d: (d / "generator.json").write_text('{"format": "t2w-generator/4"}')),
                        ("kept", lambda d: None)):
        shutil.copytree(fmnist.directory, root / "cpu" / name)
        spoil(root / "cpu" / name)
    shutil.copytree(fmnist.directory, root / "demo" / "later")
    shutil.copytree(fmnist.directory, root / "smoke" / "uncalibrated")
    (root / "smoke" / "uncalibrated" / "calibration.json").unlink()
    found = find_generators(tmp_path / "artifacts")
    assert [(e.profile, e.directory.name) for e in found] == [("cpu", "kept"), ("demo", "later")]
    named = find_generators(tmp_path / "artifacts", also=root / "smoke" / "uncalibrated")  # t2w demo --generator
    assert [e.directory.name for e in named] == ["uncalibrated", "kept", "later"] and not named[0].calibrated
    assert find_generators(tmp_path / "nowhere") == []


def test_uploads_are_written_under_names_of_the_pages_own_making(tmp_path):
    paths = save_uploads([("../../escape.png", b"a"), ("/etc/passwd", b"b"), ("photo.JPEG", b"c")], tmp_path / "up")
    assert [p.name for p in paths] == ["0000.png", "0001", "0002.jpeg"]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["0000.png", "0001", "0002.jpeg"]
    with pytest.raises(ValueError, match=r"big.png is 2.0 MB; the page reads images of at most 1 MB"):
        save_uploads([("big.png", bytes(2 * 2**20))], tmp_path / "up2", max_bytes=2**20)


@pytest.fixture(scope="module")
def fmnist_classifier(smoke_run, tmp_path_factory):
    """A classifier for sneaker, sandal and bag from the smoke run's Fashion-MNIST generator, and 3 of their
    test images each."""
    from t2wlib.classifier import Classifier
    from t2wlib.data.datasets import load_split

    root = tmp_path_factory.mktemp("demo")
    gen = next(e for e in find_generators(SMOKE_RUN / "artifacts") if e.config.dataset == "fashion-mnist")
    assert cli.main(["generate", "--generator", str(gen.directory), "--classes", "sneaker,sandal,bag",
                     "--out", str(root / "clf.safetensors")]) == 0
    split, images = load_split("fashion-mnist", "test"), []
    for name in ("sneaker", "sandal", "bag"):
        for i in (split.labels == split.class_names.index(name)).nonzero()[0][:3]:
            images.append(root / f"{name}{int(i)}.png")
            split.image(int(i)).save(images[-1])
    return Classifier.load(root / "clf.safetensors"), images


def test_scored_uploads_carry_predicts_probabilities_and_a_gradcam_map(fmnist_classifier, tmp_path):
    from t2wlib.encoders.backbones import load_backbone

    classifier, images = fmnist_classifier
    broken = tmp_path / "broken.png"
    broken.write_bytes(images[0].read_bytes()[:60])
    paths = [*images, broken]
    scored = score_images(classifier, load_backbone(classifier.backbone), paths, [p.name for p in paths])
    expected = classifier.predict(paths)  # what `t2w predict` prints
    for image, want in zip(scored[:-1], expected):
        assert image.error is None and image.probabilities == want["probabilities"]
        assert image.top(1)[0] == (want["label"], want["probability"])
        assert image.overlay.shape == (classifier.image_size, classifier.image_size, 3) and image.overlay.dtype == np.uint8
    assert scored[-1].overlay is None and scored[-1].error.startswith("broken.png is not a readable image")
    # The map is the top class's: another class's map of the same image differs.
    assert len({img.overlay.tobytes() for img in scored[:-1]}) == len(images)


def test_the_server_binds_localhost_with_an_upload_limit_and_no_statistics(tmp_path):
    cmd = streamlit_command(tmp_path / "a", tmp_path / "w", "127.0.0.1", 8501)
    options = dict(zip(cmd[cmd.index(str(PAGE)) + 1::2], cmd[cmd.index(str(PAGE)) + 2::2]))
    assert options["--server.address"] == "127.0.0.1" and options["--server.maxUploadSize"] == "10"
    assert options["--browser.gatherUsageStats"] == "false" and options["--server.headless"] == "true"


@pytest.mark.parametrize("argv, message", [
    (["--no-build"], r"no finished generator under .*/generator/; run `t2w demo` without --no-build"),
    (["--port", "70000"], r"--port 70000 is not a port number; allowed: 1 to 65535"),
    (["--generator", "nowhere"], r"--generator nowhere is not a finished generator folder"),
])
def test_demo_errors_are_one_line(tmp_path, capsys, argv, message):
    import re

    assert cli.main(["demo", "--artifacts", str(tmp_path / "empty"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "empty").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo(artifacts: Path, tmp: Path, generator: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`t2w demo` on a free port with its temporary folder under `tmp`; returns the server and its URL
    once the page answers (the browser test uses it too)."""
    import os

    port = _free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "t2wlib.pipeline.cli", "demo", "--artifacts", str(artifacts), "--port", str(port),
            "--no-build", *(["--generator", str(generator)] if generator else [])]
    server = subprocess.Popen(argv, env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as answer:
                if answer.status == 200:
                    return server, url
        except OSError:
            if server.poll() is not None:
                raise AssertionError(f"t2w demo ended early: {server.stdout.read()[-3000:]}") from None
            time.sleep(0.1)
    server.kill()
    raise AssertionError("t2w demo did not answer in 60 s")


def listening_addresses(port: int) -> set[str]:
    """The IPv4 and IPv6 addresses a socket listens on at `port`, from /proc/net/tcp{,6} (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, at = local.split(":")
            if state == "0A" and int(at, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word is little-endian
                found.add(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words))
    return found
