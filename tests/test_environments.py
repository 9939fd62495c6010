"""Environments (issue 11): one chart set, many clusters, each rendered, compared, published and
bootstrapped on its own path; without environments everything behaves as before."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitopskit.environments import Environment, parse, select
from gitopskit.errors import ConfigError
from tests.conftest import ROOT, invoke_clean
from tests.fakes.gitlab import DEVELOPER, FakeGitLab
from tests.hostile.conftest import git
from tests.trees import snapshot

TOKEN = "glpat-environments-0123456789"
PROJECT = "platform/k8s-manifests"
CI = {
    "CI_PROJECT_PATH_SLUG": "shop-app",
    "CI_COMMIT_TITLE": "Scale everything",
    "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
}

#: An app that renders one ConfigMap per environment from what gitopskit hands it, the way the
#: example charts read it (charts/settings.py): the name and the values as JSON.
APP = """\
import json, os, pathlib, sys
name = os.environ.get("GITOPSKIT_ENV", "none")
values = json.loads(os.environ.get("GITOPSKIT_ENV_VALUES") or "{}")
if values.get("fail"):
    sys.exit("chart for " + name + " failed")
out = pathlib.Path(os.environ["CDK8S_OUTDIR"])
data = {"environment": name, **{k: str(v) for k, v in values.items()}}
cm = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "settings", "namespace": "shop"}, "data": data}
(out / "app.k8s.yaml").write_text(json.dumps(cm) + "\\n")
"""

ENVIRONMENTS = {
    "dev": {"values": {"replicas": 1}, "auto_merge": True},
    "staging": {"path": "clusters/staging", "values": {"replicas": 2}},
    "prod": {"path": "prod-cluster", "values": {"replicas": 3}},
}


def make_project(root: Path, environments: dict[str, Any] | None = ENVIRONMENTS) -> Path:
    root.mkdir(parents=True)
    shutil.copy2(ROOT / "tasks.py", root / "tasks.py")
    (root / "app.py").write_text(APP)
    (root / "cdk8s.yaml").write_text("app: python app.py\n")
    settings: dict[str, Any] = {"outdir": "dist"}
    if environments is not None:
        settings["environments"] = environments
    (root / "invoke.yaml").write_text(yaml.safe_dump({"gitopskit": settings}))
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


def invoke(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return invoke_clean(project, *args, env=env)


# --- declaring ---------------------------------------------------------------------------------


def test_declarations_are_checked_naming_what_is_wrong() -> None:
    with pytest.raises(ConfigError, match="unknown key replica") as caught:
        parse({"dev": {"replica": 1}})
    assert "path, values, auto_merge, context" in str(caught.value)
    with pytest.raises(ConfigError, match="lower-case letters"):
        parse({"Dev_1": {}})
    with pytest.raises(ConfigError, match="share the path clusters/x"):
        parse({"a": {"path": "clusters/x"}, "b": {"path": "clusters/x/y"}})
    with pytest.raises(ConfigError, match="not plainly inside"):
        parse({"a": {"path": "../elsewhere"}})
    with pytest.raises(ConfigError, match="values must be a mapping"):
        parse({"a": {"values": [1]}})
    # YAML's .nan and .inf have no JSON spelling: JSON.parse of a TypeScript chart refuses NaN.
    for number in (float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="values must be plain YAML"):
            parse({"a": {"values": {"ratio": number}}})
    declared = parse({"dev": None, "prod": {"context": "kind-prod"}})
    assert declared == [
        Environment("dev", "clusters/dev"),
        Environment("prod", "clusters/prod", context="kind-prod"),
    ]
    assert select(declared, ["prod"]) == [declared[1]]
    with pytest.raises(ConfigError, match="--env qa: no such environment"):
        select(declared, ["qa"])
    with pytest.raises(ConfigError, match="no environments are declared"):
        select([], ["dev"])


def test_an_unknown_environment_key_fails_the_task_in_one_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", {"dev": {"valeus": {}}})
    done = invoke(project, "synth")
    assert done.returncode == 1
    assert "unknown key valeus" in done.stderr and "Traceback" not in done.stderr


# --- synth -------------------------------------------------------------------------------------


def test_synth_renders_every_environment_with_its_values(project: Path) -> None:
    done = invoke(project, "synth")
    assert done.returncode == 0, done.stderr
    for name, replicas in (("dev", "1"), ("staging", "2"), ("prod", "3")):
        cm = json.loads((project / "dist" / name / "app.k8s.yaml").read_text())
        assert cm["data"] == {"environment": name, "replicas": replicas}
    assert "3 environments" in done.stderr


def test_synth_env_limits_the_run(project: Path) -> None:
    done = invoke(project, "synth", "--env", "staging")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (project / "dist").iterdir()) == ["staging"]


def test_a_failure_in_one_environment_names_it_and_changes_no_output(
    project: Path,
) -> None:
    assert invoke(project, "synth").returncode == 0
    before = snapshot(project / "dist")
    settings = yaml.safe_load((project / "invoke.yaml").read_text())
    settings["gitopskit"]["environments"]["staging"]["values"] = {"replicas": 9, "fail": True}
    settings["gitopskit"]["environments"]["dev"]["values"] = {"replicas": 7}
    (project / "invoke.yaml").write_text(yaml.safe_dump(settings))
    done = invoke(project, "synth")
    assert done.returncode == 1
    assert "environment staging:" in done.stderr and "chart for staging failed" in done.stderr
    assert snapshot(project / "dist") == before  # dev's good output did not go in either
    assert not [p for p in (project / "dist").iterdir() if p.name.startswith(".")]


def test_without_environments_the_output_is_the_outdir_itself(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", environments=None)
    done = invoke(project, "synth")
    assert done.returncode == 0, done.stderr
    cm = json.loads((project / "dist" / "app.k8s.yaml").read_text())
    assert cm["data"] == {"environment": "none"}


# --- diff --------------------------------------------------------------------------------------


def _manifests(tmp_path: Path) -> Path:
    """A manifests tree where dev is current, staging differs and prod is missing."""
    tree = tmp_path / "manifests"
    for path, replicas in (("clusters/dev", "1"), ("clusters/staging", "1")):
        (tree / path).mkdir(parents=True)
        data = {"environment": path.split("/")[1], "replicas": replicas}
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "shop"},
            "data": data,
        }
        (tree / path / "app.k8s.yaml").write_text(json.dumps(cm) + "\n")
    return tree


def test_diff_compares_each_environment_with_its_path(project: Path, tmp_path: Path) -> None:
    against = str(_manifests(tmp_path))
    done = invoke(project, "diff", "--format", "json", "--against", against)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["environments"]["dev"]["unchanged"] == 1
    assert document["environments"]["staging"]["changed"] == 1
    assert document["environments"]["prod"]["added"] == 1
    assert document["summary"]["unchanged"] == 1 and document["summary"]["added"] == 1
    assert sorted(r["environment"] for r in document["resources"]) == ["prod", "staging"]
    text = invoke(project, "diff", "--no-synth", "--against", against)
    assert "=== environment staging (clusters/staging) ===" in text.stdout
    assert "=== environment prod (prod-cluster) ===" in text.stdout
    markdown = invoke(project, "diff", "--no-synth", "--format", "markdown", "--against", against)
    assert markdown.stdout.count(" to delete") == 3  # a plan line per environment
    assert "#### Environment `prod` (`prod-cluster`)" in markdown.stdout
    only = invoke(
        project, "diff", "--no-synth", "--format", "json", "--env", "dev", "--against", against,
        "--exit-code",
    )  # fmt: skip
    assert only.returncode == 0, only.stderr
    assert list(json.loads(only.stdout)["environments"]) == ["dev"]


# --- publish -----------------------------------------------------------------------------------


@pytest.fixture
def gitlab(tmp_path: Path) -> Any:
    with FakeGitLab(tmp_path / "gitlab") as fake:
        fake.add_user("bot", TOKEN, access_level=DEVELOPER)
        yield fake


def gitlab_env(gitlab: FakeGitLab) -> dict[str, str]:
    return {**CI, "GITLAB_URL": gitlab.url, "MANIFESTS_PROJECT": PROJECT, "MANIFESTS_TOKEN": TOKEN}


def test_publish_writes_every_environment_in_one_merge_request(
    project: Path, gitlab: FakeGitLab
) -> None:
    manifests = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    done = invoke(project, "publish", **gitlab_env(gitlab))
    assert done.returncode == 0, done.stderr
    (mr,) = manifests.merge_requests
    assert mr["source_branch"] == "gitopskit/shop-app"
    files = set(manifests.list_files("gitopskit/shop-app"))
    for path in ("clusters/dev", "clusters/staging", "prod-cluster"):
        assert {f"{path}/app.k8s.yaml", f"{path}/.gitopskit-files"} <= files
    assert "#### Environment `staging`" in mr["description"]
    assert done.stdout == mr["web_url"] + "\n"
    again = invoke(project, "publish", **gitlab_env(gitlab))
    assert again.returncode == 0 and len(manifests.merge_requests) == 1


def test_publish_env_opens_its_own_merge_request_with_its_auto_merge(
    project: Path, gitlab: FakeGitLab
) -> None:
    manifests = gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    dev = invoke(project, "publish", "--env", "dev", **gitlab_env(gitlab))
    assert dev.returncode == 0, dev.stderr
    prod = invoke(project, "publish", "--env", "prod", **gitlab_env(gitlab))
    assert prod.returncode == 0, prod.stderr
    by_branch = {mr["source_branch"]: mr for mr in manifests.merge_requests}
    assert set(by_branch) == {"gitopskit/shop-app-dev", "gitopskit/shop-app-prod"}
    assert by_branch["gitopskit/shop-app-dev"]["merge_when_pipeline_succeeds"] is True
    assert not by_branch["gitopskit/shop-app-prod"].get("merge_when_pipeline_succeeds")
    prod_files = manifests.list_files("gitopskit/shop-app-prod")
    assert "prod-cluster/app.k8s.yaml" in prod_files
    assert not any(f.startswith("clusters/") for f in prod_files)


def test_an_environment_removed_from_invoke_yaml_is_left_alone_unless_allow_empty(
    project: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "manifests.git"
    git("init", "--quiet", "--bare", bare)
    env = {"MANIFESTS_GIT_URL": str(bare)}
    assert invoke(project, "publish", "--merge", **env).returncode == 0
    settings = yaml.safe_load((project / "invoke.yaml").read_text())
    del settings["gitopskit"]["environments"]["staging"]
    settings["gitopskit"]["environments"]["dev"]["values"] = {"replicas": 5}
    (project / "invoke.yaml").write_text(yaml.safe_dump(settings))
    done = invoke(project, "publish", "--merge", **env)
    assert done.returncode == 0, done.stderr
    assert "clusters/staging holds manifests gitopskit published for an environment no longer" in (
        done.stderr
    )
    files = git("-C", bare, "ls-tree", "-r", "--name-only", "main").split()
    assert "clusters/staging/app.k8s.yaml" in files  # never deleted silently
    assert "publish --allow-empty removes them" in done.stderr
    # Publishing one environment never retires another's directory.
    only = invoke(project, "publish", "--merge", "--env", "dev", "--allow-empty", **env)
    assert only.returncode == 0, only.stderr
    assert "clusters/staging/app.k8s.yaml" in git("-C", bare, "ls-tree", "-r", "--name-only",
                                                  "main").split()  # fmt: skip
    # Asked for: what gitopskit published there goes, in the one commit, shown as removed.
    dry = invoke(project, "publish", "--dry-run", "--allow-empty", **env)
    assert dry.returncode == 0, dry.stderr
    assert "compare   staging (removed from invoke.yaml): 1 to delete" in dry.stderr
    retired = invoke(project, "publish", "--merge", "--allow-empty", **env)
    assert retired.returncode == 0, retired.stderr
    files = git("-C", bare, "ls-tree", "-r", "--name-only", "main").split()
    assert not [f for f in files if f.startswith("clusters/staging/")]
    assert {"clusters/dev/app.k8s.yaml", "prod-cluster/app.k8s.yaml"} <= set(files)
    again = invoke(project, "publish", "--merge", "--allow-empty", **env)
    assert again.returncode == 0 and "no longer declared" not in again.stderr


# --- flux-bootstrap ----------------------------------------------------------------------------


def test_flux_bootstrap_env_uses_its_context_and_path_and_names_it(
    tmp_path: Path, gitlab: FakeGitLab
) -> None:
    gitlab.add_user("maintainer", "glpat-maintainer-0123456789", access_level=40)
    gitlab.add_project(PROJECT, initial_files={"README.md": "hi\n"})
    environments = {"prod": {"path": "clusters/prod", "context": "kind-prod"}}
    project = make_project(tmp_path / "p", environments)
    shutil.copytree(ROOT / "flux", project / "flux")
    home = tmp_path / "home"
    home.mkdir()
    done = invoke(
        project, "flux-bootstrap", "--dry-run", "--env", "prod",
        "--git-url", "ssh://git@127.0.0.1:1/platform/k8s-manifests.git", "--git-branch", "main",
        HOME=str(home), GITLAB_URL=gitlab.url, MANIFESTS_PROJECT=PROJECT,
        GITLAB_TOKEN="glpat-maintainer-0123456789", GITOPSKIT_NETWORK_TIMEOUT="5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--context kind-prod" in done.stderr or "--kube-context kind-prod" in done.stderr
    assert "path: ./clusters/prod" in done.stderr
    assert "'flux prod kind-prod/flux-system'" in done.stderr
    unknown = invoke(project, "flux-bootstrap", "--dry-run", "--env", "qa", HOME=str(home))
    assert unknown.returncode == 1 and "--env qa: no such environment" in unknown.stderr


def test_flux_bootstrap_without_env_is_refused_when_environments_are_declared(
    project: Path, tmp_path: Path
) -> None:
    """Syncing the root would apply every environment's manifests to this one cluster."""
    home = tmp_path / "home"
    home.mkdir()
    done = invoke(
        project, "flux-bootstrap", "--dry-run",
        "--git-url", "ssh://git@127.0.0.1:1/platform/k8s-manifests.git", "--git-branch", "main",
        HOME=str(home),
    )  # fmt: skip
    assert done.returncode == 1
    assert "environments are declared in invoke.yaml (dev, prod, staging)" in done.stderr
    assert "--env NAME" in done.stderr and "Traceback" not in done.stderr


