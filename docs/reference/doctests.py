"""A griffe extension for the API reference: the doctest examples of a docstring (``>>>``
lines, their ``...`` continuations and their output, up to a blank line) are shown as Python
console code, not as Markdown, where ``>>>`` would open quotes and ``[...]`` links.

Named in ``mkdocs.yml`` (``extensions`` of the python handler); not part of the package.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """``text`` with each run of doctest lines inside a ```` ```pycon ```` fence."""
    out: list[str] = []
    in_example = False
    for line in text.splitlines():
        starts = line.lstrip().startswith(">>>")
        if starts and not in_example:
            out.append("```pycon")
            in_example = True
        elif in_example and not line.strip():
            out.append("```")
            in_example = False
        out.append(line)
    if in_example:
        out.append("```")
    return "\n".join(out)


class FencedDoctests(griffe.Extension):
    """Fence the doctests of every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
