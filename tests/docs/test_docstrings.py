"""The examples in the library's docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "sessionpacks.model",
    "sessionpacks.ledger",
    "sessionpacks.pricing",
    "sessionpacks.operations",
    "sessionpacks.resolution",
    "sessionpacks.service",
    "sessionpacks.adapters.memory",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0


def test_docstring_examples_exist() -> None:
    found = sum(
        doctest.testmod(importlib.import_module(n), report=False).attempted for n in MODULES
    )
    assert found >= 5