def test_the_local_merge_hint_names_the_environment(project: Path, tmp_path: Path) -> None:
    bare = tmp_path / "manifests.git"
    git("init", "--quiet", "--bare", bare)
    done = invoke(project, "publish", "--env", "prod", MANIFESTS_GIT_URL=str(bare))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "gitopskit/local-prod\n"
    assert "invoke publish --merge --env prod" in done.stderr
    merged = invoke(project, "publish", "--merge", "--env", "prod", MANIFESTS_GIT_URL=str(bare))
    assert merged.returncode == 0, merged.stderr
    assert git("-C", bare, "branch", "--list").split() == ["main"]


def test_several_environments_publish_on_one_branch_whatever_the_order(
    project: Path, tmp_path: Path
) -> None:
    # "dev" and "prod" together must not share a branch with an environment named "dev-prod",
    # and the order of the flags must not make a second branch.
    bare = tmp_path / "manifests.git"
    git("init", "--quiet", "--bare", bare)
    first = invoke(project, "publish", "--env", "prod", "--env", "dev", MANIFESTS_GIT_URL=str(bare))
    assert first.returncode == 0, first.stderr
    assert first.stdout == "gitopskit/local-dev+prod\n"
    again = invoke(project, "publish", "--env", "dev", "--env", "prod", MANIFESTS_GIT_URL=str(bare))
    assert again.stdout == "gitopskit/local-dev+prod\n"
    assert "invoke publish --merge --env dev --env prod" in again.stderr
