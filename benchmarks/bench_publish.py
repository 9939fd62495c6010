"""Benchmark: `invoke publish --no-synth` against a manifests repository of 2,000 files, with
5,000 commits of history and with 50, side by side in one run.

The repository is served by the GitLab fake of the tests (real HTTP, real `git http-backend`).
Measured per history length: a no-op publish (the target branch already holds exactly these
manifests) and a one-change publish (one object differs: the branch is rebuilt, pushed and the
merge request updated; each run changes another object). Goals: a no-op publish <= 3 s, and the
long history costing <= 1.2x the short one (the clone is shallow).

    python benchmarks/bench_publish.py [--runs 3]
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

from gitopskit.tree import INDEX_FILE, index_bytes  # noqa: E402
from tests.conftest import write_invoke_yaml  # noqa: E402
from tests.fakes.gitlab import DEVELOPER, FakeGitLab  # noqa: E402

FILES = 2000
TOKEN = "glpat-benchmark-token-0000000000"


def manifest(i: int, revision: int = 0) -> bytes:
    """One Deployment of about 800 bytes, cdk8s-shaped."""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app.kubernetes.io/name: app{i}
    app.kubernetes.io/part-of: bench
  name: app{i}
  namespace: team{i % 10}
spec:
  replicas: {2 + revision % 3}
  selector:
    matchLabels:
      cdk8s.io/metadata.addr: app{i}-c8{i:06x}
  template:
    metadata:
      labels:
        cdk8s.io/metadata.addr: app{i}-c8{i:06x}
    spec:
      automountServiceAccountToken: false
      containers:
        - image: registry.example.com/app{i}:1.{revision}
          imagePullPolicy: Always
          name: main
          ports:
            - containerPort: 8080
          resources:
            limits:
              cpu: 1500m
              memory: 2048Mi
            requests:
              cpu: 1000m
              memory: 512Mi
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
""".encode()


def name(i: int) -> str:
    return f"app{i:04d}.k8s.yaml"


def fast_import(repo: Path, commits: int) -> None:
    """``commits`` commits on main, each touching one manifest; the last writes the final tree."""
    stream = bytearray()
    for number in range(1, commits + 1):
        stream += b"commit refs/heads/main\n"
        stream += f"committer Bench <bench@example.com> {1_700_000_000 + number} +0000\n".encode()
        message = f"change {number}\n".encode()
        stream += b"data %d\n%s" % (len(message), message)
        if number == commits:
            files = {name(i): manifest(i) for i in range(FILES)}
            files[INDEX_FILE] = index_bytes(list(files))
            files["README.md"] = b"# manifests\n"
        else:
            files = {name(number % FILES): manifest(number % FILES, revision=number)}
        for path, content in files.items():
            stream += f"M 100644 inline {path}\ndata {len(content)}\n".encode() + content + b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=bytes(stream), check=True)


def publish(project: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "invoke", "publish", "--no-synth"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp,
        FakeGitLab(Path(tmp) / "gitlab") as gitlab,
    ):
        where = Path(tmp)
        gitlab.add_user("project_bot", TOKEN, access_level=DEVELOPER)
        project = where / "project"
        project.mkdir()
        shutil.copy2(ROOT / "tasks.py", project / "tasks.py")
        write_invoke_yaml(project)
        dist = project / "dist"
        dist.mkdir()
        for i in range(FILES):
            (dist / name(i)).write_bytes(manifest(i))
        print(f"{'history':<10}{'no-op':>8}{'one change':>12}")
        results: dict[int, tuple[float, float]] = {}
        for commits in (5000, 50):
            path = f"bench/manifests-{commits}"
            repo = gitlab.add_project(path)
            fast_import(repo.repo_path, commits)
            env = {
                **os.environ,
                "GITLAB_URL": gitlab.url,
                "MANIFESTS_PROJECT": path,
                "MANIFESTS_TOKEN": TOKEN,
                "NO_COLOR": "1",
            }
            publish(project, env)  # warm-up: the page cache, Python's imports
            no_op = statistics.median(publish(project, env) for _ in range(args.runs))
            changes = []
            for run in range(args.runs):
                changed = dist / name(run)
                changed.write_bytes(manifest(run, revision=100 + run))
                changes.append(publish(project, env))
                changed.write_bytes(manifest(run))
            one_change = statistics.median(changes)
            results[commits] = (no_op, one_change)
            print(f"{commits:<10}{no_op:>7.2f}s{one_change:>11.2f}s")
        long, short = results[5000], results[50]
        print(
            f"{'ratio':<10}{long[0] / short[0]:>7.2f}x{long[1] / short[1]:>11.2f}x"
            "   (5,000 commits / 50 commits)"
        )


if __name__ == "__main__":
    main()
