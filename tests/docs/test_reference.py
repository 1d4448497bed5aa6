"""The API reference builds from the docstrings: ``mkdocs build --strict`` (every warning an
error) into a folder of its own, with every page of docs/ in the nav and every nav entry a
real page.

Without mkdocs installed the build test skips, except under ``CI=true``, where it fails: CI
must never pass by skipping it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
REFERENCED = {
    "sessionpacks",
    "sessionpacks.operations",
    "sessionpacks.pricing",
    "sessionpacks.reports",
    "sessionpacks.resolution",
    "sessionpacks.serialization",
    "sessionpacks.testing.contract",
    "sessionpacks.testing.plugin",
    "sessionpacks.strategies",
    "sessionpacks.adapters.sqlite",
    "sessionpacks.adapters.postgres",
    "sessionpacks.adapters.sqlalchemy",
    "sessionpacks.contrib.django.store",
}


def _need_mkdocs() -> None:
    missing = [m for m in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python") if not _has(m)]
    if not missing:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"CI=true needs {missing} (uv sync: the dev group)", pytrace=False)
    pytest.skip(f"{', '.join(missing)} not installed: the API reference is not built")


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def _nav() -> list[str]:
    """The pages of mkdocs.yml's nav, in order (read as text: yaml may not be installed)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    block = text[text.index("\nnav:\n") : text.index("\nplugins:\n")]
    return re.findall(r"^\s*- (?:[^:\n]+: )?(\S+\.md)$", block, re.M)


def _ignored(path: str) -> bool:
    return f"\n{path}\n" in "\n" + (ROOT / ".gitignore").read_text(encoding="utf-8")


def test_the_strict_build_passes(tmp_path: Path) -> None:
    _need_mkdocs()
    site = tmp_path / "site"
    ran = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    assert "WARNING" not in output, output
    html = "".join(p.read_text(encoding="utf-8") for p in (site / "reference").glob("*.html"))
    for name in sorted(REFERENCED):  # each module's heading, so its docstrings were read
        assert f'id="{name}"' in html, f"the reference has no section for {name}"
    assert "RepositoryContract" in html


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page() -> None:
    nav = _nav()
    assert len(nav) == len(set(nav)), "a page is twice in the nav"
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages <= set(nav), f"not in mkdocs.yml's nav: {sorted(pages - set(nav))}"
    missing = set(nav) - pages
    assert not missing, f"mkdocs.yml's nav names pages that do not exist: {sorted(missing)}"


def test_the_reference_pages_document_the_modules() -> None:
    named = {
        module
        for page in (DOCS / "reference").glob("*.md")
        for module in re.findall(r"^::: (\S+)$", page.read_text(encoding="utf-8"), re.M)
    }
    assert named >= REFERENCED, sorted(REFERENCED - named)
    assert "reference/index.md" in (DOCS / "api.md").read_text(encoding="utf-8")


def test_the_built_site_is_gitignored() -> None:
    assert _ignored("site/")
