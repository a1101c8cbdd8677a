"""The `t2w` command: `t2w run` executes the notebook pipeline; `t2w info` lists the registries."""

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
    info = sub.add_parser("info", help="list profiles and registered datasets, backbones, text encoders")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
