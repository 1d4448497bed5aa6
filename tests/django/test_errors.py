"""Database errors reach the caller as the library's, naming the field and the value."""

from __future__ import annotations

import pytest
from django.db import DataError, IntegrityError, InterfaceError, OperationalError

from sessionpacks.contrib.django._errors import judged, translated
from sessionpacks.contrib.django.store import DjangoStore
from sessionpacks.errors import (
    ConcurrencyError,
    ConnectionLostError,
    InvalidValueError,
    NotFoundError,
    StoreError,
)

from .settings import PG


class _DriverError(Exception):
    """A driver's error: psycopg's carry ``sqlstate``, sqlite3's ``sqlite_errorname``."""

    def __init__(self, sqlstate: str | None = None, sqlite_errorname: str | None = None) -> None:
        super().__init__("driver says no\nDETAIL: more")
        if sqlstate is not None:
            self.sqlstate = sqlstate
        if sqlite_errorname is not None:
            self.sqlite_errorname = sqlite_errorname


def _wrapped(kind: type[Exception], cause: _DriverError) -> Exception:
    error = kind("driver says no\nDETAIL: more")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("kind", "cause", "expected"),
    [
        (IntegrityError, _DriverError(sqlstate="23505"), ConcurrencyError),
        (OperationalError, _DriverError(sqlstate="40001"), ConcurrencyError),
        (OperationalError, _DriverError(sqlstate="40P01"), ConcurrencyError),
        (
            IntegrityError,
            _DriverError(sqlite_errorname="SQLITE_CONSTRAINT_UNIQUE"),
            ConcurrencyError,
        ),
        (IntegrityError, _DriverError(sqlite_errorname="SQLITE_CONSTRAINT_CHECK"), StoreError),
        (IntegrityError, _DriverError(sqlstate="23514"), StoreError),
        (DataError, _DriverError(sqlstate="22021"), InvalidValueError),
        (OperationalError, _DriverError(), ConnectionLostError),
        (OperationalError, _DriverError(sqlstate="08006"), ConnectionLostError),
        (OperationalError, _DriverError(sqlstate="57P01"), ConnectionLostError),
        (InterfaceError, _DriverError(), ConnectionLostError),
        (OperationalError, _DriverError(sqlstate="57014"), StoreError),
        (OperationalError, _DriverError(sqlite_errorname="SQLITE_BUSY"), StoreError),
        (OperationalError, _DriverError(sqlite_errorname="SQLITE_IOERR"), StoreError),
    ],
)
def test_each_error_is_judged(kind: type[Exception], cause: _DriverError, expected: type) -> None:
    error = judged(_wrapped(kind, cause), "pack_id", "p1")
    assert type(error) is expected
    assert (error.field, error.value) == ("pack_id", "p1")
    assert "DETAIL" not in str(error)


def test_the_library_errors_pass_through() -> None:
    with pytest.raises(NotFoundError), translated("pack_id", "p1"):
        raise NotFoundError("pack_id", "p1", "no such pack")


@pytest.mark.django_db
def test_a_value_sqlite_cannot_encode_is_an_invalid_value() -> None:
    repo = DjangoStore().practice("clinic-1", "Australia/Sydney")
    with pytest.raises(InvalidValueError) as raised:
        repo.load("p\ud800")
    assert (raised.value.field, raised.value.value) == ("pack_id", "p\ud800")


@pytest.mark.postgres
@pytest.mark.django_db(databases=[PG])
@pytest.mark.usefixtures("django_pg_db")
def test_a_value_postgresql_cannot_hold_is_an_invalid_value() -> None:
    repo = DjangoStore(PG).practice("clinic-1", "Australia/Sydney")
    with pytest.raises(InvalidValueError) as raised:
        repo.load("p\x00")
    assert (raised.value.field, raised.value.value) == ("pack_id", "p\x00")


def test_an_unknown_alias_is_refused() -> None:
    with pytest.raises(InvalidValueError) as raised:
        DjangoStore("nowhere")
    assert raised.value.field == "using"
