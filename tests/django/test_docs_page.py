"""``docs/embedding-django.md`` quotes tested code: each block marked
``<!-- excerpt: path#name -->`` is the region ``# excerpt: name`` ... ``# end excerpt`` of that
file, dedented, word for word; and the page names the app as it is installed."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from sessionpacks.contrib.django.apps import SessionPacksConfig

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "embedding-django.md"
_QUOTED = re.compile(
    r"<!-- excerpt: (\S+)#(\w+) -->\n<!-- fmt: off -->\n```python\n(.*?)```\n<!-- fmt: on -->",
    re.S,
)
_REGION = re.compile(r"^[ \t]*# excerpt: (\w+)\n(.*?)^[ \t]*# end excerpt", re.S | re.M)


def regions(path: Path) -> dict[str, str]:
    """The file's marked regions by name, dedented, without the blank lines around them."""
    text = path.read_text(encoding="utf-8")
    return {m[1]: textwrap.dedent(m[2]).strip("\n") + "\n" for m in _REGION.finditer(text)}


def test_every_quote_on_the_page_is_the_tested_code() -> None:
    quotes = _QUOTED.findall(PAGE.read_text(encoding="utf-8"))
    assert len(quotes) >= 6
    for path, name, code in quotes:
        found = regions(ROOT / path)
        assert name in found, f"{path} has no region '# excerpt: {name}'"
        assert code == found[name], f"the page's {path}#{name} differs from the code"


def test_every_region_of_the_host_test_is_on_the_page() -> None:
    quoted = {(p, n) for p, n, _ in _QUOTED.findall(PAGE.read_text(encoding="utf-8"))}
    for name in regions(ROOT / "tests" / "django" / "test_host.py"):
        assert ("tests/django/test_host.py", name) in quoted


def test_the_page_installs_the_app_by_its_name() -> None:
    page = PAGE.read_text(encoding="utf-8")
    assert f'"{SessionPacksConfig.name}",' in page
    assert f"migrate {SessionPacksConfig.label}" in page
