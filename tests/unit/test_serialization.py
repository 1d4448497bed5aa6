"""The one encoding (issue 12): ISO 8601 durations to the microsecond, every member of a union
tagged with ``type``, amounts told by their JSON type, the forms of release 0.1.0 still read,
and the same data in the stores, in command results and in the CLI's JSON."""

from __future__ import annotations

import inspect
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionpacks import (
    Allowance,
    Appointment,
    ExpiresAfterOpening,
    Money,
    PackTemplate,
    PackTerms,
    Period,
    PerSession,
    Policies,
    PreferPack,
    Tier,
    model,
    operations,
    pricing,
    resolution,
    service,
)
from sessionpacks import events as ev
from sessionpacks import ledger as lg
from sessionpacks import serialization as ser
from sessionpacks import strategies as sps
from sessionpacks._cli import render
from sessionpacks._commands import decode_result, encode_result, fingerprint
from sessionpacks._encoding import TAGGED_UNIONS, iso_duration
from sessionpacks._limits import INT64_MAX
from sessionpacks.ports import CommandRecord
from sessionpacks.resolution import Decision, NoPack, OpenPack, PassedOver, UsePack

SYDNEY = ZoneInfo("Australia/Sydney")
AT = datetime(2026, 3, 3, 10, 0, tzinfo=SYDNEY)
AMOUNT: Any = model.Amount  # a union: cattrs takes it, mypy wants a class
FIXTURE = Path(__file__).parents[1] / "fixtures" / "release-0.1.0.db"

# Durations ----------------------------------------------------------------------------------

_R18_DURATIONS = st.one_of(
    st.integers(min_value=-INT64_MAX, max_value=INT64_MAX).map(lambda us: timedelta(0, 0, us)),
    st.sampled_from([timedelta(0, 0, INT64_MAX), timedelta(0, 0, -INT64_MAX), timedelta(0, 0, 1)]),
    st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=3)),
)


@given(_R18_DURATIONS)
def test_every_duration_r18_allows_round_trips_exactly(value: timedelta) -> None:
    text = ser.converter.unstructure(value)
    assert isinstance(text, str)
    assert text.lstrip("-").startswith("PT")
    assert ser.converter.structure(json.loads(json.dumps(text)), timedelta) == value
    amount = ser.converter.unstructure(value, AMOUNT)
    assert ser.converter.structure(amount, AMOUNT) == value
    assert ser.converter.structure(text, AMOUNT) == value
    microseconds = value // timedelta(microseconds=1)
    assert ser.converter.structure(microseconds, timedelta) == value  # as 0.1.0 wrote it


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=90), "PT1H30M"),
        (timedelta(hours=48), "PT48H"),
        (timedelta(0), "PT0S"),
        (-timedelta(minutes=30), "-PT30M"),
        (timedelta(seconds=1, microseconds=500_000), "PT1.5S"),
        (-timedelta(microseconds=1), "-PT0.000001S"),
        (timedelta(hours=1, microseconds=10), "PT1H0.00001S"),
        (timedelta(microseconds=INT64_MAX), "PT2562047788H54.775807S"),
    ],
)
def test_durations_are_iso_8601_in_hours_minutes_and_seconds(value: timedelta, text: str) -> None:
    assert iso_duration(value) == text
    assert ser.converter.structure(text, timedelta) == value


@pytest.mark.parametrize(
    "text", ["", "PT", "-PT", "P1D", "PT1.5H", "PT0.0000001S", "1h", "pt1h", "PT1S1M", True, 1.5]
)
def test_other_durations_do_not_load(text: object) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - cattrs wraps the reason in its own group
        ser.converter.structure(text, timedelta)


# Amounts, money, periods, instants ----------------------------------------------------------


def test_amounts_are_told_by_their_json_type() -> None:
    unstructure = ser.converter.unstructure
    assert unstructure(3, AMOUNT) == 3
    assert unstructure(timedelta(minutes=45), AMOUNT) == "PT45M"
    assert unstructure(Money("120", "AUD"), AMOUNT) == {"amount": "120.00", "currency": "AUD"}
    assert unstructure(None, AMOUNT | None) is None
    for value in (3, timedelta(minutes=45), Money("120", "AUD")):
        assert ser.converter.structure(unstructure(value, AMOUNT), AMOUNT) == value


