"""The testing kit for hosts: the core stays free of test libraries, the plugin's profiles and
fixtures, the public serialization, and the state machine failing on stores that misbehave."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import run_state_machine_as_test

from sessionpacks import (
    InMemoryStore,
    NotFoundError,
    PackService,
    PackState,
    PackStatus,
    PackTemplate,
    RecordedEvent,
    RefusedError,
    SessionPacksError,
    StoreError,
)
from sessionpacks import serialization as ser
from sessionpacks.ledger import Entry
from sessionpacks.model import Practice, Preference, PreferPack, PreferService, PreferTemplate
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord, PackPage, PackQuery, PackRepository
from sessionpacks.testing import plugin
from sessionpacks.testing.plugin import (
    scaled,
    sessionpacks_clock,
    sessionpacks_practice,
    sessionpacks_repository,
    sessionpacks_service,
)
from sessionpacks.testing.stateful import StoreMachine

from ..conftest import appt, terms

__all__ = [
    "sessionpacks_clock",
    "sessionpacks_practice",
    "sessionpacks_repository",
    "sessionpacks_service",
]

ROOT = Path(__file__).resolve().parents[2]
SYDNEY = ZoneInfo("Australia/Sydney")

# The core never imports a test library ------------------------------------------------------

_IMPORT_EVERYTHING_BUT_THE_KIT = """
import importlib, pkgutil, sys
import sessionpacks
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=["sessionpacks.contrib.django"])  # models need settings
django.setup()
kit = ("sessionpacks.testing", "sessionpacks.strategies", "sessionpacks.__main__")

def walk(path, prefix):  # not pkgutil.walk_packages: it imports every package, the kit too
    for module in pkgutil.iter_modules(path, prefix):
        if not module.name.startswith(kit):
            imported = importlib.import_module(module.name)
            if module.ispkg:
                walk(imported.__path__, module.name + ".")

