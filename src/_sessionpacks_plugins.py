"""sessionpacks' entry points for pytest and hypothesis, in every environment it is installed in.

This module sits beside the ``sessionpacks`` package, not in it, and imports nothing at the top
but the standard library: pytest loads the plugins of its ``pytest11`` entry points before
pytest-cov starts measuring and hypothesis runs its ``hypothesis`` entry points while it is being
imported, so neither may import sessionpacks (or hypothesis) on loading, and neither may fail
when sessionpacks is broken or its ``testing`` extra is missing.

- ``pytest11`` (named ``sessionpacks``; ``-p no:sessionpacks`` keeps it out): once pytest-cov has
  started, and before the conftest files are read, it registers
  :mod:`sessionpacks.testing.plugin` under that module's name, so a ``conftest.py`` naming it in
  ``pytest_plugins`` (the set-up of 0.1.0) loads nothing twice. It does nothing when the plugin is
  already registered or blocked (``-p no:sessionpacks.testing.plugin``), and, saying why in the
  report header, when hypothesis is not installed or sessionpacks cannot be imported.
- ``hypothesis``: :func:`_hypothesis_setup_hook` registers, for each public value type, a function
  that imports :mod:`sessionpacks.strategies` the first time ``st.from_type`` needs it, so a
  host's tests draw ``st.from_type(Money)`` with no import of ours, and building the strategies
  costs nothing until then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest
    from hypothesis.strategies import SearchStrategy

PLUGIN = "sessionpacks.testing.plugin"

# The value types sessionpacks.strategies registers (sessionpacks.strategies._TYPE_STRATEGIES);
# tests/contract/test_entry_points.py keeps the two lists the same.
VALUE_TYPES = (
    "Allowance",
    "Appointment",
    "BundleLine",
    "ExpiresAfterFirstUse",
    "ExpiresAfterOpening",
    "ExpiresOn",
    "Money",
    "NoExpiry",
    "PackTemplate",
    "PackTerms",
    "Period",
    "PerPack",
    "PerSession",
    "Policies",
    "Practice",
    "PreferPack",
    "PreferService",
    "PreferTemplate",
    "Service",
    "Tier",
)

_not_loaded: list[str] = []  # why the plugin was not registered, for the report header


# pytest ---------------------------------------------------------------------------------------


def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Not tryfirst: pytest-cov's (tryfirst) starts coverage first, and pytest's own (trylast)
    # reads the conftest files after this.
    manager = early_config.pluginmanager
    if manager.is_blocked(PLUGIN) or manager.has_plugin(PLUGIN):
        return
    try:
        plugin = importlib.import_module(PLUGIN)
    except Exception as error:  # a broken install must not stop the host's own tests
        missing = isinstance(error, ImportError) and (error.name or "").startswith("hypothesis")
        _not_loaded.append(
            "hypothesis is not installed: pip install 'sessionpacks[testing]'"
            if missing
            else f"{PLUGIN} cannot be imported: {type(error).__name__}: {error}"
        )
        return
    manager.register(plugin, PLUGIN)


def pytest_report_header() -> list[str]:
    return [f"sessionpacks: pytest plugin not loaded ({why})" for why in _not_loaded]


# hypothesis -----------------------------------------------------------------------------------


def _hypothesis_setup_hook() -> None:
    """Register a lazy strategy for each public value type; nothing if sessionpacks is broken."""
    try:
        from hypothesis import strategies as st

        model = importlib.import_module("sessionpacks.model")
        for name in VALUE_TYPES:
            st.register_type_strategy(getattr(model, name), _from_sessionpacks)
    except Exception:  # hypothesis must import whatever state sessionpacks is in
        return


def _from_sessionpacks(thing: type) -> SearchStrategy[Any]:
    """The strategy of :mod:`sessionpacks.strategies` for ``thing``; importing that module
    registers its strategies over these functions."""
    strategies = importlib.import_module("sessionpacks.strategies")
    found: SearchStrategy[Any] = strategies._TYPE_STRATEGIES[thing]
    return found
