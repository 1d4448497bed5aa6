"""A pytest plugin for hosts testing against sessionpacks: hypothesis profiles and fixtures.

**Loading.** Installing sessionpacks is enough: its ``pytest11`` entry point (named
``sessionpacks``) registers this module in every pytest run of the environment, once pytest-cov
has started, unless hypothesis is missing (the ``testing`` extra). ``-p no:sessionpacks`` keeps
it out. A ``conftest.py`` of 0.1.0 that loads it with
``pytest_plugins = ["sessionpacks.testing.plugin"]`` loads nothing twice.

**Profiles.** Two hypothesis profiles are registered, so ``--hypothesis-profile`` can name
them:

- ``sessionpacks-dev``: a quick local run, few examples and short state-machine runs, failures
  kept in the local example database (``.hypothesis/``) and replayed first next time.
- ``sessionpacks-ci``: a thorough run, ten times the examples and longer state-machine runs,
  derandomised (the same examples on every run, so a red build is red again on a laptop with
  the same profile), with ``@reproduce_failure`` blobs printed.

A run that only has sessionpacks installed keeps its own hypothesis profile (hypothesis's
``default``, or whatever its conftest loads). One is loaded before the tests run only when
asked: by ``SESSIONPACKS_HYPOTHESIS_PROFILE`` (``dev``, ``ci``, or the name of any profile you
registered yourself), or by naming the plugin, in a ``conftest.py``'s ``pytest_plugins`` or
with ``-p sessionpacks.testing.plugin``; then, without the variable, ``ci`` is chosen when
``CI=true`` and ``dev`` otherwise. Hypothesis's own
``--hypothesis-profile`` option still wins, and a test's own ``@settings`` still overrides a
profile for that test. Deadlines are off in both profiles: a store's speed is not what these
tests judge.

**Scaled counts.** A test that needs more or fewer examples than the profile gives takes
:func:`scaled` instead of a pinned ``max_examples``: ``@scaled(0.5)`` runs half the active
profile's examples (10 under dev, 100 under ci), read when the test runs.

**Fixtures.** ``sessionpacks_practice`` (a Sydney practice), ``sessionpacks_clock`` (a
:class:`~sessionpacks.adapters.clock.FixedClock`), ``sessionpacks_repository`` (that practice
on a fresh in-memory store; override the fixture to run the same tests on your store) and
``sessionpacks_service`` (a :class:`~sessionpacks.service.PackService` on them, numbering new
packs ``pk1``, ``pk2``...).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument

from sessionpacks.adapters.clock import FixedClock
from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.model import Practice
from sessionpacks.ports import PackRepository
from sessionpacks.service import PackService

__all__ = [
    "CI_PROFILE",
    "DEV_PROFILE",
    "PROFILE_ENV",
    "chosen_profile",
    "load_profile",
    "register_profiles",
    "scaled",
    "sessionpacks_clock",
    "sessionpacks_practice",
    "sessionpacks_repository",
    "sessionpacks_service",
]

PROFILE_ENV = "SESSIONPACKS_HYPOTHESIS_PROFILE"
DEV_PROFILE = "sessionpacks-dev"
CI_PROFILE = "sessionpacks-ci"
_SHORT_NAMES = {"dev": DEV_PROFILE, "ci": CI_PROFILE}


def register_profiles() -> None:
    """Register ``sessionpacks-dev`` and ``sessionpacks-ci`` (again, harmlessly)."""
    # Parents named: hypothesis loads its "ci" profile on import when it sees CI variables,
    # and a profile without a parent would inherit whatever is loaded now.
    settings.register_profile(
        DEV_PROFILE,
        settings.get_profile("default"),
        max_examples=20,
        stateful_step_count=20,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    # Hypothesis's own "ci" profile: derandomised, no example database, blobs printed.
    settings.register_profile(
        CI_PROFILE,
        settings.get_profile("ci"),
        max_examples=200,
        stateful_step_count=50,
    )


def chosen_profile(environ: Mapping[str, str] | None = None) -> str:
    """The profile name ``SESSIONPACKS_HYPOTHESIS_PROFILE`` and ``CI`` choose."""
    env = os.environ if environ is None else environ
    asked = env.get(PROFILE_ENV, "").strip()
    if not asked:
        asked = "ci" if env.get("CI", "").strip().lower() == "true" else "dev"
    return _SHORT_NAMES.get(asked, asked)


def load_profile(environ: Mapping[str, str] | None = None) -> str:
    """Load the chosen profile and return its name; an unknown name raises hypothesis's
    ``InvalidArgument`` naming it."""
    name = chosen_profile(environ)
    settings.load_profile(name)
    return name


register_profiles()


# Counts as a fraction of the active profile ---------------------------------------------------

_SETTING_NAMES = frozenset(
    name for name, value in vars(settings).items() if isinstance(value, property)
)


class _Scaled(settings):
    """Settings read from the active profile whenever hypothesis asks: ``max_examples`` as a
    fraction of the profile's, the values given fixed, everything else the profile's own."""

    def __init__(self, fraction: float, minimum: int, overrides: dict[str, Any]) -> None:
        super().__init__(**overrides)  # hypothesis checks the values given
        self._sessionpacks_scale = (fraction, minimum, frozenset(overrides))

    def __getattribute__(self, name: str) -> Any:
        if name not in _SETTING_NAMES:
            return super().__getattribute__(name)
        scale = self.__dict__.get("_sessionpacks_scale")
        if scale is None or name in scale[2]:  # still being made, or given
            return super().__getattribute__(name)
        # The profile, not ``settings.default``: while a test runs, its own settings are the
        # default.
        active = settings.get_profile(settings.get_current_profile_name())
        if name == "max_examples":
            fraction, minimum, _ = scale
            return max(minimum, round(active.max_examples * fraction))
        return getattr(active, name)

    def __repr__(self) -> str:
        fraction, minimum, given = self._sessionpacks_scale
        fixed = ", ".join(f"{name}={getattr(self, name)!r}" for name in sorted(given))
        return f"scaled({fraction!r}, minimum={minimum!r}{', ' if fixed else ''}{fixed})"


def scaled(fraction: float, *, minimum: int = 5, **overrides: Any) -> settings:
    """Hypothesis settings running ``fraction`` of the active profile's ``max_examples``, and
    never fewer than ``minimum``; use them as ``@settings`` is used.

    ``@scaled(0.2)`` runs 4 examples under ``sessionpacks-dev`` (20), so 5, the minimum, and
    40 under ``sessionpacks-ci`` (200). The count is worked out when hypothesis reads it, that
    is when the test runs, so a profile loaded after the test was defined (by
    ``--hypothesis-profile``, or a conftest that imports the test first) still decides it.
    ``overrides`` are any other settings (``deadline=None``, ``derandomize=True``,
    ``stateful_step_count=30``...), fixed for this test; the ones not given are the active
    profile's, read the same way. A search that stops at its first match (``find``, a state
    machine expected to fail) costs nothing for a high ``minimum``: give the count it needs to
    stay reliable there, e.g. ``scaled(2.5, minimum=500)``. As the
    ``TestCase.settings`` of a state machine they scale its runs the same way.
    """
    if not fraction > 0:
        raise InvalidArgument(f"scaled: fraction={fraction!r} must be more than 0")
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
        raise InvalidArgument(f"scaled: minimum={minimum!r} must be a whole number >= 1")
    if "max_examples" in overrides:
        raise InvalidArgument("scaled: give a fraction, not max_examples")
    return _Scaled(fraction, minimum, overrides)


# pytest hooks ---------------------------------------------------------------------------------


def _named(config: pytest.Config) -> bool:
    """Whether the run names this plugin: ``-p sessionpacks.testing.plugin``, or a
    ``conftest.py`` with it in ``pytest_plugins`` (pytest reads those before configuring)."""
    if __name__ in (config.getoption("plugins", default=None) or ()):
        return True
    for registered in config.pluginmanager.get_plugins():
        named = getattr(registered, "pytest_plugins", ())
        if __name__ in ((named,) if isinstance(named, str) else named):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Load the chosen profile when asked to: by ``SESSIONPACKS_HYPOTHESIS_PROFILE``, or by a
    run that names this plugin; a run that only has sessionpacks installed keeps its profile."""
    # tryfirst: hypothesis's own plugin runs after, so --hypothesis-profile and
    # --hypothesis-verbosity apply on top of the profile loaded here.
    if config.getoption("--hypothesis-profile", default=None):
        return
    if not os.environ.get(PROFILE_ENV, "").strip() and not _named(config):
        return
    try:
        load_profile()
    except InvalidArgument as error:
        raise pytest.UsageError(
            f"{PROFILE_ENV}: {error}. Use dev, ci, or a profile your conftest.py registers."
        ) from error


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"sessionpacks: hypothesis profile {settings.get_current_profile_name()!r} "
        f"(choose with {PROFILE_ENV}=dev|ci|<your profile>)"
    )


# Fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def sessionpacks_practice() -> Practice:
    """The practice the fixtures work in: ``clinic-1`` in Australia/Sydney."""
    return Practice("clinic-1", "Australia/Sydney")


@pytest.fixture
def sessionpacks_clock() -> FixedClock:
    """A clock standing at 2026-01-15 09:00 Sydney time until moved."""
    return FixedClock(datetime(2026, 1, 15, 9, 0, tzinfo=ZoneInfo("Australia/Sydney")))


@pytest.fixture
def sessionpacks_repository(sessionpacks_practice: Practice) -> PackRepository:
    """The practice on a fresh in-memory store. Override it to use your own store."""
    return InMemoryStore().practice(sessionpacks_practice.id, sessionpacks_practice.timezone)


@pytest.fixture
def sessionpacks_service(
    sessionpacks_repository: PackRepository, sessionpacks_clock: FixedClock
) -> PackService:
    """A service on the repository and the clock; new packs are ``pk1``, ``pk2``..."""
    counter = itertools.count(1)
    return PackService(
        sessionpacks_repository, sessionpacks_clock, new_pack_id=lambda: f"pk{next(counter)}"
    )
