"""The `t2w` command: `run` (the notebook pipeline), `generate` (text -> classifier file),
`predict` (a classifier on image files), `demo` (both on a local web page), `compare` (a re-run
against a reference run, table by table), `info` (the registries).

Every error a user can cause ends in one line on stderr, `t2w: error: <what>, <which file or
value>, <what is allowed>`, and exit status 2; `t2w --debug ...` shows the traceback instead."""

from __future__ import annotations

import argparse
import codecs
import csv
import json
import math
import sys
import time
import warnings
from pathlib import Path

from .compare import ATOL, RTOL
from .profiles import PROFILES


class UsageError(ValueError):
    """A bad command-line value."""


def user_error_message(err: BaseException) -> str | None:
    """The one-line message for an error the user can cause (bad input, unreadable or corrupted
    files, a full or read-only disk), or None for a bug, which keeps its traceback."""
    from safetensors import SafetensorError

    from ..data.image_split import DatasetNotFoundError

    if isinstance(err, KeyError) and err.args:  # KeyError's str() is the repr of its argument
        return str(err.args[0])
    if isinstance(err, OSError) and not isinstance(err, DatasetNotFoundError):
        where = f", {err.filename}" if err.filename and str(err.filename) not in str(err.strerror) else ""
        return f"{err.strerror or err}{where}" if err.strerror else str(err)
    if isinstance(err, (ValueError, SafetensorError, DatasetNotFoundError)):
        return str(err)
    return None


def _escape_unencodable(err: UnicodeEncodeError) -> tuple[str | bytes, int]:
    """Output in a locale that cannot encode every character (LANG=C): a command-line argument's bytes
    that were not text in that locale (Python holds them as surrogates) are written back as they came,
    any other character as a backslash escape ("café" -> "caf\\xe9")."""
    chunk = err.object[err.start:err.end]
    if all("\udc80" <= ch <= "\udcff" for ch in chunk):
        return bytes(ord(ch) - 0xDC00 for ch in chunk), err.end
    return codecs.backslashreplace_errors(err)


OUTPUT_ERRORS = "t2w-escape"
codecs.register_error(OUTPUT_ERRORS, _escape_unencodable)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"t2w: warning: {message}", file=sys.stderr)


def _run(args) -> int:
    from .runner import PipelineError, run_pipeline

    kwargs = {k: v for k, v in {"artifacts": args.artifacts, "figures": args.figures, "run_dir": args.run_dir}.items() if v}
    start = time.perf_counter()
    try:
        timings = run_pipeline(args.profile, data_root=args.data_root, only=args.only, overrides=_overrides(args),
                               log_output=not args.quiet, threads=args.threads, parallel=args.parallel,
                               **kwargs)
    except PipelineError as err:
        print(f"[t2w] pipeline failed: {err}", file=sys.stderr)
        return 1
    print(f"[t2w] pipeline done in {time.perf_counter() - start:.0f} s wall ({args.parallel} at a time; "
          f"{', '.join(f'{k} {v:.0f} s' for k, v in timings.items())})")
    return 0


def _overrides(args) -> dict:
    """--set FIELD=VALUE ... and --data NAME=PATH ... as one dict of typed profile overrides."""
    from .overrides import data_overrides, typed_overrides

    return {**typed_overrides(args.set), **data_overrides(args.data)}


def _threads(args) -> None:
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads {args.threads}: give a positive number of CPU threads")
        import torch

        torch.set_num_threads(args.threads)


def _read_classes(args) -> tuple[list[str], list[str] | None]:
    """--classes "a,b,c", or --classes-file (classifier.read_classes_file)."""
    from ..data.class_names import read_classes_file

    return read_classes_file(args.classes_file) if args.classes_file else (args.classes.split(","), None)


