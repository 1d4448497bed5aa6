"""The command reference of ``docs/cli.md``, generated from the parsers so it cannot drift.

``python -m sessionpacks._cli.reference docs/cli.md`` rewrites the part of the page between the
markers; a test fails when the page and the parsers disagree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from .app import build_parser
from .base import common_options

__all__ = ["BEGIN", "END", "leaves", "reference", "update"]

BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m sessionpacks._cli.reference docs/cli.md -->"
END = "<!-- END GENERATED REFERENCE -->"


def leaves(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every verb's parser, with its command words (``"pack open"``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, child in action.choices.items():
                if id(child) not in seen:  # an alias names the same parser again
                    seen.add(id(child))
                    yield from leaves(child, (*words, name))
            return
    yield " ".join(words), parser


def _spelling(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{names}`"
    if action.choices is not None and action.metavar is None:
        metavar = "{" + ",".join(str(c) for c in action.choices) + "}"
    else:
        metavar = str(action.metavar or action.dest.upper())
    return f"`{names} {metavar}`"


def _meaning(action: argparse.Action) -> str:
    text = (action.help or "").replace("|", "\\|")
    notes = []
    if action.required and action.option_strings:
        notes.append("required")
    if isinstance(action, argparse._AppendAction):
        notes.append("repeatable")
    if action.nargs == "?":
        notes.append("optional")
    return f"{text} ({', '.join(notes)})" if notes and "repeatable" not in text else text


def _verb(words: str, parser: argparse.ArgumentParser, common: set[str]) -> list[str]:
    own = [a for a in parser._actions if a.dest not in common and a.dest != "help"]
    positionals = " ".join(str(a.metavar or a.dest) for a in own if not a.option_strings)
    lines = [
        f"### `sessionpacks {words}`",
        "",
        (parser.description or "").strip(),
        "",
        "```text",
        f"sessionpacks {words} [options] {positionals}".rstrip(),
        "```",
        "",
    ]
    if own:
        lines += ["| argument | meaning |", "| --- | --- |"]
        lines += [f"| {_spelling(a)} | {_meaning(a)} |" for a in own]
        lines.append("")
    example = (parser.epilog or "").removeprefix("example:\n")
    lines += ["```sh", *(line.removeprefix("  ") for line in example.splitlines()), "```", ""]
    return lines


def reference() -> str:
    """The generated part of docs/cli.md."""
    common_parser = common_options()
    common = {a.dest for a in common_parser._actions}
    lines = [BEGIN, "", "## Common options", "", "Accepted before or after any verb.", ""]
    lines += ["| option | meaning |", "| --- | --- |"]
    lines += [f"| {_spelling(a)} | {_meaning(a)} |" for a in common_parser._actions]
    lines += ["", "## Verbs", ""]
    for words, parser in leaves(build_parser()):
        lines += _verb(words, parser, common)
    lines.append(END)
    return "\n".join(lines) + "\n"


def update(page: Path) -> bool:
    """Rewrite the generated part of ``page``; True if it changed."""
    text = page.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END + "\n")
    updated = head + reference() + tail
    if updated == text:
        return False
    page.write_text(updated, encoding="utf-8")
    return True


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool, checked by the test
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/cli.md")
    print(f"{target}: {'updated' if update(target) else 'up to date'}")