walk(sessionpacks.__path__, "sessionpacks.")
print(sorted(m for m in sys.modules if m.startswith("sessionpacks")))
print(sorted({m.split(".")[0] for m in sys.modules} & {"hypothesis", "pytest", "_pytest"}))
"""


def test_the_core_and_its_adapters_import_neither_hypothesis_nor_pytest() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING_BUT_THE_KIT],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    imported, test_libraries = ran.stdout.strip().splitlines()
    stores = ("sqlite", "postgres", "sqlalchemy")
    for module in (*(f"sessionpacks.adapters.{s}" for s in stores), "sessionpacks.contrib.django"):
        assert module in imported
    assert "sessionpacks.serialization" in imported
    assert test_libraries == "[]", f"the core imported {test_libraries}"


def test_importing_the_kit_does_import_them() -> None:
    """The check above can fail: the kit itself brings hypothesis and pytest."""
    code = (
        "import sys, sessionpacks.testing.stateful, sessionpacks.testing.plugin\n"
        "print('hypothesis' in sys.modules, 'pytest' in sys.modules)"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ran.stdout.split() == ["True", "True"]


# The plugin's profiles ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, plugin.DEV_PROFILE),
        ({"CI": "true"}, plugin.CI_PROFILE),
        ({"CI": "TRUE "}, plugin.CI_PROFILE),
        ({"CI": "false"}, plugin.DEV_PROFILE),
        ({"CI": "1"}, plugin.DEV_PROFILE),
        ({plugin.PROFILE_ENV: "ci"}, plugin.CI_PROFILE),
        ({plugin.PROFILE_ENV: "dev", "CI": "true"}, plugin.DEV_PROFILE),
        ({plugin.PROFILE_ENV: " my-nightly "}, "my-nightly"),
        ({plugin.PROFILE_ENV: "", "CI": "true"}, plugin.CI_PROFILE),
    ],
)
def test_the_environment_chooses_the_profile(environ: dict[str, str], expected: str) -> None:
    assert plugin.chosen_profile(environ) == expected


@pytest.fixture
def restore_profile() -> Iterator[None]:
    before = settings.get_current_profile_name()
    try:
        yield
    finally:
        settings.load_profile(before)


def test_the_ci_profile_is_thorough_and_derandomised_the_dev_profile_quick() -> None:
    dev, ci = settings.get_profile(plugin.DEV_PROFILE), settings.get_profile(plugin.CI_PROFILE)
    assert ci.max_examples >= 5 * dev.max_examples
    assert ci.stateful_step_count > dev.stateful_step_count
    assert ci.derandomize
    assert not dev.derandomize
    assert ci.print_blob
    assert dev.print_blob
    assert ci.deadline is None
    assert dev.deadline is None
    assert dev.database is not None  # a failure found locally is replayed first next time


@pytest.mark.usefixtures("restore_profile")
def test_load_profile_loads_the_chosen_one_and_refuses_an_unknown_name() -> None:
    assert plugin.load_profile({plugin.PROFILE_ENV: "ci"}) == plugin.CI_PROFILE
    assert settings().max_examples == settings.get_profile(plugin.CI_PROFILE).max_examples
    assert settings.get_current_profile_name() == plugin.CI_PROFILE
    with pytest.raises(Exception, match="no-such-profile"):
        plugin.load_profile({plugin.PROFILE_ENV: "no-such-profile"})


@pytest.mark.usefixtures("restore_profile")
def test_scaled_counts_follow_the_profile_active_when_the_test_runs() -> None:
    runs: list[int] = []
    fixed = scaled(0.2, deadline=None, database=None)  # made under whatever profile

    @fixed
    @given(st.integers())
    def counted(n: int) -> None:
        runs.append(n)

    for profile, expected in ((plugin.CI_PROFILE, 40), (plugin.DEV_PROFILE, 5)):
        settings.load_profile(profile)  # after the test was defined
        runs.clear()
        counted()
        assert (fixed.max_examples, len(runs)) == (expected, expected)  # dev: 4, the minimum 5
        assert fixed.derandomize is settings.get_profile(profile).derandomize
        assert fixed.deadline is None  # given: fixed
    assert scaled(2.5, minimum=500).max_examples == 500  # dev's 50 raised to the minimum
    assert scaled(0.5, minimum=1).max_examples == 10
    assert repr(scaled(0.5, deadline=None)) == "scaled(0.5, minimum=5, deadline=None)"


@pytest.mark.parametrize(
    "bad",
    [{"fraction": 0}, {"fraction": -1.0}, {"minimum": 0}, {"max_examples": 9}, {"deadline": -1}],
    ids=str,
)
def test_scaled_refuses_what_cannot_be_a_count(bad: dict[str, object]) -> None:
    arguments: dict[str, Any] = {"fraction": 0.5, **bad}
    with pytest.raises(InvalidArgument):
        scaled(**arguments)


class _Config:
    """What the plugin's hooks read of pytest's config: the --hypothesis-profile option."""

    def __init__(self, profile: str | None) -> None:
        self.profile = profile

    def getoption(self, name: str, default: object = None) -> object:
        assert name == "--hypothesis-profile"
        return self.profile


@pytest.mark.usefixtures("restore_profile")
@pytest.mark.parametrize(("option", "expected"), [(None, plugin.CI_PROFILE), ("default", None)])
def test_the_configure_hook_loads_a_profile_unless_one_is_asked_for_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch, option: str | None, expected: str | None
) -> None:
    monkeypatch.setenv(plugin.PROFILE_ENV, "ci")
    settings.load_profile(plugin.DEV_PROFILE)
    config = cast(pytest.Config, _Config(option))
    plugin.pytest_configure(config)
    # with the option, hypothesis's own plugin loads the profile named; this one does nothing
    loaded = expected or plugin.DEV_PROFILE
    assert settings.get_current_profile_name() == loaded
    assert repr(loaded) in plugin.pytest_report_header(config)


@pytest.mark.usefixtures("restore_profile")
def test_an_unknown_profile_is_a_usage_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(plugin.PROFILE_ENV, "nightly-typo")
    with pytest.raises(pytest.UsageError, match=f"{plugin.PROFILE_ENV}.*nightly-typo"):
        plugin.pytest_configure(cast(pytest.Config, _Config(None)))


_HOST_TESTS = """
from hypothesis import settings

def test_profile():
    assert settings.get_current_profile_name() == {expected!r}
    assert settings().derandomize is {derandomized!r}

def test_fixtures(sessionpacks_service, sessionpacks_repository, sessionpacks_clock):
    assert sessionpacks_service.repository is sessionpacks_repository
    assert sessionpacks_service.clock is sessionpacks_clock
