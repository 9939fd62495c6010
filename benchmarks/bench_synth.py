"""Benchmark: `invoke synth` against running the cdk8s app directly, side by side in one run.

Two apps: the example app in charts/, and a generated app of 1,000 Deployments each exposed by a
Service (2,000 objects). For each, the median wall time of the app run directly (`python app.py`
with CDK8S_OUTDIR and the same Node, no shell), of `invoke synth --no-validate` and of `invoke
synth` (which run `app:` through `/bin/sh -c`, as `cdk8s synth` does), run interleaved, and the
overhead ratios; the goal is synth with validation at most 1.5 times the app run directly. One
warm-up run of each fills the compiled-schema cache first (a first run ever compiles each kind's
schema once; printed too).

    python benchmarks/bench_synth.py [--runs 5]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitopskit.node import find_node  # noqa: E402
from tests.conftest import write_invoke_yaml  # noqa: E402

GENERATED_APP = """\
from cdk8s import App, Chart
import cdk8s_plus_34 as kplus

app = App()
for c in range(10):
    chart = Chart(app, f"team{c}", namespace=f"team{c}")
    for d in range(100):
        deployment = kplus.Deployment(
            chart, f"app{d}",
            containers=[kplus.ContainerProps(image=f"registry.example.com/app{d}:1.0",
                                             port_number=8080)],
        )
        deployment.expose_via_service()
app.synth()
"""


def make_project(kind: str, where: Path) -> Path:
    project = where / kind
    project.mkdir()
    shutil.copy2(ROOT / "tasks.py", project / "tasks.py")
    write_invoke_yaml(project)  # one environment: the app runs once, as `cdk8s synth` runs it
    if kind == "example":
        shutil.copytree(ROOT / "charts", project / "charts")
        shutil.copy2(ROOT / "cdk8s.yaml", project / "cdk8s.yaml")
    else:
        (project / "app.py").write_text(GENERATED_APP)
        (project / "cdk8s.yaml").write_text("app: python app.py\n")
    return project


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        where = Path(tmp)
        env = {
            **os.environ,
            "JSII_NODE": str(find_node()),
            "XDG_CACHE_HOME": str(where / "cache"),
            "NO_COLOR": "1",
            "PATH": os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")]),
        }
        print(f"{'app':<22}{'direct':>9}{'synth -V':>10}{'synth':>9}{'ratio -V':>10}{'ratio':>8}")
        for kind in ("example", "generated-1000"):
            project = make_project(kind, where)
            app = ["python", "charts/main.py"] if kind == "example" else ["python", "app.py"]
            direct_env = {**env, "CDK8S_OUTDIR": str(where / f"{kind}-direct")}
            invoke = [python, "-m", "invoke", "synth"]
            cold = timed(invoke, project, env)  # fills the compiled-schema cache
            timed(app, project, direct_env)
            # Interleaved, so that a slow spell of the machine hits all three alike.
            times: dict[str, list[float]] = {"direct": [], "no-validate": [], "validate": []}
            for _ in range(args.runs):
                times["direct"].append(timed(app, project, direct_env))
                times["no-validate"].append(timed([*invoke, "--no-validate"], project, env))
                times["validate"].append(timed(invoke, project, env))
            direct, no_validate, validate = (
                statistics.median(times[k]) for k in ("direct", "no-validate", "validate")
            )
            print(
                f"{kind:<22}{direct:>8.2f}s{no_validate:>9.2f}s{validate:>8.2f}s"
                f"{no_validate / direct:>10.2f}{validate / direct:>8.2f}"
                f"   (first synth ever, compiling schemas: {cold:.2f}s)"
            )


if __name__ == "__main__":
    main()
