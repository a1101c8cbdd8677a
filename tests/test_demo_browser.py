"""The demo page in a real browser: Debian's chromium, headless, driven by Selenium through Debian's
chromedriver (both installed by `make test`'s setup, scripts/setup.sh --test). It serves the smoke run's
Fashion-MNIST generator, types three class names, uploads test images of those classes, and checks what
the page shows against `t2w generate` and `t2w predict` on the same names and files; then a bad class
list and an unreadable file. The screenshot it takes (runs/test-smoke/demo_page.png) is the one committed as
figures/demo-page/demo_page.png (docs/DEMO.md)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from t2wlib.core.sealed import load_sealed
from t2wlib.demo.catalogue import find_generators
from t2wlib.pipeline import cli

from conftest import SMOKE_RUN  # tests/ is on sys.path: pytest puts the rootdir conftest's folder there
from test_demo import listening_addresses, start_demo

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CLASSES = ("sneaker", "sandal", "bag")
SCREENSHOT = SMOKE_RUN / "demo_page.png"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), ("Debian's chromium and chromium-driver are not installed: "
                                                         "`bash scripts/setup.sh --test` installs them")
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # Headless as root in a container; no background connections (this machine's network is closed to them).
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(smoke_run, browser, tmp_path_factory):
    """The page of `t2w demo` serving the smoke run's Fashion-MNIST generator, open in the browser. The server
    listens on 127.0.0.1 only, and after SIGTERM it has removed its temporary folder (where uploads were written)."""
    generator = next(e for e in find_generators(SMOKE_RUN / "artifacts") if e.config.dataset == "fashion-mnist")
    tmp = tmp_path_factory.mktemp("tmp")
    server, url = start_demo(SMOKE_RUN / "artifacts", tmp, generator.directory)
    assert listening_addresses(int(url.rsplit(":", 1)[1])) == {"127.0.0.1"}  # this machine only
    [workdir] = list(tmp.glob("t2w-demo-*"))
    browser.get(url)
    _wait(browser, lambda d: d.find_elements("css selector", '[data-testid="stTextArea"] textarea'))
    yield browser, generator.directory
    server.terminate()
    assert server.wait(timeout=30) is not None
    assert not workdir.exists() and list(tmp.iterdir()) == []


def _wait(driver, condition, seconds: float = 120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(condition)


def _submit_classes(driver, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element("css selector", '[data-testid="stTextArea"] textarea')
    box.send_keys(Keys.CONTROL, "a")  # select and type over: clear() leaves the page's own copy of the text
    box.send_keys(Keys.DELETE)
    box.send_keys(text)
    driver.find_element("css selector", '[data-testid="stFormSubmitButton"] button').click()


def _alerts(driver, kind: str) -> list[str]:
    """The text of every alert of a kind shown: Success, Error, Warning, Info."""
    return [a.text for a in driver.find_elements("css selector", f'[data-testid="stAlertContent{kind}"]')]


def _images(tmp_path: Path) -> dict[Path, str]:
    """4 Fashion-MNIST test images of each class, as files: path -> true class."""
    from t2wlib.data.datasets import load_split

    split, truth = load_split("fashion-mnist", "test"), {}
    for name in CLASSES:
        for i in (split.labels == split.class_names.index(name)).nonzero()[0][:4]:
            path = tmp_path / f"{name}{int(i)}.png"
            split.image(int(i)).save(path)
            truth[path] = name
    return truth


def test_class_names_in_a_classifier_out_and_images_scored_as_predict_scores_them(page, tmp_path, capsys):
    driver, generator = page
    start = time.perf_counter()
    _submit_classes(driver, "\n".join(CLASSES))
    _wait(driver, lambda d: _alerts(d, "Success"))
    names_to_classifier = time.perf_counter() - start
    assert _alerts(driver, "Success")[0].startswith("A classifier for 3 classes (sneaker, sandal, bag)")

    # The file behind the download button is the one `t2w generate` writes for the same names.
    download = "//button[.//p[text()='Download the classifier file']]"
    _wait(driver, lambda d: d.find_elements("xpath", download))[0].click()
    downloaded = driver.downloads / "classifier.safetensors"
    _wait(driver, lambda d: downloaded.exists() and not list(driver.downloads.glob("*.crdownload")), 30)
    reference = tmp_path / "reference.safetensors"
    assert cli.main(["generate", "--generator", str(generator), "--classes", ",".join(CLASSES),
                     "--out", str(reference)]) == 0
    (got, got_meta), (want, want_meta) = (load_sealed(p, "classifier file") for p in (downloaded, reference))
    assert got_meta == want_meta and all(got[k].equal(want[k]) for k in want)

    truth = _images(tmp_path)
    start = time.perf_counter()
    _wait(driver, lambda d: d.find_elements("css selector", 'input[type="file"]'))[0].send_keys(
        "\n".join(map(str, truth)))
    last = f".st-key-image-{len(truth) - 1}"
    _wait(driver, lambda d: d.find_elements("css selector", last) and "probability" in d.find_element(
        "css selector", last).text)
    upload_to_scores = time.perf_counter() - start
    shown = {}
    for i in range(len(truth)):
        lines = driver.find_element("css selector", f".st-key-image-{i}").text.splitlines()
        # name, the Grad-CAM caption, the header "class" "probability", then class and probability pairs
        assert lines[1].startswith("Grad-CAM of") and lines[2:4] == ["class", "probability"], lines
        shown[lines[0]] = [(c, float(p)) for c, p in zip(lines[4::2], lines[5::2])]
    assert len(driver.find_elements("css selector", '[data-testid="stImage"] img')) == len(truth)

    capsys.readouterr()
    assert cli.main(["predict", "--json", "--classifier", str(reference), *map(str, truth)]) == 0
    predicted = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    right = 0
    for row, (path, label) in zip(predicted, truth.items()):
        top = shown[path.name]
        assert top[0][0] == row["label"], (path.name, top, row)
        assert all(abs(p - row["probabilities"][c]) <= 5e-5 for c, p in top), (top, row)  # shown to 4 decimals
        right += top[0][0] == label
    assert right >= 8, shown  # of 12, as for `t2w predict`: a head that ignored the names would get about 4
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).move_to_element(driver.find_element("tag name", "h1")).perform()  # no tooltip in the picture
    driver.set_window_size(1200, 2400)
    driver.save_screenshot(str(SCREENSHOT))
    print(f"class names -> classifier shown: {names_to_classifier:.1f} s; upload -> {len(truth)} scores shown: "
          f"{upload_to_scores:.1f} s")


@pytest.mark.parametrize("classes, message", [
    ("bag\nBag", "duplicate class 'Bag' (also given as 'bag')"),
    ("bag", "need at least two non-empty class names, got ['bag']"),
    ("", "need at least two non-empty class names, got []"),
    ("apple\n\u0430pple", "mixes CYRILLIC and LATIN letters in one word"),
    ("sneaker: a running shoe\nsandal", "the class list mixes 'name: description' lines with bare names"),
])
def test_a_bad_class_list_is_one_message_and_no_classifier(page, classes, message):
    driver, _ = page
    _submit_classes(driver, classes)
    # Each message names what it refused, so the one awaited is this list's, not the last one's still shown.
    _wait(driver, lambda d: any(message in e for e in _alerts(d, "Error")) and not _alerts(d, "Success"))
    assert len(_alerts(driver, "Error")) == 1
    assert not driver.find_elements("css selector", 'input[type="file"]')


def test_an_unreadable_file_is_named_and_the_others_still_scored(page, tmp_path):
    driver, _ = page
    _submit_classes(driver, "sneaker, sandal")
    _wait(driver, lambda d: any("(sneaker, sandal)" in a for a in _alerts(d, "Success")))
    good = next(iter(_images(tmp_path)))
    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a photo after all")
    shutil.copy(good, tmp_path / "shoe.png")
    _wait(driver, lambda d: d.find_elements("css selector", 'input[type="file"]'))[0].send_keys(
        f"{broken}\n{tmp_path / 'shoe.png'}")
    _wait(driver, lambda d: d.find_elements("css selector", ".st-key-image-1") and "probability" in d.find_element(
        "css selector", ".st-key-image-1").text)
    [error] = _alerts(driver, "Error")
    assert error.startswith("holiday.jpg is not a readable image") and str(tmp_path) not in error
    assert driver.find_element("css selector", ".st-key-image-1").text.startswith("shoe.png\nGrad-CAM of")


def test_more_classes_than_the_generator_was_trained_on_is_a_warning(page):
    driver, generator = page
    low, high = find_generators(SMOKE_RUN / "artifacts", generator)[0].config.k_range
    names = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
             "hat", "glove"][:high + 1]
    _submit_classes(driver, "\n".join(names))
    _wait(driver, lambda d: any(f"for {high + 1} classes" in a for a in _alerts(d, "Success")) and _alerts(d, "Warning"))
    [warning] = _alerts(driver, "Warning")
    assert f"{high + 1} classes is outside the {low} to {high} classes of the generator's training tasks" in warning
