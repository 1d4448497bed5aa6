"""Test support for stores and hosts. Needs the ``testing`` extra (pytest, hypothesis).

- :class:`RepositoryContract` (:mod:`sessionpacks.testing.contract`): the suite every
  :class:`~sessionpacks.ports.PackRepository` passes; a store's tests subclass it and give a
  factory, :meth:`~RepositoryContract.make_store`.
- :class:`StoreMachine` (:mod:`sessionpacks.testing.stateful`): a hypothesis state machine
  that drives a store through :class:`~sessionpacks.service.PackService` beside the reference
  in-memory store; a store's tests subclass it, give a factory,
  :meth:`~StoreMachine.open_repository`, and collect ``.TestCase``.
- :mod:`sessionpacks.testing.plugin`: a pytest plugin with the hypothesis profiles (``dev``,
  ``ci``) and fixtures, registered by sessionpacks' ``pytest11`` entry point wherever it is
  installed; ``pytest_plugins = ["sessionpacks.testing.plugin"]`` also asks for its profile.

Hypothesis strategies for the library's values are in :mod:`sessionpacks.strategies`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessionpacks.testing.contract import Opener, RepositoryContract
    from sessionpacks.testing.stateful import StoreMachine

__all__ = ["Opener", "RepositoryContract", "StoreMachine"]

_HOMES = {
    "Opener": "sessionpacks.testing.contract",
    "RepositoryContract": "sessionpacks.testing.contract",
    "StoreMachine": "sessionpacks.testing.stateful",
}


def __getattr__(name: str) -> Any:
    # Imported on first use, so that loading the plugin (``-p sessionpacks.testing.plugin``)
    # builds no strategies before hypothesis's own pytest plugin is loaded.
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