@pytest.mark.parametrize(
    ("old", "value"),
    [
        ({"sessions": 3}, 3),
        ({"us": -1_800_000_000}, -timedelta(minutes=30)),
        ({"money": "1.00", "currency": "AUD"}, Money("1.00", "AUD")),
    ],
)
def test_amounts_as_release_0_1_0_wrote_them_still_load(old: object, value: object) -> None:
    assert ser.converter.structure(old, AMOUNT) == value


@pytest.mark.parametrize(
    "data", [True, None, 1.5, {"sessions": "3"}, {"us": 1.5}, {"amount": "1"}, {"money": 1}, []]
)
def test_other_amounts_do_not_load(data: object) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - cattrs wraps the reason in its own group
        ser.converter.structure(data, AMOUNT)


def test_periods_are_iso_8601_and_old_objects_load() -> None:
    assert ser.converter.unstructure(Period(years=1, weeks=2)) == "P1Y2W"
    assert ser.converter.structure("P3M", Period) == Period(months=3)
    old = {"days": 0, "months": 3, "weeks": 1, "years": 0}
    assert ser.converter.structure(old, Period) == Period(months=3, weeks=1)
    with pytest.raises(Exception):  # noqa: B017, PT011 - words are for people, not for stores
        ser.converter.structure("3 months", Period)


def test_instants_keep_their_offset_and_dates_are_iso() -> None:
    assert ser.converter.unstructure(AT) == "2026-03-03T10:00:00+11:00"
    assert ser.converter.structure("2026-03-03T10:00:00+11:00", datetime) == AT
    with pytest.raises(Exception):  # noqa: B017, PT011 - an instant is text, not a number
        ser.converter.structure(1_772_492_400, datetime)


def test_a_value_without_a_form_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot show object as JSON"):
        ser.converter.unstructure(object())
    with pytest.raises(TypeError, match="cannot show complex"):
        ser.make_converter().unstructure({"a": [1j]})


# Tagged unions ------------------------------------------------------------------------------


def _unions_in(kind: Any) -> list[Any]:
    """Every union of two or more attrs classes inside a type."""
    found = [u for arg in get_args(kind) for u in _unions_in(arg)]
    members = [a for a in get_args(kind) if a is not type(None)]
    union = get_origin(kind) is Union or type(kind).__name__ == "UnionType"
    if union and len(members) > 1 and all(attrs.has(m) for m in members):
        found.append(kind)
    return found


def _domain_classes() -> list[type[Any]]:
    modules = (model, lg, ev, operations, pricing, resolution, service)
    return [
        cls
        for module in modules
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if attrs.has(cls) and cls.__module__ == module.__name__
    ]


def test_every_union_of_the_domain_is_tagged() -> None:
    tagged = {member for union in TAGGED_UNIONS for member in get_args(union)}
    for cls in _domain_classes():
        for name, kind in get_type_hints(cls).items():
            for union in _unions_in(kind):
                untagged = set(get_args(union)) - tagged - {type(None)}
                assert not untagged, f"{cls.__name__}.{name}: add its union to TAGGED_UNIONS"


@pytest.mark.parametrize(
    "value",
    [UsePack("P1"), OpenPack("T1"), NoPack(), PreferPack("P1"), ExpiresAfterOpening(Period(1))],
)
def test_a_member_of_a_union_carries_its_type_wherever_it_is(value: Any) -> None:
    tag = type(value).__name__
    assert ser.converter.unstructure(value)["type"] == tag
    assert render.jsonable([value])[0]["type"] == tag
    assert ser.converter.structure(ser.converter.unstructure(value), type(value)) == value


def test_a_decision_in_the_cli_json_names_its_action() -> None:
    decision = Decision(UsePack("P1"), "preferred pack P1", (PassedOver("P2", "expired"),))
    assert render.jsonable(decision) == {
        "action": {"type": "UsePack", "pack_id": "P1"},
        "reason": "preferred pack P1",
        "passed_over": [{"candidate": "P2", "reason": "expired"}],
    }
    choice = resolution.Choice(OpenPack("T1"), "new pack")
    assert render.jsonable(choice)["action"] == {"type": "OpenPack", "template_id": "T1"}


