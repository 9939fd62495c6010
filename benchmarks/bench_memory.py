"""Benchmark: peak memory and time of `invoke diff` on one large manifests file.

A file of about 50 MB (some 56,000 cdk8s-shaped Deployments) in dist/, diffed as a real
`invoke diff --no-synth` subprocess against a directory holding the same file (everything
unchanged) and against an empty one (everything added, every object rendered). Prints the wall
time and the peak resident memory of each, and the peak as a multiple of the file's size (goal:
under 10x).

    python benchmarks/bench_memory.py [--megabytes 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_publish import manifest  # noqa: E402
from tests.conftest import write_invoke_yaml  # noqa: E402


def write_big_file(path: Path, size: int) -> int:
    """Deployments one after another until ``size`` bytes; the number written."""
    count = 0
    with path.open("wb") as out:
        while out.tell() < size:
            out.write(b"---\n" + manifest(count))
            count += 1
    return count


def diff(project: Path, against: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one `invoke diff` subprocess."""
    script = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "assert done.returncode == 0, done.stderr.decode()[-2000:]\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    command = [sys.executable, "-m", "invoke", "diff", "--no-synth", "--against", str(against)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", script, *command],
        cwd=project, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return time.perf_counter() - started, int(out.stdout) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        root = Path(tmp)
        project = root / "project"
        (project / "dist").mkdir(parents=True)
        for name in ("tasks.py", "cdk8s.yaml"):
            shutil.copy2(ROOT / name, project / name)
        write_invoke_yaml(project)
        big = project / "dist" / "big.k8s.yaml"
        count = write_big_file(big, args.megabytes * 1_000_000)
        size = big.stat().st_size
        same, empty = root / "same", root / "empty"
        same.mkdir()
        empty.mkdir()
        shutil.copy2(big, same / big.name)
        print(f"file: {size / 1e6:.1f} MB, {count} Deployments; python {sys.version.split()[0]}")
        print(f"{'against':<28}{'time':>8}{'peak RSS':>11}{'peak / file':>13}")
        for label, against in (("the same file (unchanged)", same), ("nothing (all added)", empty)):
            seconds, peak = diff(project, against)
            print(f"{label:<28}{seconds:>7.1f}s{peak / 1e6:>8.0f} MB{peak / size:>12.1f}x")


if __name__ == "__main__":
    main()
