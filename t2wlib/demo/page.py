"""The demo page, a Streamlit script (`t2w demo` serves it; docs/DEMO.md): pick a generator, type class
names, get a classifier (and its file), drop images, see each one's top classes and Grad-CAM map.

Streamlit runs this file top to bottom on every interaction; the models are loaded once per server
(`st.cache_resource`), the classifier of the last submitted class list lives in the session's state.
Arguments after `--`: --artifacts DIR (where the generators are), --workdir DIR (the server's
temporary folder, the only place the page writes), --generator DIR (the one offered first)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import uuid
import warnings
from pathlib import Path

import pandas as pd
import streamlit as st

from t2wlib.demo.catalogue import find_generators
from t2wlib.demo.uploads import save_uploads, score_images

TOP = 3  # classes shown per image
EXAMPLE = "sneaker\nsandal\nbag"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="t2w demo page")
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--generator", default="")
    return parser.parse_args(sys.argv[1:])


@st.cache_resource(show_spinner="loading the generator")
def _generator(directory: str):
    from t2wlib.generator.t2w import T2WGenerator

    return T2WGenerator.load(directory)


@st.cache_resource(show_spinner="loading the text encoder")
def _encoder(name: str):
    from t2wlib.encoders.text import load_text_encoder

    return load_text_encoder(name)


@st.cache_resource(show_spinner="loading the backbone")
def _backbone(name: str):
    from t2wlib.encoders.backbones import load_backbone

    return load_backbone(name)


def _make_classifier(entry, text: str, workdir: Path) -> None:
    """The classifier for the submitted class list into the session state, or its error; warnings
    (a class count outside the generator's training tasks) are kept to be shown beside it."""
    from t2wlib.classifier import text_to_classifier
    from t2wlib.data.class_names import check_classes, parse_classes_text

    st.session_state.pop("classifier", None)
    try:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) == 1 and ":" not in lines[0] and "," in lines[0]:
            names, descriptions = lines[0].split(","), None  # one line, comma-separated, as --classes takes them
        else:
            names, descriptions = parse_classes_text(text, "the class list")
        check_classes(names)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            classifier = text_to_classifier(_generator(str(entry.directory)), _encoder(entry.config.text_encoder),
                                            names, descriptions)
        path = classifier.save(workdir / f"classifier-{uuid.uuid4().hex}.safetensors")
        st.session_state.classifier = {"classifier": classifier, "generator": str(entry.directory),
                                       "serial": uuid.uuid4().hex, "file": path.read_bytes(),
                                       "seconds": time.perf_counter() - start,
                                       "warnings": [str(w.message) for w in caught],
                                       "descriptions_unused": descriptions is not None
                                       and entry.config.text_variant != "description"}
        path.unlink()
        st.session_state.pop("error", None)
    except ValueError as err:  # every user mistake is one (class_names.py, task_condition.check_distinct)
        st.session_state.error = " ".join(str(err).split())


def _show_classifier(made: dict) -> None:
    classifier = made["classifier"]
    st.success(f"A classifier for {len(classifier.class_names)} classes ({', '.join(classifier.class_names)}) "
               f"in {made['seconds']:.1f} s; temperature {classifier.temperature:.3g}.")
    for message in made["warnings"]:
        st.warning(message)
    if made["descriptions_unused"]:
        st.info("This generator is conditioned on template prompts (\"A photo of ...\"): the descriptions were not "
                "used. A generator of description texts (03_evaluate's T2W-NL) uses them.")
    st.download_button("Download the classifier file", made["file"], file_name="classifier.safetensors",
                       mime="application/octet-stream",
                       help="The sealed file `t2w generate` writes; `t2w predict --classifier classifier.safetensors "
                            "IMAGE...` applies it.")


def _show_scores(classifier, uploads, workdir: Path) -> None:
    folder = workdir / f"uploads-{uuid.uuid4().hex}"
    try:
        paths = save_uploads([(u.name, u.getvalue()) for u in uploads], folder)
        scored = score_images(classifier, _backbone(classifier.backbone), paths, [u.name for u in uploads])
    except ValueError as err:
        st.error(" ".join(str(err).split()))
        return
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for i, image in enumerate(scored):
        with st.container(key=f"image-{i}", border=True):
            st.markdown(f"**{image.name}**")
            if image.error:
                st.error(" ".join(image.error.split()))
                continue
            left, right = st.columns([1, 2])
            left.image(image.overlay, caption=f"Grad-CAM of '{image.top(1)[0][0]}'", width=224)
            table = pd.DataFrame([{"class": c, "probability": f"{p:.4f}"} for c, p in image.top(TOP)])
            right.table(table.set_index("class"))


def main() -> None:
    args = _arguments()
    workdir = Path(args.workdir)
    st.set_page_config(page_title="t2w: text to classifier", layout="wide")
    st.title("Text to classifier")
    st.write("Type the classes of a task; a diffusion model trained on a zoo of classifier heads (Text2Weight) "
             "writes the weights of a classifier for them. Then drop images to see what it thinks and where it looks.")
    entries = find_generators(args.artifacts, args.generator or None)
    if not entries:
        st.error(f"No finished generator in {args.artifacts}/generator/: run `t2w demo` (it builds one) or `make run`.")
        st.stop()
    entry = st.selectbox("Generator", entries, format_func=lambda e: e.label)
    st.caption(entry.trained_on)
    # Loaded once per server, before the first class list, so that a classifier takes about a second.
    _ = _generator(str(entry.directory)), _encoder(entry.config.text_encoder)
    with st.form("classes"):
        text = st.text_area("Class names: one per line (or comma-separated on one line), or 'name: description' lines",
                            placeholder=EXAMPLE, height=140)
        submitted = st.form_submit_button("Generate classifier")
    if submitted:
        _make_classifier(entry, text, workdir)
    if "error" in st.session_state and "classifier" not in st.session_state:
        st.error(st.session_state.error)
    made = st.session_state.get("classifier")
    if made is None or made["generator"] != str(entry.directory):  # made by another generator: make it anew
        return
    _show_classifier(made)
    # A new classifier gets a new, empty uploader (its key), rather than scoring the last one's images.
    uploads = st.file_uploader("Images to classify", accept_multiple_files=True, key=f"uploads-{made['serial']}")
    if uploads:
        _show_scores(made["classifier"], uploads, workdir)


if __name__ == "__main__":  # as Streamlit runs it; importing the module (docs, tests) shows nothing
    main()
