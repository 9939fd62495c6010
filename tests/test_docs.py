"""The documentation (README.md, docs/, flux/README.md) says what the code does.

- Every ``invoke …`` command line, in code blocks and inline code, is one invoke accepts.
- Every option of every task is in the options table of its page, and every option there exists.
- docs/configuration.md is what ``tools/gen_configuration.py`` makes of the code.
- Every relative link leads to a file, and to a heading in it.
- Every ``sh offline`` example runs, as written, where the local tour ends (tests/doc_examples.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from invoke.collection import Collection

from gitopskit.config import SETTINGS, Settings
from gitopskit.environments import parse as parse_environments
from gitopskit.review import CODES
from tests.doc_examples import (
    DOCS,
    ROOT,
    Example,
    Tour,
    copy_tour,
    markdown_files,
    offline_examples,
    run_example,
)
from tests.invoke_calls import (
    check_invoke_call,
    inline_commands,
    invoke_calls,
    load_collection,
    shell_blocks,
)
from tools import gen_configuration

#: The page that documents each task's options.
TASK_PAGES = {
    "synth": "synth.md",
    "diff": "diff.md",
    "publish": "publish.md",
    "flux-bootstrap": "flux.md",
    "flux-rotate-key": "flux.md",
}
_FENCE = re.compile(r"^(```+|~~~+).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def collection() -> Collection:
    return load_collection()


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", markdown_files(), ids=_name)
def test_every_invoke_command_is_accepted(path: Path, collection: Collection) -> None:
    text = path.read_text()
    for argv in invoke_calls(shell_blocks(text)) + invoke_calls(inline_commands(text)):
        check_invoke_call(argv, collection)


def test_every_task_and_the_dry_run_are_shown() -> None:
    calls = []
    for path in markdown_files():
        text = path.read_text()
        calls += invoke_calls(shell_blocks(text)) + invoke_calls(inline_commands(text))
    assert {argv[1] for argv in calls} >= set(TASK_PAGES)
    assert ["invoke", "flux-bootstrap", "--dry-run"] in calls


def options_table(page: Path) -> set[str]:
    """The long options named in the first column of the page's "## Options" table."""
    text = page.read_text()
    section = text[text.index("\n## Options\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `--")]
    return {flag for row in rows for flag in re.findall(r"`(--[a-z][a-z-]*)", row.split("|")[1])}


def task_options(collection: Collection, task: str) -> set[str]:
    """Every long option of a task as a user types it: ``--no-NAME`` too for an option that
    is on by default."""
    flags = set()
    for argument in collection[task].get_arguments():
        name = argument.names[0]
        flags.add(f"--{name}")
        if argument.kind is bool and argument.default is True:
            flags.add(f"--no-{name}")
    return flags


@pytest.mark.parametrize("task", sorted(TASK_PAGES))
def test_every_option_is_on_the_task_page(task: str, collection: Collection) -> None:
    page = DOCS / TASK_PAGES[task]
    missing = task_options(collection, task) - options_table(page)
    assert not missing, f"{_name(page)}: add {sorted(missing)} to the options table of {task}"


@pytest.mark.parametrize("page", sorted(set(TASK_PAGES.values())))
def test_every_option_on_a_task_page_exists(page: str, collection: Collection) -> None:
    tasks = [task for task, name in TASK_PAGES.items() if name == page]
    known = set().union(*(task_options(collection, task) for task in tasks))
    unknown = options_table(DOCS / page) - known
    assert not unknown, f"docs/{page} documents options {sorted(unknown)} that {tasks} lack"


def test_every_warning_code_is_in_the_diff_page() -> None:
    text = (DOCS / "diff.md").read_text()
    section = text[text.index("\n### Warnings\n") :]
    section = section[: section.index("\n## ", 1)]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", section, re.MULTILINE))
    differ = sorted(documented ^ set(CODES))
    assert not differ, f"docs/diff.md's warnings table and review.CODES differ: {differ}"