"""


@pytest.mark.parametrize(
    ("environ", "options", "expected", "derandomized"),
    [
        ({}, [], plugin.DEV_PROFILE, False),
        ({"CI": "true"}, [], plugin.CI_PROFILE, True),
        # hypothesis loads its own "ci" profile when it sees CI: dev must not inherit from it
        ({"CI": "true", plugin.PROFILE_ENV: "dev"}, [], plugin.DEV_PROFILE, False),
        ({plugin.PROFILE_ENV: "ci"}, ["--hypothesis-profile=default"], "default", False),
    ],
)
def test_a_host_loads_the_plugin_from_its_conftest(
    tmp_path: Path,
    environ: dict[str, str],
    options: list[str],
    expected: str,
    derandomized: bool,
) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["sessionpacks.testing.plugin"]\n')
    host_tests = _HOST_TESTS.format(expected=expected, derandomized=derandomized)
    (tmp_path / "test_host.py").write_text(host_tests)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-q", *options],
        cwd=tmp_path,
        env={**keep, **environ},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "2 passed" in ran.stdout


def test_the_fixtures_give_a_working_service(sessionpacks_service: PackService) -> None:
    sessionpacks_service.add_template("T1", terms(3))
    pack = sessionpacks_service.open_pack("C1", template_id="T1")
    assert pack.pack_id == "pk1"
    assert sessionpacks_service.assign(appt("A1"), pack_id="pk1").label == "Session 1 of 3"
    assert sessionpacks_service.repository.practice == Practice("clinic-1", "Australia/Sydney")


# Serialization for hosts' stores ------------------------------------------------------------


@scaled(0.125, deadline=None)  # 25 under ci
@given(st.from_type(PackTemplate))
def test_templates_round_trip(template: PackTemplate) -> None:
    text = ser.dumps_template(template)
    assert isinstance(text, str)
    assert ser.loads_template(text) == template
    assert ser.loads_template(text.encode()) == template


@pytest.mark.parametrize(
    "preference", [PreferService("physio"), PreferTemplate("T1"), PreferPack("pk1")]
)
def test_preferences_round_trip(preference: Preference) -> None:
    assert ser.loads_preference(ser.dumps_preference(preference)) == preference


def test_entries_events_and_states_round_trip(sessionpacks_service: PackService) -> None:
    service = sessionpacks_service
    service.add_template("T1", terms(2))
    service.open_pack("C1", template_id="T1")
    service.assign(appt("A1"), pack_id="pk1")
    service.invoice_line("A1")
    service.assign(appt("A2", "2026-02-09T10:00"), pack_id="pk1")
    service.cancel("A2")
    entries = service.repository.ledger("pk1")
    assert [ser.loads_entry(ser.dumps_entry(e)) for e in entries] == list(entries)
    events = [r.event for r in service.events_since(0)]
    assert [ser.loads_event(ser.dumps_event(e)) for e in events] == events
    state = service.pack("pk1")
    assert ser.loads_state(ser.dumps_state(state)) == state
    assert '"type":"Used"' in ser.dumps_entry(entries[1])


# The state machine ----------------------------------------------------------------------------


class _Delegate:
    """A PackRepository passing every call to the reference store: mutants override one."""

    def __init__(self, practice_id: str, timezone: str) -> None:
        self.inner = InMemoryStore().practice(practice_id, timezone)

    @property
    def practice(self) -> Practice:
        return self.inner.practice

    def load(self, pack_id: str) -> PackState:
        return self.inner.load(pack_id)

    def ledger(self, pack_id: str) -> tuple[Entry, ...]:
        return self.inner.ledger(pack_id)

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        return self.inner.client_packs(client_id, statuses=statuses, as_of=as_of, former=former)

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        return self.inner.pack_of_appointment(appointment_id)

    def expiry_candidates(self, as_of: date) -> list[PackState]:
        return self.inner.expiry_candidates(as_of)

    def find_packs(
        self, query: PackQuery, *, after: str | None = None, limit: int = 100
    ) -> PackPage:
        return self.inner.find_packs(query, after=after, limit=limit)

    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        return self.inner.commit(changes, client_packs=client_packs, command=command)

    def command(self, key: str) -> CommandRecord | None:
        return self.inner.command(key)

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        return self.inner.events_since(position, limit)

    def save_template(
        self, template: PackTemplate, *, command: CommandRecord | None = None
    ) -> None:
        self.inner.save_template(template, command=command)

    def template(self, template_id: str, version: int | None = None) -> PackTemplate:
        return self.inner.template(template_id, version)

    def templates(self) -> list[PackTemplate]:
        return self.inner.templates()

    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        self.inner.set_preference(client_id, preference, command=command)

    def preference(self, client_id: str) -> Preference | None:
        return self.inner.preference(client_id)


class _ForgetsPreferences(_Delegate):
    def set_preference(
        self,
        client_id: str,
        preference: Preference | None,
        *,
        command: CommandRecord | None = None,
    ) -> None:
        if preference is None:
            self.inner.set_preference(client_id, None, command=command)


class _DropsSessionNumbers(_Delegate):
    """Keeps the first usage only in the states it hands out: the balance still agrees."""

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        found = self.inner.client_packs(client_id, statuses=statuses, as_of=as_of, former=former)
        return [attrs.evolve(p, usages=p.usages[:1]) for p in found]


class _OverdrawsPacks(_Delegate):
    """Hands out states that consumed one unit more than the pack holds."""

    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        found = self.inner.client_packs(client_id, statuses=statuses, as_of=as_of, former=former)
        return [attrs.evolve(p, consumed_units=p.total_units + 1) for p in found]


class _DuplicatesUsages(_Delegate):
    def client_packs(
        self,
        client_id: str,
        *,
        statuses: Collection[PackStatus] | None = None,
        as_of: datetime | None = None,
        former: bool = False,
    ) -> list[PackState]:
        found = self.inner.client_packs(client_id, statuses=statuses, as_of=as_of, former=former)
        return [attrs.evolve(p, usages=p.usages + p.usages[:1]) for p in found]


class _RestartsPositions(_Delegate):
    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        found = self.inner.events_since(position, limit)
        return [RecordedEvent(n, r.event) for n, r in enumerate(found, start=1)]


class _EchoesEvents(_Delegate):
    """Every event twice, at positions of their own."""

    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        found = self.inner.events_since(position // 2, limit)
        return [RecordedEvent(2 * r.position - k, r.event) for r in found for k in (1, 0)]


class _LosesLateEvents(_Delegate):
    def events_since(self, position: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        return [r for r in self.inner.events_since(position, limit) if r.position <= 3]


class _RefusesUnknownPacks(_Delegate):
    def load(self, pack_id: str) -> PackState:
        try:
            return self.inner.load(pack_id)
        except NotFoundError as error:
            raise RefusedError("R2", "pack_id", pack_id, "unknown") from error


class _FailsOnAdjust(_Delegate):
    def commit(
        self,
        changes: Sequence[Change],
        *,
        client_packs: Mapping[str, int] | None = None,
        command: CommandRecord | None = None,
    ) -> tuple[RecordedEvent, ...]:
        if any(type(e).__name__ == "Adjusted" for c in changes for e in c.entries):
            raise StoreError("database", "clinic.db", "disk full")
        return self.inner.commit(changes, client_packs=client_packs, command=command)


class _ForgetsRebookings(_Delegate):
    """Answers pack_of_appointment from a cache that never learns of a release."""

    def __init__(self, practice_id: str, timezone: str) -> None:
        super().__init__(practice_id, timezone)
        self.seen: dict[str, str] = {}

    def pack_of_appointment(self, appointment_id: str) -> str | None:
        found = self.inner.pack_of_appointment(appointment_id)
        if found is not None:
            self.seen[appointment_id] = found
        return self.seen.get(appointment_id)


class _SkipsPageEnds(_Delegate):
    """Starts each page one pack past the cursor, as an off-by-one keyset would."""

    def find_packs(
        self, query: PackQuery, *, after: str | None = None, limit: int = 100
    ) -> PackPage:
        page = self.inner.find_packs(query, after=after, limit=limit)
        if after is None or not page.packs:
            return page
        return attrs.evolve(page, packs=page.packs[1:])


def _machine(make: Callable[[str, str], PackRepository]) -> type[StoreMachine]:
    class Machine(StoreMachine):
        def open_repository(self, practice_id: str, timezone: str) -> PackRepository:
            return make(practice_id, timezone)

    return Machine


_FIND = scaled(  # stops at the first failure: the floor of 200 costs nothing then
    1.0,
    minimum=200,
    stateful_step_count=25,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.generate],  # finding it is the point; shrinking would only cost time
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize(
    ("mutant", "message"),
    [
        (_ForgetsPreferences, "preference"),
        (_SkipsPageEnds, "find_packs"),
        (_OverdrawsPacks, "the balance is below zero"),
        (_DuplicatesUsages, r"sessions are numbered \[1, 1\]"),
        (_RestartsPositions, "positions must strictly increase"),
        (_EchoesEvents, "written twice"),
        (_DropsSessionNumbers, r"appointments in session order|\.usages"),
        (_LosesLateEvents, "events after position"),
        (_RefusesUnknownPacks, "RefusedError"),
        (_FailsOnAdjust, "StoreError"),
        (_ForgetsRebookings, "pack_of_appointment"),
    ],
)
def test_the_machine_fails_on_a_store_that_misbehaves(
    mutant: Callable[[str, str], PackRepository], message: str
) -> None:
    with pytest.raises(AssertionError, match=message):
        run_state_machine_as_test(_machine(mutant), settings=_FIND)


def test_the_machine_opens_and_closes_one_store_per_run() -> None:
    opened: list[str] = []
    closed: list[str] = []

    class Counting(StoreMachine):
        def open_repository(self, practice_id: str, timezone: str) -> PackRepository:
            opened.append(f"{practice_id} {timezone}")
            return InMemoryStore().practice(practice_id, timezone)

        def close_repository(self) -> None:
            closed.append("closed")

    run_state_machine_as_test(
        Counting,
        settings=scaled(0.025, stateful_step_count=3, database=None),  # 5 runs at least
    )
    assert len(opened) == len(closed) >= 5
    assert set(opened) == {"clinic-1 Australia/Sydney"}


def test_a_machine_without_a_store_says_what_to_implement() -> None:
    with pytest.raises(NotImplementedError, match="open_repository"):
        StoreMachine()


@pytest.fixture
def machine() -> Iterator[StoreMachine]:
    made = _machine(lambda p, tz: InMemoryStore().practice(p, tz))()
    yield made
    made.teardown()


def _only_on(target: PackService, error: SessionPacksError) -> Callable[[PackService], int]:
    def call(service: PackService) -> int:
        if service is target:
            raise error
        return 1

    return call


def test_both_compares_refusals_by_kind_and_rule(machine: StoreMachine) -> None:
    refused = RefusedError("R3", "pack_id", "P1", "nothing left")

    def both_refuse(service: PackService) -> None:
        raise RefusedError("R3", "pack_id", "P1", f"by {id(service)}")

    assert machine.both("both refuse alike", both_refuse) is None
    with pytest.raises(AssertionError, match="this store raised RefusedError"):
        machine.both("store only", _only_on(machine.service, refused))
    with pytest.raises(AssertionError, match="reference store refused it"):
        machine.both("reference only", _only_on(machine.reference, refused))

    def other_rule(service: PackService) -> None:
        rule = "R4" if service is machine.service else "R3"
        raise RefusedError(rule, "pack_id", "P1", "no")

    with pytest.raises(AssertionError, match="refused differently"):
        machine.both("rules differ", other_rule)


def test_both_compares_results_naming_what_differs(machine: StoreMachine) -> None:
    assert machine.both("equal", lambda s: [1, 2]) == [1, 2]
    with pytest.raises(AssertionError, match=r"\[1\]: 3 \(this store\) != 2 \(reference\)"):
        machine.both("lists", lambda s: [1, 3] if s is machine.service else [1, 2])
    with pytest.raises(AssertionError, match=r"\.b: None \(this store\) != 2 \(reference\)"):
        machine.both("dicts", lambda s: {"a": 1} if s is machine.service else {"a": 1, "b": 2})
    with pytest.raises(AssertionError, match=r"value: 1 items \(this store\) != 2 items") as raised:
        machine.both("lengths", lambda s: [1] if s is machine.service else [1, 2])
    assert "[1]: 2 on one side only" in str(raised.value)


def test_instants_are_compared_in_utc(machine: StoreMachine) -> None:
    """The repeated hour: Python's == calls these different; they are the same instant."""
    zoned = datetime(2026, 4, 5, 2, 30, tzinfo=SYDNEY)
    fixed = datetime.fromisoformat(zoned.isoformat())
    assert zoned != fixed
    assert zoned.astimezone(UTC) == fixed.astimezone(UTC)
    assert machine.both("fold", lambda s: fixed if s is machine.service else zoned) == zoned
    later = zoned + timedelta(hours=1)
    with pytest.raises(AssertionError):
        machine.both("later", lambda s: later.astimezone(UTC) if s is machine.service else zoned)


def test_a_refusal_on_both_sides_writes_nothing_on_either(machine: StoreMachine) -> None:
    machine.both("open", lambda s: s.open_pack("C1", terms=terms(1), pack_id="X"))
    machine.stores_agree()
    machine.both("again", lambda s: s.open_pack("C1", terms=terms(1), pack_id="X"))
    machine.stores_agree()
    assert len(machine.service.events_since(0)) == 1


def test_the_kit_reexports() -> None:
    import sessionpacks.testing as kit

    assert kit.StoreMachine is StoreMachine
    assert {"Opener", "RepositoryContract", "StoreMachine"} == set(kit.__all__)
    assert all(getattr(kit, name) is not None for name in kit.__all__)
    with pytest.raises(AttributeError, match="Nothing"):
        kit.Nothing  # noqa: B018
