"""Provenance of every generated figure and table: profile, seeds, git commit, machine, wall time."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from ..core.files import update_json_entry

PROVENANCE_FILE = "provenance.json"


# Outputs that runs write into tracked folders; their changes do not make the code "dirty".
OUTPUT_PATHS = ("figures", "benchmarks/results")


def git_commit() -> str:
    """HEAD of the repository holding t2wlib, with '+dirty' when tracked files other than run
    outputs differ; 'unknown' outside git."""
    repo = Path(__file__).resolve().parents[2]  # t2wlib/pipeline/provenance.py -> the repository

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return "unknown"
        excludes = [f":(exclude){p}" for p in OUTPUT_PATHS]
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", *excludes).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def record(figures_dir: str | os.PathLike, name: str, profile: str, seeds, wall_s: float | None = None,
           **extra) -> dict:
    """Add or replace the entry for output `name` in `figures_dir/provenance.json` (atomically, and
    under a lock: notebooks run side by side write to one folder)."""
    entry = {
        "profile": profile, "seeds": list(seeds), "commit": git_commit(), "machine": machine(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **({"wall_s": round(wall_s, 2)} if wall_s is not None else {}), **extra,
    }
    update_json_entry(Path(figures_dir) / PROVENANCE_FILE, name, entry, sort_keys=True)
    return entry
