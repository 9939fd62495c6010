"""Benchmark (not a test): the diff engine against merely parsing both trees.

Two trees of 2,000 resources (1,000 Deployments, each with a Service, in 20 cdk8s-style
``<chart>.k8s.yaml`` files, about 1.6 MB each), 1% of resources changed. Prints the wall time of
a whole diff (load both trees, compare and review, render text and JSON), the time merely to
parse both trees with PyYAML's CSafeLoader (the fastest loader we know of; ruamel.yaml's C safe
loader took 2.7x as long, measured 2026-11-30, and gitopskit no longer depends on it), the ratio
(goal: ≤ 1.2), the part of comparing,
reviewing and rendering alone (trees already loaded), and peak memory (goal: < 300 MB). Parse
and diff runs are interleaved, so that a machine shared with other work slows both alike.

    python benchmarks/bench_diff.py
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gitopskit import diff, render
from gitopskit.tree import DirectoryReader, load_output, load_owned

CHARTS = 20
APPS_PER_CHART = 50  # x (Deployment + Service) x CHARTS = 2,000 resources
CHANGED_EVERY = 100  # 1% of resources
RUNS = 5


def deployment(chart: str, index: int, replicas: int, image: str) -> dict[str, Any]:
    name = f"{chart}-app{index:03d}-deployment-c8a1b2f3"
    labels = {
        "app.kubernetes.io/name": f"app{index:03d}",
        "app.kubernetes.io/part-of": chart,
        "cdk8s.io/metadata.addr": f"{chart}-app{index:03d}-Deployment-c8a1b2f3",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"labels": labels, "name": name, "namespace": chart},
        "spec": {
            "minReadySeconds": 0,
            "progressDeadlineSeconds": 600,
            "replicas": replicas,
            "selector": {
                "matchLabels": {"cdk8s.io/metadata.addr": labels["cdk8s.io/metadata.addr"]}
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "env": [
                                {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "FEATURE_FLAG", "value": "on"},
                            ],
                            "image": image,
                            "imagePullPolicy": "Always",
                            "name": "main",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "resources": {
                                "limits": {"cpu": "1500m", "memory": "2048Mi"},
                                "requests": {"cpu": "1000m", "memory": "512Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "privileged": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                            },
                        }
                    ],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "securityContext": {"fsGroupChangePolicy": "Always", "runAsNonRoot": True},
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
    }


def service(chart: str, index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"{chart}-app{index:03d}-service-5d6e7f80",
            "namespace": chart,
            "labels": {"app.kubernetes.io/name": f"app{index:03d}"},
        },
        "spec": {
            "externalIPs": [],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"cdk8s.io/metadata.addr": f"{chart}-app{index:03d}-Deployment-c8a1b2f3"},
            "type": "ClusterIP",
        },
    }


def write_tree(root: Path, changed: bool) -> int:
    root.mkdir(parents=True)
    count = 0
    total = 0
    for c in range(CHARTS):
        chart = f"chart{c:02d}"
        objects = []
        for i in range(APPS_PER_CHART):
            edit = changed and (count % CHANGED_EVERY == 0)
            objects.append(
                deployment(
                    chart, i, 3 if edit else 2, "registry/app:1.1" if edit else "registry/app:1.0"
                )
            )
            objects.append(service(chart, i))
            count += 2
        text = yaml.dump_all(
            objects, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False
        )
        (root / f"{chart}.k8s.yaml").write_text(text)
        total += len(text)
    return total


def timed(*actions: Callable[[], object]) -> list[float]:
    """The median wall time of each action, run in turns ``RUNS`` times."""
    times: list[list[float]] = [[] for _ in actions]
    for _ in range(RUNS):
        for action, spent in zip(actions, times, strict=True):
            started = time.perf_counter()
            action()
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) for spent in times]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old_root, new_root = Path(tmp) / "old", Path(tmp) / "new"
        size = write_tree(old_root, changed=False)
        write_tree(new_root, changed=True)
        files = sorted(old_root.glob("*.yaml")) + sorted(new_root.glob("*.yaml"))

        def parse_pyyaml() -> None:
            for path in files:
                list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))

        outputs: list[int] = []

        def run_diff() -> None:
            result = diff.diff_against(new_root, str(old_root))
            outputs[:] = [len(render.render_text(result)), len(render.render_json(result))]
            assert result.summary["changed"] == 20, result.summary

        old = load_owned(DirectoryReader(old_root, label="old"))[0]
        new = load_output(new_root).tree

        def compare_and_render() -> None:
            result = diff.compare(old, new)
            render.render_text(result)
            render.render_json(result)

        parse, whole = timed(parse_pyyaml, run_diff)
        (analysis,) = timed(compare_and_render)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    print(
        f"trees:            2 x {CHARTS * APPS_PER_CHART * 2} resources, {size / 1e6:.2f} MB each"
    )
    print(f"python:           {sys.version.split()[0]}, PyYAML {yaml.__version__}")
    print(f"parse (PyYAML CSafeLoader), both trees: {parse:.3f} s")
    print(f"diff (load, compare, render text+JSON): {whole:.3f} s")
    print(f"ratio diff / parse: {whole / parse:.2f} (goal ≤ 1.2)")
    print(f"of which compare, review, render text+JSON (trees loaded): {analysis:.3f} s")
    print(f"peak memory (ru_maxrss): {peak:.0f} MB (goal < 300)")
    print(f"median of {RUNS} runs each; output {outputs[0]} chars text, {outputs[1]} chars JSON")


if __name__ == "__main__":
    main()
