"""What the study scripts share: their command line (--profile, --set, --datasets, --artifacts) and a
`Session` (t2wlib.pipeline.session), so that they load zoos and features exactly as the notebooks do."""

from __future__ import annotations

import argparse
from pathlib import Path

from t2wlib.pipeline.session import Session

REPO = Path(__file__).resolve().parent.parent


def study_session(description: str, script: str) -> tuple[Session, list[str]]:
    """The parsed command line as a Session (its outputs' provenance names `script`) and the datasets
    to study (default: the profile's)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[], help="profile overrides")
    parser.add_argument("--datasets", nargs="+", help="default: the profile's datasets")
    parser.add_argument("--artifacts", default=str(REPO / "artifacts"))
    parser.add_argument("--figures", help="default: figures/<profile>")
    args = parser.parse_args()
    session = Session(args.profile, args.artifacts, args.figures or REPO / "figures" / args.profile, "", args.set, script)
    return session, args.datasets or list(session.profile.datasets)
