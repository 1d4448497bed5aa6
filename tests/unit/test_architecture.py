"""The domain imports no storage, no I/O, no clock, and nothing from the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "sessionpacks"
DOMAIN = [
    "_limits",
    "model",
    "ledger",
    "events",
    "operations",
    "pricing",
    "resolution",
    "errors",
    "_currencies",
    "reports",
]
ALLOWED_OUTSIDE = {
    "__future__",
    "attrs",
    "dateutil",
    "bisect",
    "collections",
    "datetime",
    "decimal",
    "enum",
    "functools",
    "re",
    "typing",
    "zoneinfo",
}


def imports_of(relative: str) -> list[tuple[str, int]]:
    """Every module that ``sessionpacks/<relative>.py`` imports, relative imports resolved, each
    with its line: ``from sessionpacks import x`` and ``from . import x`` count as ``...x``."""
    package = ["sessionpacks", *relative.split("/")][:-1]
    tree = ast.parse((PACKAGE / f"{relative}.py").read_text(encoding="utf-8"))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.append((module, node.lineno))
            found.extend((f"{module}.{alias.name}", node.lineno) for alias in node.names)
    return found


def imported(module: str) -> set[str]:
    return {name for name, _ in imports_of(module) if name != "sessionpacks"}


@pytest.mark.parametrize("module", DOMAIN)
def test_domain_module_imports_only_the_domain_and_pure_libraries(module: str) -> None:
    for name in imported(module):
        top = name.split(".")[0]
        if top == "sessionpacks":
            assert name.split(".")[1] in DOMAIN, f"{module} imports {name}"
        else:
            assert top in ALLOWED_OUTSIDE, f"{module} imports {name}"


def test_adapters_are_not_imported_by_the_ports() -> None:
    assert not any(n.startswith("sessionpacks.adapters") for n in imported("ports"))


# The layers above the domain ------------------------------------------------------------------
# The command line speaks only to PackService and gets it from the composition root
# (sessionpacks._compose); the service and the public serialization depend on no adapter; and
# only the composition root opens a SQL store.

CLI = sorted(path.stem for path in (PACKAGE / "_cli").glob("*.py"))
DRIVERS = ("sqlite3", "psycopg", "psycopg_pool")
SQL_STORES = ("sessionpacks.adapters.sqlite", "sessionpacks.adapters.postgres")


def violations(relative: str, forbidden: tuple[str, ...]) -> list[str]:
    """One line per import statement of the module that reaches into ``forbidden``."""
    at: dict[int, str] = {}
    for name, line in imports_of(relative):
        if any(name == f or name.startswith(f"{f}.") for f in forbidden):
            at[line] = name  # the most specific name of the statement comes last
    return [f"sessionpacks/{relative}.py line {line} imports {name}" for line, name in at.items()]


def test_imports_of_resolves_relative_imports() -> None:
    names = {name for name, _ in imports_of("_cli/app")}
    assert {"sessionpacks._cli.store", "sessionpacks._cli.store.UsageError"} <= names
    assert "sessionpacks._compose" in names


@pytest.mark.parametrize("module", CLI)
def test_the_cli_imports_no_adapter_and_no_driver(module: str) -> None:
    found = violations(f"_cli/{module}", ("sessionpacks.adapters", *DRIVERS))
    assert not found, "the CLI opens stores only through sessionpacks._compose: " + "; ".join(found)


@pytest.mark.parametrize("module", CLI)
def test_the_cli_reaches_no_repository(module: str) -> None:
    tree = ast.parse((PACKAGE / "_cli" / f"{module}.py").read_text(encoding="utf-8"))
    reads = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "repository"]
    found = [
        f"sessionpacks/_cli/{module}.py line {node.lineno} reads .repository"
        for node in sorted(reads, key=lambda n: n.lineno)
    ]
    assert not found, "the CLI speaks only to PackService: " + "; ".join(found)


def test_the_service_imports_no_adapter() -> None:
    found = violations("service", ("sessionpacks.adapters", *DRIVERS))
    assert not found, "; ".join(found)


def test_serialization_imports_no_adapter() -> None:
    found = violations("serialization", ("sessionpacks.adapters",))
    assert not found, "the public converter may not lean on a store's codec: " + "; ".join(found)


def test_only_the_composition_root_opens_a_sql_store() -> None:
    outside = [
        path.relative_to(PACKAGE).with_suffix("").as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "adapters" and path.stem != "_compose"
    ]
    found = [v for module in sorted(outside) for v in violations(module, (*SQL_STORES, *DRIVERS))]
    assert not found, "stores are chosen and opened in sessionpacks._compose: " + "; ".join(found)
