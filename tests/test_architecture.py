"""The domain imports no storage, no I/O, no clock, and nothing from the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "sessionpacks"
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


def imported(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "sessionpacks":
            names.update(f"sessionpacks.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


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
