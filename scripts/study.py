"""What the study scripts share: their command line (--profile, --datasets, --artifacts) and each
dataset's zoo and cached test features, as the notebooks load them."""

from __future__ import annotations

import argparse
from pathlib import Path

from t2wlib import backbones, features, zoo
from t2wlib.cache import TensorCache
from t2wlib.profiles import get_profile
from t2wlib.runtime import resolve_device

REPO = Path(__file__).resolve().parent.parent


class Study:
    """Parsed arguments, the profile, its device, and `datasets()`: (name, zoo, test features) per dataset."""

    def __init__(self, description: str):
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--profile", default="cpu")
        parser.add_argument("--datasets", nargs="+", help="default: the profile's datasets")
        parser.add_argument("--artifacts", default=str(REPO / "artifacts"))
        self.args = parser.parse_args()
        self.artifacts = self.args.artifacts
        self.profile = get_profile(self.args.profile)
        self.device = resolve_device(self.profile.device)
        self.figures = REPO / "figures" / self.profile.name

    def datasets(self):
        cache = TensorCache(Path(self.artifacts) / "cache")
        backbone = backbones.load_backbone(self.profile.backbone, device=self.device)
        for name in self.args.datasets or self.profile.datasets:
            z = zoo.load_zoo(zoo.zoo_path(self.artifacts, self.profile, name))
            test = features.profile_features(self.profile, name, "test", backbone, cache,
                                             Path(self.artifacts) / "data", self.device)
            yield name, z, test
