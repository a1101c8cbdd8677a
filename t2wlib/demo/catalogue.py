"""The generators a page can offer: the pipeline's own, one per profile and dataset (02_train's, the
one it calibrates and `t2w generate --dataset` uses), found under `<artifacts>/generator/` by their
calibration.json, each described from its verified generator.json (profile, dataset, backbone, text
encoder, the task sizes it was trained on). The pipeline's other generators (Table 2's variants, the
held-out zoos', the seeds of Table 1) are offered when named (`t2w demo --generator DIR`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.files import read_json_checked
from ..generator.t2w import CALIBRATION_FILE, EMA_FILE, GENERATOR_FILE, GeneratorConfig

# Profiles in the order the page offers their generators: the compendium's own first, the demo's last.
PROFILE_ORDER = ("cpu", "paper", "smoke", "demo")


@dataclass(frozen=True)
class GeneratorEntry:
    """One finished generator folder and what it was trained on."""

    directory: Path
    profile: str  # the folder it lies in: <artifacts>/generator/<profile>/
    config: GeneratorConfig
    calibrated: bool

    @property
    def label(self) -> str:
        """How the page names it: '<dataset> (<profile>, <variant>)'."""
        return f"{self.config.dataset} ({self.profile} profile, {self.config.text_variant} texts)"

    @property
    def trained_on(self) -> str:
        cfg = self.config
        low, high = cfg.k_range
        return (f"trained on {cfg.dataset} tasks of {low} to {high} classes, backbone {cfg.backbone} at "
                f"{cfg.image_size} px, text encoder {cfg.text_encoder}; "
                + ("probabilities calibrated" if self.calibrated else "probabilities not calibrated (no calibration.json)"))


def find_generators(artifacts: str | Path, also: str | Path | None = None) -> list[GeneratorEntry]:
    """The generator folder `also` (when given, whatever it holds), then every finished, calibrated
    generator (an EMA file and a calibration.json beside a readable generator.json) under
    `<artifacts>/generator/<profile>/`, the compendium's profiles first; a folder whose generator.json does not verify is
    left out, as one still training is."""
    root = Path(artifacts) / "generator"
    folders = [f for f in sorted(root.glob(f"*/*/{GENERATOR_FILE}")) if (f.parent / CALIBRATION_FILE).is_file()]
    if also:
        folders = [f for f in folders if f.parent.resolve() != Path(also).resolve()] + [Path(also) / GENERATOR_FILE]
    entries = []
    for folder in folders:
        directory = folder.parent
        if not (folder.is_file() and (directory / EMA_FILE).is_file()):
            continue
        try:
            config = GeneratorConfig.from_json(read_json_checked(folder, "generator definition"), folder)
        except ValueError:  # CorruptArtifactError is one: an unreadable folder is not offered
            continue
        if config.backbone is None or config.text_encoder is None:
            continue  # a generator without them cannot make a classifier for images
        entries.append(GeneratorEntry(directory, directory.parent.name, config, (directory / CALIBRATION_FILE).is_file()))
    rank = {p: i for i, p in enumerate(PROFILE_ORDER)}
    named = [e for e in entries if also and e.directory.resolve() == Path(also).resolve()]
    return named + sorted((e for e in entries if e not in named),
                          key=lambda e: (rank.get(e.profile, len(rank)), str(e.directory)))
