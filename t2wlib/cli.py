"""The `t2w` command: `run` (the notebook pipeline), `generate` (text -> classifier file),
`predict` (a classifier on image files), `info` (the registries)."""

from __future__ import annotations

import argparse
import sys

from .profiles import PROFILES


def _run(args) -> int:
    from .runner import PipelineError, run_pipeline

    kwargs = {k: v for k, v in {"artifacts": args.artifacts, "figures": args.figures, "run_dir": args.run_dir}.items() if v}
    try:
        timings = run_pipeline(args.profile, data_root=args.data_root, only=args.only, log_output=not args.quiet, **kwargs)
    except PipelineError as err:
        print(f"[t2w] pipeline failed: {err}", file=sys.stderr)
        return 1
    print(f"[t2w] pipeline done: {sum(timings.values()):.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())})")
    return 0


def _read_classes(args) -> tuple[list[str], list[str] | None]:
    """--classes "a,b,c", or --classes-file with one class per line, optionally "name: description"."""
    if args.classes_file:
        lines = [ln.strip() for ln in open(args.classes_file, encoding="utf-8") if ln.strip()]
        pairs = [ln.split(":", 1) for ln in lines]
        names = [p[0].strip() for p in pairs]
        descs = [p[1].strip() for p in pairs] if all(len(p) == 2 for p in pairs) else None
        return names, descs
    return args.classes.split(","), None


def _generate(args) -> int:
    from .classifier import text_to_classifier
    from .generator import T2WGenerator
    from .text import load_text_encoder

    names, descs = _read_classes(args)
    generator = T2WGenerator.load(args.generator)
    encoder = load_text_encoder(generator.meta["text_encoder"])
    clf = text_to_classifier(generator, encoder, names, descs, seed=args.seed, steps=args.steps, guidance=args.guidance)
    path = clf.save(args.out)
    print(f"[t2w] classifier for {len(clf.class_names)} classes ({', '.join(clf.class_names)}) on backbone "
          f"{clf.backbone} written to {path}")
    return 0


def _predict(args) -> int:
    from .classifier import Classifier

    for r in Classifier.load(args.classifier).predict(args.images):
        print(f"{r['path']}\t{r['label']}\t{r['probability']:.3f}")
    return 0


def _info(args) -> int:
    from .backbones import BACKBONES
    from .data import DATASETS
    from .text import TEXT_ENCODERS

    print("profiles:      ", ", ".join(PROFILES))
    print("datasets:      ", ", ".join(DATASETS.names()))
    print("backbones:     ", ", ".join(BACKBONES.names()))
    print("text encoders: ", ", ".join(TEXT_ENCODERS.names()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="t2w", description="Text2Weight compendium")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks/NN_*.ipynb in order with papermill")
    run.add_argument("--profile", default="cpu", choices=list(PROFILES))
    run.add_argument("--only", nargs="+", help="notebook numbers or names to run (default: all)")
    run.add_argument("--artifacts", help="cache/artifact folder (default: ./artifacts)")
    run.add_argument("--figures", help="figure folder (default: ./figures/<profile>)")
    run.add_argument("--run-dir", help="folder for executed notebooks (default: ./runs/<profile>)")
    run.add_argument("--data-root", default="", help="folder holding the datasets (paper profile)")
    run.add_argument("--quiet", action="store_true", help="do not echo notebook output")
    run.set_defaults(func=_run)
    gen = sub.add_parser("generate", help="generate a classifier for the given classes with a trained generator")
    gen.add_argument("--generator", required=True, help="a generator folder written by 02_train "
                     "(artifacts/generator/<profile>/<dataset>-<variant>-s<seed>-<digest>)")
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--classes", help='comma-separated class names, e.g. "sneaker,sandal,bag"')
    src.add_argument("--classes-file", help='one class per line, optionally "name: description"')
    gen.add_argument("--out", required=True, help="classifier file to write (.safetensors)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--steps", type=int, default=20, help="DDIM sampling steps")
    gen.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1 = off)")
    gen.set_defaults(func=_generate)
    pred = sub.add_parser("predict", help="apply a generated classifier to image files")
    pred.add_argument("--classifier", required=True)
    pred.add_argument("images", nargs="+")
    pred.set_defaults(func=_predict)
    info = sub.add_parser("info", help="list profiles and registered datasets, backbones, text encoders")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as err:  # bad input: a clear message, no traceback
        print(f"[t2w] error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