def test_a_wrong_or_missing_tag_does_not_load() -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - cattrs wraps the reason in its own group
        ser.loads_preference('{"type":"PreferService","pack_id":"P1"}')
    with pytest.raises(Exception):  # noqa: B017, PT011
        ser.loads_preference('{"pack_id":"P1"}')
    with pytest.raises(Exception):  # noqa: B017, PT011
        ser.converter.structure({"type": "OpenPack", "pack_id": "P1"}, UsePack)


# The forms of release 0.1.0 ------------------------------------------------------------------

# Written by the converter of the commit before the one encoding, from the values below.
OLD_USED = (
    '{"appointment":{"client_id":"C1","duration":2700000001,"id":"A1","price":{"amount":"110.00",'
    '"currency":"AUD"},"service_id":"physio","start":"2026-03-03T10:00:00+11:00"},"covered":{"us"'
    ':2700000000},"pack_id":"pk1","recorded_at":"2026-03-03T10:00:00+11:00","sequence":2,'
    '"shortfall":{"us":0},"type":"Used"}'
)
OLD_TEMPLATE = (
    '{"id":"massage-5","terms":{"allowance":{"amount":{"us":18000000000},"metric":"hours"},'
    '"description":"","eligible_services":["massage","physio"],"expiry":{"period":{"days":0,'
    '"months":3,"weeks":1,"years":0},"type":"ExpiresAfterOpening"},"name":"5 h Massage",'
    '"policies":{"late_cancel_consumes":false,"late_cancel_notice":86400000000,"low_balance_at":'
    '{"us":3600000000},"no_show_consumes":false},"pricing":{"tiers":[{"from_session":1,"price":'
    '{"amount":"90.00","currency":"AUD"}},{"from_session":3,"price":{"amount":"80.00","currency":'
    '"AUD"}}],"type":"PerSession"}},"version":2}'
)
OLD_EVENTS = (
    '[{"event":{"appointment_id":"A1","client_id":"C1","covered":{"currency":"AUD","money":'
    '"110.00"},"event_id":"e1","number":1,"occurred_at":"2026-03-03T10:00:00+11:00","pack_id":'
    '"pk1","remaining":{"currency":"AUD","money":"390.00"},"shortfall":{"currency":"AUD","money":'
    '"0.00"},"type":"SessionUsed"},"position":1}]'
)
OLD_DECISION = (
    '{"action":{"pack_id":"pk1","type":"UsePack"},"passed_over":[{"candidate":"pk2","reason":'
    '"expired"}],"reason":"preferred pack pk1"}'
)


def _appointment() -> Appointment:
    duration = timedelta(minutes=45, microseconds=1)
    return Appointment("A1", "C1", "physio", AT, duration, Money("110.00", "AUD"))


def _used() -> lg.Used:
    return lg.Used(
        pack_id="pk1",
        sequence=2,
        recorded_at=AT,
        appointment=_appointment(),
        covered=timedelta(minutes=45),
        shortfall=timedelta(0),
    )


def _template() -> PackTemplate:
    tiers = (Tier(1, Money("90.00", "AUD")), Tier(3, Money("80.00", "AUD")))
    policies = Policies(
        late_cancel_notice=timedelta(hours=24),
        late_cancel_consumes=False,
        no_show_consumes=False,
        low_balance_at=timedelta(hours=1),
    )
    terms = PackTerms(
        name="5 h Massage",
        allowance=Allowance.hours(timedelta(hours=5)),
        pricing=PerSession(tiers),
        expiry=ExpiresAfterOpening(Period(months=3, weeks=1)),
        eligible_services=frozenset({"massage", "physio"}),
        policies=policies,
    )
    return PackTemplate("massage-5", terms, 2)


def _session_used() -> ev.SessionUsed:
    return ev.SessionUsed(
        event_id="e1",
        pack_id="pk1",
        client_id="C1",
        occurred_at=AT,
        appointment_id="A1",
        number=1,
        covered=Money("110.00", "AUD"),
        shortfall=Money("0.00", "AUD"),
        remaining=Money("390.00", "AUD"),
    )