@pytest.mark.parametrize("path", markdown_files(), ids=_name)
def test_every_invoke_yaml_example_is_valid(path: Path) -> None:
    """A YAML block with a ``gitopskit:`` section is one gitopskit accepts in invoke.yaml."""
    for match in re.finditer(r"^```yaml\n(.*?)^```", path.read_text(), re.MULTILINE | re.DOTALL):
        document = yaml.safe_load(match.group(1))
        if isinstance(document, dict) and "gitopskit" in document:
            section = document["gitopskit"]
            Settings(project=section, environ={})
            parse_environments(section.get("environments"))


def test_the_configuration_page_is_generated_from_the_code(collection: Collection) -> None:
    page = gen_configuration.PAGE
    assert page.read_text() == gen_configuration.render(collection), (
        f"{_name(page)} is out of date: run `{gen_configuration.COMMAND}`"
    )


def test_flags_resolved_in_the_library_exist(collection: Collection) -> None:
    for name, pairs in gen_configuration.RESOLVED_IN_LIBRARY.items():
        assert name in SETTINGS, name
        for task, flag in pairs:
            assert flag in task_options(collection, task), f"{task} {flag} ({name})"


def test_flags_given_to_settings_are_found(collection: Collection) -> None:
    """The probe finds what tasks.py hands to cli.settings, so the flags column is not empty."""
    found = gen_configuration.flags_given_to_settings(collection)
    assert ("diff", "--manifests-path") in found["MANIFESTS_PATH"]
    assert ("flux-bootstrap", "--git-branch") in found["MANIFESTS_TARGET_BRANCH"]
    assert ("flux-rotate-key", "--context") in found["KUBE_CONTEXT"]


def test_every_setting_is_documented() -> None:
    text = gen_configuration.PAGE.read_text()
    for setting in SETTINGS.values():
        assert f"| `{setting.env}` |" in text, setting.env


def test_the_operator_guide_covers_the_path_from_nothing_to_a_synced_cluster() -> None:
    text = (DOCS / "operator-guide.md").read_text()
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
        "ssh://git@",
        "clusters/<name>",
        "invoke flux-bootstrap --env prod",
        "Promotion is a merge request",
        "What to expect after merging",
        "The diff note",
    ):
        assert needle in text, needle


def test_troubleshooting_covers_flux_v1() -> None:
    text = (DOCS / "troubleshooting.md").read_text()
    for needle in ("git.readonly", "syncGarbageCollection", "helm uninstall flux -n flux"):
        assert needle in text, needle


def slug(heading: str, seen: dict[str, int]) -> str:
    """The anchor GitHub gives a heading."""
    base = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
    count = seen.get(base, 0)
    seen[base] = count + 1
    return base if count == 0 else f"{base}-{count}"


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    prose = _FENCE.sub("", path.read_text())
    return {slug(m.group(1), seen) for m in re.finditer(r"^#{1,6} +(.+?) *#*$", prose, re.M)}


@pytest.mark.parametrize("path", markdown_files(), ids=_name)
def test_every_relative_link_resolves(path: Path) -> None:
    prose = _FENCE.sub("", path.read_text())
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{_name(path)}: {target}: no such file"
        if anchor:
            assert anchor in anchors(linked), f"{_name(path)}: {target}: no such heading"


def test_the_hand_made_pipeline_is_named_as_such() -> None:
    """The README's "Why" says once what the hand-made pipeline was; nothing in the repository
    calls it by the name of the text that described it."""
    needle = "the " + "article"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if path.suffix in (".py", ".md", ".yaml", ".yml", ".txt", ".toml") and path.is_file():
            assert needle not in path.read_text().lower(), name


def test_every_task_page_has_runnable_examples() -> None:
    pages = {example.file.name for example in offline_examples()}
    assert {"synth.md", "diff.md", "publish.md", "flux.md"} <= pages


@pytest.mark.parametrize("example", offline_examples(), ids=lambda e: e.name)
def test_offline_example_runs(example: Example, local_tour: Tour, tmp_path: Path) -> None:
    assert local_tour.returncode == 0, "the local tour failed: see test_readme.py"
    done = run_example(example, copy_tour(local_tour, tmp_path))
    assert done.returncode == 0, f"{example.name}\n{example.script}\n{done.stdout}{done.stderr}"
