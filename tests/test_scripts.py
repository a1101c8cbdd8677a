"""The study scripts' own logic (their library calls are tested with the library)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

from t2wlib.profiles import get_profile


SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))  # the scripts import their shared `study` module


def _script(name: str):
    path = SCRIPTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scaling_points_vary_one_thing_each_at_the_profiles_step_budget():
    profile = get_profile("cpu")
    points = _script("scaling_study").points(profile, 800)
    assert list(points) == ["tasks 200", "tasks 400", "tasks 800", "steps 2000", "model cpu-base"]
    assert dataclasses.replace(profile, **points["tasks 800"]) == profile  # Table 1's generator itself
    for n in (200, 400):
        prof = dataclasses.replace(profile, **points[f"tasks {n}"])
        train = 800 - prof.gen_validation_tasks
        assert train == n and abs(prof.gen_epochs * (train // prof.gen_batch_size) - 1000) <= 10
    assert dataclasses.replace(profile, **points["steps 2000"]).gen_epochs == 2 * profile.gen_epochs
    assert points["model cpu-base"] == {"dit": "cpu-base"}