def test_old_entries_and_templates_load_and_are_written_in_the_new_form() -> None:
    used = _used()
    assert ser.loads_entry(OLD_USED) == used
    assert json.loads(ser.dumps_entry(used))["appointment"]["duration"] == "PT45M0.000001S"
    assert json.loads(ser.dumps_entry(used))["covered"] == "PT45M"
    assert ser.loads_template(OLD_TEMPLATE) == _template()
    terms = json.loads(ser.dumps_template(_template()))["terms"]
    assert terms["allowance"] == {"amount": "PT5H", "metric": "hours"}
    assert terms["expiry"] == {"type": "ExpiresAfterOpening", "period": "P3M1W"}
    assert terms["policies"]["late_cancel_notice"] == "PT24H"
    assert terms["policies"]["low_balance_at"] == "PT1H"


def test_an_old_command_result_decodes() -> None:
    record = CommandRecord("k", "fp1:x", OLD_EVENTS, first_position=40)
    assert decode_result(record, tuple[ev.RecordedEvent, ...]) == (
        ev.RecordedEvent(41, _session_used()),
    )
    decision = Decision(UsePack("pk1"), "preferred pack pk1", (PassedOver("pk2", "expired"),))
    assert decode_result(CommandRecord("k", "fp1:x", OLD_DECISION), Decision) == decision
    text = encode_result(decision, Decision)
    assert decode_result(CommandRecord("k", "fp1:x", text), Decision) == decision
    assert json.loads(encode_result((ev.RecordedEvent(1, _session_used()),), Any))[0]["event"][
        "covered"
    ] == {"amount": "110.00", "currency": "AUD"}


def test_fingerprints_do_not_follow_the_encoding() -> None:
    """Stored in the commands table and compared on a retry: the digest of release 0.1.x."""
    arguments = {
        "appointment": attrs.evolve(_appointment(), duration=timedelta(minutes=45)),
        "pack_id": None,
        "amount": timedelta(minutes=-30),
        "preference": PreferPack("P1"),
    }
    assert fingerprint("book", arguments) == (
        "fp1:a397e7e78209c692f9c84943e68ad2298bbb653f4b24cc2c448f3db401563687"
    )


_COLUMNS = [
    ("packs", "state", lg.PackState),
    ("entries", "entry", lg.Entry),
    ("events", "event", ev.Event),
    ("templates", "template", PackTemplate),
    ("preferences", "preference", model.Preference),
]


def _old_forms(data: Any) -> list[Any]:
    """Pieces of ``data`` in a form only release 0.1.0 writes."""
    if isinstance(data, list):
        return [f for item in data for f in _old_forms(item)]
    if not isinstance(data, dict):
        return []
    here = [data] if set(data) & {"us", "sessions", "money"} else []
    if {"days", "months", "weeks", "years"} <= set(data):
        here.append(data)
    for key in ("duration", "late_cancel_notice"):
        if isinstance(data.get(key), int):
            here.append(data)
    return here + [f for value in data.values() for f in _old_forms(value)]


@pytest.mark.parametrize(("table", "column", "kind"), _COLUMNS)
def test_every_value_of_the_0_1_0_file_loads_and_comes_back_in_the_new_form(
    table: str, column: str, kind: Any
) -> None:
    with closing(sqlite3.connect(f"file:{FIXTURE}?mode=ro", uri=True)) as raw:
        texts = [row[0] for row in raw.execute(f"SELECT {column} FROM {table}")]
    assert texts
    assert any(_old_forms(json.loads(text)) for text in texts) or table == "preferences"
    for text in texts:
        value = ser.converter.structure(json.loads(text), kind)
        again = json.loads(json.dumps(ser.converter.unstructure(value, kind)))
        assert _old_forms(again) == []
        assert ser.converter.structure(again, kind) == value


# One encoding for stores and the CLI ----------------------------------------------------------


@given(sps.templates())
def test_a_template_is_the_same_data_in_the_store_and_in_the_cli(template: PackTemplate) -> None:
    stored = json.loads(ser.dumps_template(template))
    assert stored == json.loads(render.dumps(template))
    assert ser.loads_template(json.dumps(stored)) == template


def test_the_machine_compares_instants_in_utc() -> None:
    from sessionpacks.testing.stateful import _plain

    assert _plain(AT) == _plain(AT.astimezone(UTC)) == "2026-03-02T23:00:00+00:00"
    used = _used()
    moved = attrs.evolve(used, recorded_at=AT.astimezone(UTC))
    assert _plain(used) == _plain(moved)
    assert _plain(used)["type"] == "Used"
