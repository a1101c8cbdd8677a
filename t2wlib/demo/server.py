"""`t2w demo`: make sure a generator exists, then serve the page (page.py) with Streamlit on localhost.

With no finished generator in the artifacts folder, the `demo` profile's 01_zoo and 02_train run first
(the smallest generators that give sensible heads on real class names; at most 10 minutes on 2 cores,
benchmarks/results/bench_demo.json). The server gets a temporary folder of its own, the only place the
page writes (a classifier file before it is offered for download, uploads while they are scored), and
removed when the server stops, by Ctrl-C or a kill (SIGTERM)."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .catalogue import find_generators
from .uploads import MAX_UPLOAD_MB

PAGE = Path(__file__).with_name("page.py")
DEMO_PROFILE = "demo"
DEMO_NOTEBOOKS = ["01", "02"]


def ensure_generators(artifacts: Path, build: bool) -> None:
    """Build the demo profile's generators into `artifacts` when it holds no finished generator."""
    if find_generators(artifacts):
        return
    if not build:
        raise ValueError(f"no finished generator under {artifacts}/generator/; run `t2w demo` without --no-build "
                         f"(it builds the demo generators in minutes) or `make run`")
    from ..pipeline.runner import run_pipeline

    print(f"[t2w] no generator in {artifacts}: building the demo profile's (01_zoo, 02_train; about 5 minutes on "
          "2 cores) ...", flush=True)
    # Its tables and executed notebooks go beside the generators, not into the compendium's figures/.
    run_pipeline(DEMO_PROFILE, only=DEMO_NOTEBOOKS, artifacts=artifacts, figures=artifacts / "demo-figures",
                 log_output=True)


def streamlit_command(artifacts: Path, workdir: Path, host: str, port: int, generator: str = "") -> list[str]:
    """The server's command line: headless, no usage statistics, no file watcher, uploads of at
    most MAX_UPLOAD_MB; the page's own arguments after `--`."""
    return [sys.executable, "-m", "streamlit", "run", str(PAGE),
            "--server.address", host, "--server.port", str(port), "--server.headless", "true",
            "--server.maxUploadSize", str(MAX_UPLOAD_MB), "--server.fileWatcherType", "none",
            "--server.runOnSave", "false", "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
            "--client.toolbarMode", "viewer", "--runner.magicEnabled", "false",
            "--theme.base", "light", "--",
            "--artifacts", str(artifacts), "--workdir", str(workdir), "--generator", generator]


def serve(artifacts: Path, host: str = "127.0.0.1", port: int = 8501, generator: str = "", build: bool = True) -> int:
    """Serve the page until it is stopped; returns the server's exit status."""
    if not 1 <= port <= 65535:
        raise ValueError(f"--port {port} is not a port number; allowed: 1 to 65535")
    if generator and not (Path(generator) / "ema.safetensors").is_file():
        raise ValueError(f"--generator {generator} is not a finished generator folder (no ema.safetensors)")
    artifacts = Path(artifacts)
    ensure_generators(artifacts, build)
    with tempfile.TemporaryDirectory(prefix="t2w-demo-") as workdir:
        server = subprocess.Popen(streamlit_command(artifacts.resolve(), Path(workdir), host, port,
                                                    str(Path(generator).resolve()) if generator else ""))
        previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate())
        print(f"[t2w] the page: http://{host}:{port} (Ctrl-C stops it)", flush=True)
        try:
            return server.wait()
        except KeyboardInterrupt:
            server.terminate()
            return server.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
