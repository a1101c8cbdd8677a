"""The setup script's installer, side by side: pip against uv (PyPI's `uv`, what scripts/setup.sh uses),
each into a new virtual environment with an empty cache of its own (so both download from the registry),
both compiling bytecode (pip's default; uv's with --compile-bytecode, as setup asks), installing what
setup installs: the torch pins, then t2wlib[notebooks,test] under constraints.txt. Checks that both end
with the same versions. Prints a table and saves benchmarks/results/bench_setup.json.

    python3 benchmarks/bench_setup.py
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "bench_setup.json"


def setup_value(name: str) -> str:
    """A shell variable's value in scripts/setup.sh (the pins this benchmark installs)."""
    return re.search(rf"^{name}=(.*)$", (REPO / "scripts" / "setup.sh").read_text(), re.M).group(1)


TORCH_PINS = re.findall(r'"([^"]+)"', setup_value("TORCH_PINS"))
UV_PIN = setup_value("UV_PIN").strip('"')


def run(cmd: list[str], env: dict) -> None:
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def install(installer: str, workdir: Path) -> dict:
    """Seconds to create the venv and install everything with `installer`, and the versions it ended with."""
    venv = workdir / f"venv-{installer}"
    env = dict(os.environ, PIP_CACHE_DIR=str(workdir / "pip-cache"), UV_CACHE_DIR=str(workdir / f"uv-cache-{installer}"))
    py = str(venv / "bin" / "python")
    start = time.perf_counter()
    run([sys.executable, "-m", "venv", str(venv)], env)
    if installer == "pip":
        def add(*args: str) -> None:
            run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], env)
    else:
        run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", UV_PIN], env)

        def add(*args: str) -> None:
            run([str(venv / "bin" / "uv"), "pip", "install", "-q", "--compile-bytecode", "--python", py, *args], env)
    add(*TORCH_PINS)
    add("-c", "constraints.txt", "-e", ".[notebooks,test]")
    seconds = time.perf_counter() - start
    listed = subprocess.run([py, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                            capture_output=True, text=True, check=True).stdout
    versions = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed)}
    return {"seconds": round(seconds, 1), "versions": versions}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="t2w-bench-setup-") as tmp:
        results = {name: install(name, Path(tmp)) for name in ("pip", "uv")}
    pip_v, uv_v = results["pip"]["versions"], results["uv"]["versions"]
    tools = {"pip", "setuptools", "uv"}  # the installers themselves, not what they install
    differ = sorted(n for n in (set(pip_v) | set(uv_v)) - tools if pip_v.get(n) != uv_v.get(n))
    record = {
        "what": "new venv + torch pins + t2wlib[notebooks,test] under constraints.txt, each installer with an empty cache",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "pip_seconds": results["pip"]["seconds"],
        "uv_seconds": results["uv"]["seconds"],
        "pip_over_uv": round(results["pip"]["seconds"] / results["uv"]["seconds"], 2),
        "packages": len(uv_v),
        "versions_that_differ": differ,
    }
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    print(f"pip {record['pip_seconds']} s, uv {record['uv_seconds']} s (pip/uv {record['pip_over_uv']}x); "
          f"{record['packages']} packages, versions that differ: {differ or 'none'}")
    if differ:
        sys.exit(1)


if __name__ == "__main__":
    main()
