"""Runs that would lose the reference run or fail deep inside a notebook (docs/ARCHITECTURE.md §6): changed
settings get their own figures folder; a partial run whose prerequisites were built with other settings,
or never, is refused before any kernel starts, with the command that builds them."""

from __future__ import annotations

import pytest

from t2wlib.pipeline import cli
from t2wlib.pipeline.runner import REPO


def test_changed_settings_never_write_into_the_profiles_reference_folder(tmp_path, capsys):
    code = cli.main(["run", "--profile", "smoke", "--set", "zoo_tasks=60", "--only", "99", "--artifacts",
                     str(tmp_path / "a")])
    out, err = capsys.readouterr()
    assert code == 2 and "no notebook matches ['99']" in err  # (stops before any notebook: the folder is only named)
    assert "settings differ from profile smoke's: outputs go to " in out
    folder = out.split("outputs go to ")[1].split(" (--figures")[0]
    assert folder.startswith(str(REPO / "figures" / "smoke-")) and folder != str(REPO / "figures" / "smoke")
    code = cli.main(["run", "--profile", "smoke", "--set", "zoo_tasks=60", "--only", "99", "--artifacts",
                     str(tmp_path / "a")])
    assert folder in capsys.readouterr().out  # the same settings, the same folder


@pytest.mark.parametrize("argv, message", [
    (["run", "--profile", "smoke", "--only", "05", "--set", "gen_steps=1200"],
     "--only 05 needs the zoo of emoji-tiny that 01_zoo builds with these settings, and {a} has none; build it first: "
     "t2w run --profile smoke --only 01 02 05 --set gen_steps=1200 --artifacts {a}"),
    (["run", "--profile", "smoke", "--only", "02"],
     "--only 02 needs the zoo of emoji-tiny that 01_zoo builds with these settings"),
    (["generate", "--profile", "smoke", "--dataset", "fashion-mnist", "--classes", "bag,coat", "--out", "{a}/o.st"],
     "no zoo of fashion-mnist in {a} for these settings: run `t2w run --profile smoke --only 01 02 --artifacts {a}` first"),
])
def test_a_missing_prerequisite_is_one_line_with_the_command_that_builds_it(tmp_path, capsys, argv, message):
    artifacts = tmp_path / "a"
    argv = [a.format(a=artifacts) for a in argv] + ["--artifacts", str(artifacts)]
    if argv[0] == "run":
        argv += ["--figures", str(tmp_path / "f")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(a=artifacts) in err, err
    assert not (tmp_path / "f").exists() and not artifacts.exists()  # nothing made, no kernel started
