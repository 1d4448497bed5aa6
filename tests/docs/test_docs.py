"""The docs keep up with the code: every public name is in docs/api.md, every rule R1..R17 has
a section with a runnable example in docs/rules.md, and the pages are run as doctests."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import sessionpacks
from sessionpacks import operations, pricing, resolution

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RULES = [f"R{n}" for n in range(1, 18)]
EXAMPLES = [f"E{n}" for n in range(1, 20)]
KNOWN_BUG = "(known bug, see issue)"


def _code_spans(text: str) -> str:
    """Everything inside inline code spans, where API names are written."""
    return "\n".join(re.findall(r"`([^`\n]+)`", text))


def _names_in_code(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", _code_spans(text)))


def _rule_sections(text: str) -> dict[str, str]:
    """Each ``## Rn ...`` section of rules.md, keyed by its rule, up to the next ``## ``."""
    sections: dict[str, str] = {}
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    for part in parts[1:]:
        match = re.match(r"(R\d+)\b", part)
        if match:
            assert match.group(1) not in sections, f"two sections for {match.group(1)}"
            sections[match.group(1)] = part
    return sections


@pytest.fixture(scope="module")
def api_names() -> set[str]:
    return _names_in_code((DOCS / "api.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rules_text() -> str:
    return (DOCS / "rules.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sessionpacks.__all__)
def test_every_exported_name_is_in_the_api_page(name: str, api_names: set[str]) -> None:
    assert name in api_names, f"sessionpacks.{name} is exported but missing from docs/api.md"


@pytest.mark.parametrize(
    ("module", "name"),
    [(m.__name__, n) for m in (operations, pricing, resolution) for n in m.__all__],
)
def test_every_public_domain_function_is_in_the_api_page(
    module: str, name: str, api_names: set[str]
) -> None:
    assert name in api_names, f"{module}.{name} is public but missing from docs/api.md"


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_has_a_section_with_a_running_example(rule: str, rules_text: str) -> None:
    sections = _rule_sections(rules_text)
    assert rule in sections, f"docs/rules.md has no '## {rule} ...' section"
    section = sections[rule]
    assert "**Rule.**" in section, f"{rule} does not state the rule in plain words"
    running = [
        line
        for line in section.splitlines()
        if line.lstrip().startswith(">>> ") and "+SKIP" not in line
    ]
    assert running, f"{rule} has no example that runs"


def test_rule_sections_are_in_order(rules_text: str) -> None:
    assert list(_rule_sections(rules_text)) == RULES


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_spec_example_is_worked_in_the_rules_page(example: str, rules_text: str) -> None:
    assert re.search(rf"\b{example}\b", rules_text), f"{example} is not worked in docs/rules.md"


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_a_skipped_example_is_labelled_a_known_bug(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    blocks = re.split(r"^#+ ", text, flags=re.MULTILINE)
    for block in blocks:
        if "doctest: +SKIP" in block:
            assert KNOWN_BUG in block, f"{page.name}: a skipped example without '{KNOWN_BUG}'"


def test_the_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    expected = {
        "concepts.md",
        "rules.md",
        "api.md",
        "cli.md",
        "migrating-from-a-spreadsheet.md",
        "guarantees.md",
        "writing-a-store.md",
        "testing-your-integration.md",
        "architecture.md",
    }
    assert expected <= linked, f"docs/index.md does not link {sorted(expected - linked)}"


def test_pytest_runs_the_docs_as_doctests() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    options = config["tool"]["pytest"]["ini_options"]
    assert "docs" in options["testpaths"]
    assert any(
        str(o).startswith("--doctest-glob=") and o.endswith(".md") for o in options["addopts"]
    )


def _named_paths(page: str) -> set[str]:
    """The files a page names in backticks: ``adapters/_sql/core.py``, ``tests/unit/...``."""
    return set(re.findall(r"`((?:[\w.]+/)*[\w.]+\.py)(?:::\w+)?`", page))


def test_the_architecture_page_names_every_module_and_only_real_files() -> None:
    page = (DOCS / "architecture.md").read_text(encoding="utf-8")
    package = ROOT / "src" / "sessionpacks"
    modules = {
        p.relative_to(package).with_suffix("").as_posix()
        for p in package.rglob("*.py")
        if p.name != "__init__.py" or p.parent != package
    }
    modules = {m.removesuffix("/__init__") for m in modules}
    for module in sorted(modules):
        named = f"`{module}`" in page or f"`{module}.py`" in page or f"`{module}/*`" in page
        parent = module.rsplit("/", 1)[0] if "/" in module else None
        named = named or (parent is not None and f"`{parent}/*`" in page)
        named = named or f"`{module}/" in page  # a package, by the modules in it
        assert named, f"docs/architecture.md does not say where {module} stands"
    for name in sorted(_named_paths(page)):
        places = [ROOT / name, package / name]
        assert any(p.exists() for p in places), f"docs/architecture.md names {name}: no such file"
