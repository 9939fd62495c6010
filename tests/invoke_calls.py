"""Check that ``invoke …`` command lines name tasks that exist, with options they accept.

Reusable for any text that holds commands (``.gitlab-ci.yml`` scripts, the README's code
blocks)::

    collection = load_collection()
    for argv in invoke_calls(shell_blocks(readme)):
        check_invoke_call(argv, collection)

Parsing uses invoke's own parser (``invoke.Parser`` over the contexts of the collection loaded
from ``tasks.py``, with the program's core flags first), so what passes here is what ``invoke``
itself accepts: unknown tasks, unknown options and options missing their value are refused.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Iterable
from pathlib import Path

from invoke.collection import Collection
from invoke.exceptions import ParseError
from invoke.parser import Parser
from invoke.parser.context import ParserContext
from invoke.program import Program

ROOT = Path(__file__).resolve().parents[1]
REDIRECTIONS = frozenset({">", ">>", "<", "2>", "&>", ">&"})
SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", "|&", ";;"}
_FENCE = re.compile(
    r"^(?P<fence>```+|~~~+)\s*(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$",
    re.MULTILINE | re.DOTALL,
)
SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console", "shell-session", "zsh"}


class InvokeCallError(AssertionError):
    """An ``invoke`` command line that invoke would refuse."""


def load_collection(tasks_file: Path = ROOT / "tasks.py") -> Collection:
    """The task collection of ``tasks_file``, as ``invoke`` loads it."""
    spec = importlib.util.spec_from_file_location(f"_tasks_{abs(hash(tasks_file))}", tasks_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Collection.from_module(module)


def shell_blocks(markdown: str) -> str:
    """The shell code blocks of a markdown document (untagged, sh, bash, console…), joined."""
    return "\n".join(
        m.group("body") for m in _FENCE.finditer(markdown) if m.group("lang") in SHELL_LANGUAGES
    )


def inline_commands(markdown: str) -> str:
    """The inline code spans of a markdown document that start with ``invoke``, one a line
    (fenced blocks excluded)."""
    prose = _FENCE.sub("", markdown)
    spans = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", prose)
    return "\n".join(span for span in spans if re.match(r"(inv|invoke)\s", span))


def _logical_lines(text: str) -> Iterable[str]:
    """Lines with backslash continuations joined, prompts (``$ ``) and YAML list dashes cut."""
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        for prefix in ("$ ", "- "):
            if line.startswith(prefix):
                line = line[len(prefix) :].strip()
        if line:
            yield line


def _words(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: not a shell line
        return []


def _invoke_start(command: list[str]) -> int | None:
    """Where ``invoke``'s own arguments start in a simple command, or None if it is not one."""
    i = 0
    while i < len(command) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", command[i]):
        i += 1  # FOO=bar invoke …
    if i < len(command) and command[i] in ("env", "exec", "time"):
        i += 1
    rest = command[i:]
    if rest[:1] in (["invoke"], ["inv"]):
        return i + 1
    if len(rest) >= 3 and re.fullmatch(r"python[\d.]*", rest[0]) and rest[1:3] == ["-m", "invoke"]:
        return i + 3
    return None


def invoke_calls(text: str) -> list[list[str]]:
    """Every ``invoke …`` command in shell lines, as ``["invoke", ARG, …]``.

    Handles ``&&``/``;``/``|`` chains, ``VAR=value`` prefixes, ``python -m invoke``, comments,
    backslash continuations, ``$ `` prompts and YAML ``- `` list items.
    """
    calls: list[list[str]] = []
    for line in _logical_lines(text):
        command: list[str] = []
        words = _words(line)
        for index, word in enumerate(words):
            if word in REDIRECTIONS:  # `> file` ends the command's arguments
                words[index:] = [";"]
                break
        for word in [*words, ";"]:
            if word in SEPARATORS:
                start = _invoke_start(command)
                if start is not None:
                    calls.append(["invoke", *command[start:]])
                command = []
            else:
                command.append(word)
    return calls


def check_invoke_call(argv: list[str], collection: Collection | None = None) -> None:
    """Parse ``argv`` (``["invoke", …]``) as invoke would, against ``collection``.

    Raises:
        InvokeCallError: An unknown task, an unknown option, an option without its value.
    """
    tasks = collection if collection is not None else load_collection()
    args = argv[1:] if argv[:1] in (["invoke"], ["inv"]) else argv
    parser = Parser(contexts=tasks.to_contexts(), initial=ParserContext(args=Program().core_args()))
    shown = shlex.join(["invoke", *args])
    try:
        result = parser.parse_argv(args)
    except ParseError as error:
        known = ", ".join(sorted(tasks.task_names))
        raise InvokeCallError(f"{shown}: {error} (tasks: {known})") from None
    if result.remainder:
        raise InvokeCallError(f"{shown}: unexpected arguments after --: {result.remainder}")
    for context in result[1:]:
        if context.name is None:
            raise InvokeCallError(f"{shown}: not a task")
