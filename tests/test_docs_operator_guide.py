"""The operator's guide: every ``invoke`` command in it (code blocks and inline code) names a task
that exists with options it accepts, and it covers the path the issue lists."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection
from invoke.context import Context
from invoke.tasks import task

from tests.invoke_calls import (
    check_invoke_call,
    inline_commands,
    invoke_calls,
    load_collection,
    shell_blocks,
)

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs-operator-guide.md"


# Stand-ins with the agreed signature of the Flux tasks, built on another branch, until they
# are merged: from then on the real tasks in tasks.py are checked instead.
@task(iterable=["host_key_fingerprint"], auto_shortflags=False)
def flux_bootstrap(
    c: Context,
    git_url: str | None = None,
    flux_version: str | None = None,
    namespace: str | None = None,
    secret_name: str | None = None,
    git_branch: str | None = None,
    git_path: str | None = None,
    key_type: str | None = None,
    host_key_fingerprint: list[str] | None = None,
    require_pinned_host_key: bool = False,
    context: str | None = None,
    wait: bool = True,
    dry_run: bool = False,
) -> None:
    """Stand-in."""


@task(iterable=["host_key_fingerprint"], auto_shortflags=False)
def flux_rotate_key(
    c: Context,
    git_url: str | None = None,
    flux_version: str | None = None,
    namespace: str | None = None,
    secret_name: str | None = None,
    git_branch: str | None = None,
    git_path: str | None = None,
    key_type: str | None = None,
    host_key_fingerprint: list[str] | None = None,
    require_pinned_host_key: bool = False,
    context: str | None = None,
    wait: bool = True,
    dry_run: bool = False,
) -> None:
    """Stand-in."""


def collection() -> Collection:
    tasks = load_collection()
    for stand_in in (flux_bootstrap, flux_rotate_key):
        if stand_in.name.replace("_", "-") not in tasks.task_names:
            tasks.add_task(stand_in)
    return tasks


def test_every_invoke_command_is_accepted() -> None:
    text = GUIDE.read_text()
    calls = invoke_calls(shell_blocks(text)) + invoke_calls(inline_commands(text))
    tasks = {argv[1] for argv in calls}
    assert {"synth", "diff", "publish", "flux-bootstrap", "flux-rotate-key"} <= tasks
    assert ["invoke", "flux-bootstrap", "--dry-run"] in calls
    checked = collection()
    for argv in calls:
        check_invoke_call(argv, checked)


def test_covers_the_path_from_nothing_to_a_synced_cluster() -> None:
    text = GUIDE.read_text()
    for needle in (
        "write_repository",
        "read_repository",
        "Developer",
        "Maintainer",
        "MANIFESTS_PROJECT",
        "MANIFESTS_TOKEN",
        "MANIFESTS_READ_TOKEN",
        "COMMENT_TOKEN",
        "GITLAB_TOKEN",
        "masked",
        "protected",
        "CI_JOB_TOKEN",
        "git.readonly",
        "syncGarbageCollection",
        "ssh://git@",
        "helm uninstall flux -n flux",
        "What to expect after merging",
    ):
        assert needle in text, needle
