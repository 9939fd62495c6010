"""Benchmark: `invoke synth` of three environments against one, side by side in one run.

The example app (charts/) with three environments declared (dev, staging, prod, each with its own
values): the median wall time of `invoke synth --env dev` (one environment) and of `invoke synth`
(all three, run in parallel, at most one app per CPU), interleaved, the compiled-schema cache
warm. Goal: three environments in at most twice the time of one on a 2-core machine.

    python benchmarks/bench_environments.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

ENVIRONMENTS = {
    "dev": {"values": {"replicas": 1, "autoscale": False}},
    "staging": {"values": {"replicas": 2, "autoscale": False}},
    "prod": {"values": {"replicas": 3, "autoscale": True}},
}


def synth(project: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "invoke", "synth", *args],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-environments-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        for name in ("tasks.py", "cdk8s.yaml"):
            shutil.copy2(ROOT / name, project / name)
        shutil.copytree(ROOT / "charts", project / "charts")
        settings = {"gitopskit": {"outdir": "dist", "environments": ENVIRONMENTS}}
        (project / "invoke.yaml").write_text(yaml.safe_dump(settings))
        synth(project)  # warm-up: the schema cache, the page cache
        one: list[float] = []
        three: list[float] = []
        for _ in range(args.runs):
            one.append(synth(project, "--env", "dev"))
            three.append(synth(project))
        single, every = statistics.median(one), statistics.median(three)
        print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}, {args.runs} runs each")
        print(f"one environment (--env dev): {single:.2f} s")
        print(f"three environments:          {every:.2f} s")
        print(f"ratio: {every / single:.2f} (goal <= 2.0)")


if __name__ == "__main__":
    main()