def _check_out(path: str) -> Path:
    """The --out file: refused before any work when it is a directory or its parent is not one."""
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name, e.g. {out / 'head.safetensors'}")
    parent = next((p for p in out.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise UsageError(f"--out {out}: {parent} is a file, not a directory")
    return out


def _pipeline_generator(args) -> Path:
    """The generator folder `t2w run` trained for --dataset (02_train's: template prompts, the
    profile's first seed), found from the profile, its --set/--data overrides and the zoo it came from."""
    from .runner import rerun_command, zoo_ready
    from .session import Session

    session = Session(args.profile, args.artifacts, "", args.data_root, _overrides(args))
    if args.dataset not in session.profile.datasets:
        raise UsageError(f"--dataset {args.dataset!r} is not in profile {session.profile.name}; allowed: "
                         f"{', '.join(session.profile.datasets)}")
    build = rerun_command(session.profile.name, Path(args.artifacts), _overrides(args), ["01", "02"])
    if not zoo_ready(session, args.dataset):
        raise UsageError(f"no zoo of {args.dataset} in {args.artifacts} for these settings: run `{build}` first")
    directory = session.generator_dir(session.dataset(args.dataset).zoo, args.variant)
    if not directory.exists():
        raise UsageError(f"no generator at {directory}: run `{build}` first (02_train)")
    return directory


def _generate(args) -> int:
    from ..classifier import text_to_classifier
    from ..data.class_names import check_classes
    from ..encoders.text import load_text_encoder
    from ..generator.t2w import T2WGenerator

    out = _check_out(args.out)
    _threads(args)
    if not math.isfinite(args.guidance):
        raise UsageError(f"--guidance {args.guidance} is not a finite number; allowed: any finite value (1 = off)")
    names, descs = _read_classes(args)
    check_classes(names)  # before any model loads
    generator = T2WGenerator.load(args.generator or _pipeline_generator(args))
    encoder = load_text_encoder(generator.config.text_encoder)
    clf = text_to_classifier(generator, encoder, names, descs, seed=args.seed, steps=args.steps, guidance=args.guidance)
    path = clf.save(out)
    calibrated = (f"probabilities calibrated with temperature {clf.temperature:.3g} (fitted on "
                  f"{generator.calibration['fitted_on']})" if generator.calibration else
                  "probabilities NOT calibrated: the generator has no calibration.json (02_train writes it)")
    print(f"[t2w] classifier for {len(clf.class_names)} classes ({', '.join(clf.class_names)}) on backbone "
          f"{clf.backbone} written to {path}; {calibrated}")
    return 0


def _predict(args) -> int:
    from ..classifier import Classifier

    _threads(args)
    failed = 0
    # Tab-separated path, label, probability; a field holding a tab, newline or quote is quoted as the
    # csv module's excel-tab dialect does, so every row reads back as three fields. --json: JSON Lines.
    rows = csv.writer(sys.stdout, dialect="excel-tab", lineterminator="\n")
    for r in Classifier.load(args.classifier).predict(args.images):
        if "error" in r:
            failed += 1
            print(f"t2w: error: {' '.join(r['error'].split())}", file=sys.stderr)
        elif args.json:
            print(json.dumps(r, ensure_ascii=False))
        else:
            rows.writerow([r["path"], r["label"], f"{r['probability']:.3f}"])
    if failed:
        print(f"t2w: error: {failed} of {len(args.images)} images could not be read (scored the others)", file=sys.stderr)
        return 2
    return 0


def _demo(args) -> int:
    from ..demo.server import serve
    from .runner import PipelineError

    try:
        return serve(Path(args.artifacts), args.host, args.port, args.generator or "", build=not args.no_build)
    except PipelineError as err:
        print(f"[t2w] building the demo generators failed: {err}", file=sys.stderr)
        return 1


def _compare(args) -> int:
    """Each table's status, then a count per status; exit 1 when a table differs beyond the tolerance or is missing."""
    from .compare import STATUSES, compare_runs, figures_counted

    results = compare_runs(args.run, args.reference, args.rtol, args.atol)
    for r in results:
        print(f"{r.status:<9} {r.name}{'  ' + r.detail if r.detail else ''}")
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    print(f"[t2w] {len(results)} tables: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
          + f" (tolerance {args.atol:g} + {args.rtol:g} x |reference|; timing columns left out; "
          f"{figures_counted(args.run)} figures not compared)")
    return 1 if counts["beyond"] or counts["missing"] else 0


def _info(args) -> int:
    from ..data.datasets import DATASETS
    from ..encoders.backbones import BACKBONES
    from ..encoders.text import TEXT_ENCODERS

    print("profiles:      ", ", ".join(PROFILES))
    print("datasets:      ", ", ".join(DATASETS.names()))
    print("backbones:     ", ", ".join(BACKBONES.names()))
    print("text encoders: ", ", ".join(TEXT_ENCODERS.names()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="t2w", description="Text2Weight compendium")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks/NN_*.ipynb in order with papermill")
    run.add_argument("--profile", default="cpu", choices=list(PROFILES))
    run.add_argument("--only", nargs="+", help="notebook numbers or names to run (default: all)")
    run.add_argument("--artifacts", help="cache/artifact folder (default: ./artifacts)")
    run.add_argument("--figures", help="figure folder (default: ./figures/<profile>)")
    run.add_argument("--run-dir", help="folder for executed notebooks (default: <figures>/notebooks)")
    run.add_argument("--data-root", default="", help="folder holding the datasets (paper profile)")
    run.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[],
                     help="change a profile field for this run (repeatable), e.g. --set zoo_tasks=60; "
                          "recorded in every output's provenance")
    run.add_argument("--data", action="append", metavar="NAME=PATH", default=[],
                     help="run on your own image folder instead of the profile's datasets (repeatable); it becomes "
                          "dataset user-NAME. Layouts: PATH/train/<class>/*, PATH/test/<class>/*; or PATH/<class>/* "
                          "(split 80/20 per class); or CIFAR-100's or Caltech-256's layout. An optional "
                          "PATH/descriptions.txt ('class: description' per line) gives the T2W-NL texts")
    run.add_argument("--quiet", action="store_true", help="do not echo notebook output")
    run.add_argument("--threads", type=int, help="CPU threads per notebook kernel (default: torch's, the cores it "
                     "sees, divided among --parallel kernels; on a shared or loaded machine fewer threads can be "
                     "much faster)")
    run.add_argument("--parallel", type=int, default=1, help="notebooks run at a time after 01 and 02, which every "
                     "later one reads from (default 1; `make run` uses 2)")
    run.set_defaults(func=_run)
    gen = sub.add_parser("generate", help="generate a classifier for the given classes with a trained generator")
    which = gen.add_mutually_exclusive_group(required=True)
    which.add_argument("--generator", help="a generator folder "
                       "(artifacts/generator/<profile>/<dataset>-<variant>-s<seed>-<digest>)")
    which.add_argument("--dataset", help="the dataset whose pipeline generator to use (with --profile, --artifacts)")
    gen.add_argument("--profile", default="cpu", choices=list(PROFILES), help="with --dataset: the run's profile")
    gen.add_argument("--artifacts", default="artifacts", help="with --dataset: the run's artifact folder")
    gen.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[],
                     help="with --dataset: the run's profile overrides")
    gen.add_argument("--data", action="append", metavar="NAME=PATH", default=[],
                     help="with --dataset user-NAME: the folder the run was given with --data")
    gen.add_argument("--data-root", default="", help="with --dataset: the run's --data-root")
    gen.add_argument("--variant", default="prompt", choices=["prompt", "description"],
                     help="with --dataset: T2W-CLIP (prompt) or T2W-NL (description, trained by 03_evaluate)")
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--classes", help='comma-separated class names, e.g. "sneaker,sandal,bag"')
    src.add_argument("--classes-file", help='one class per line, optionally "name: description"')
    gen.add_argument("--out", required=True, help="classifier file to write (.safetensors)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--steps", type=int, default=20, help="DDIM sampling steps")
    gen.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1 = off)")
    gen.add_argument("--threads", type=int, help="CPU threads (default: the cores torch sees)")
    gen.set_defaults(func=_generate)
    pred = sub.add_parser("predict", help="apply a generated classifier to image files")
    pred.add_argument("--classifier", required=True)
    pred.add_argument("images", nargs="+")
    pred.add_argument("--json", action="store_true", help="one JSON object per image (path, label, probability, every "
                      "class's probability) instead of tab-separated path, label, probability")
    pred.add_argument("--threads", type=int, help="CPU threads (default: the cores torch sees)")
    pred.set_defaults(func=_predict)
    demo = sub.add_parser("demo", help="a local web page: class names in, a classifier out, your images scored with "
                          "their Grad-CAM maps (builds small generators first when there are none)")
    demo.add_argument("--artifacts", default="artifacts", help="where `t2w run` keeps its generators (default: artifacts)")
    demo.add_argument("--generator", help="the generator folder the page offers first (default: the cpu profile's)")
    demo.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only; "
                      "0.0.0.0 shows the page to your network)")
    demo.add_argument("--port", type=int, default=8501)
    demo.add_argument("--no-build", action="store_true", help="stop with an error instead of building the demo "
                      "generators when there are none")
    demo.set_defaults(func=_demo)
    cmp = sub.add_parser("compare", help="compare a run's tables with a reference run's (e.g. figures/cpu), table by "
                         "table: identical, within a tolerance, or beyond it")
    cmp.add_argument("run", help="the figures folder of the run to check (t2w run --figures)")
    cmp.add_argument("reference", help="the reference run's figures folder, e.g. figures/cpu")
    cmp.add_argument("--rtol", type=float, default=RTOL, help=f"relative tolerance (default {RTOL:g})")
    cmp.add_argument("--atol", type=float, default=ATOL, help=f"absolute tolerance (default {ATOL:g}: half a point "
                     "of an accuracy in [0, 1])")
    cmp.set_defaults(func=_compare)
    info = sub.add_parser("info", help="list profiles and registered datasets, backbones, text encoders")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # a name the locale cannot encode (LANG=C) is escaped, not a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=OUTPUT_ERRORS)
    if args.debug:
        return args.func(args)
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("t2w: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the one place where every error becomes a message
        message = user_error_message(err)
        if message is None:
            print(f"t2w: internal error: {type(err).__name__}: {err} (a bug: rerun with --debug for the traceback "
                  "and report it)", file=sys.stderr)
            return 1
        print(f"t2w: error: {' '.join(message.split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
