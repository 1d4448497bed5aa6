"""Django for the tests of ``sessionpacks.contrib.django``, configured here only.

Settings come from ``settings.py`` through ``settings.configure()`` in :func:`pytest_configure`,
which pytest calls when it loads this file: a run that collects nothing under ``tests/django``
never configures Django, and the rest of the suite runs as it would without pytest-django.

Two databases: ``default`` (SQLite, a file) for every test, and ``postgres`` for the tests
that ask for :func:`django_pg_db`. That fixture takes its server from ``tests/pg_support.py``
(skipping locally without one, failing under ``CI=true``), so :func:`django_db_setup` here sets
up SQLite only, where pytest-django's would set up every alias the collected tests name before
any of them could skip. Each run's test databases have names of their own
(``settings.RUN``) and are dropped at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django
import psycopg
import pytest
from django.conf import settings
from psycopg.conninfo import conninfo_to_dict

from ..pg_support import pg_dsn
from .settings import PG

__all__ = ["django_db_setup", "django_pg_db", "pg_dsn"]


def pytest_configure() -> None:
    if settings.configured:
        return
    from . import settings as project

    settings.configure(**{name: getattr(project, name) for name in dir(project) if name.isupper()})
    django.setup()


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment: None, django_db_blocker: Any) -> Iterator[None]:
    """The SQLite test database (migrated), dropped at the end of the run."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        created = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(created, verbosity=0)


@pytest.fixture(scope="session")
def django_pg_db(pg_dsn: str, django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """The ``postgres`` alias on this run's own test database (migrated) on the server of
    ``pg_dsn``; dropped at the end of the run. Returns the alias."""
    from django.db import connections

    params = conninfo_to_dict(pg_dsn)
    database = connections.settings[PG]
    database.update(
        HOST=str(params.get("host", "127.0.0.1")),
        PORT=str(params.get("port", "")),
        USER=str(params.get("user", "")),
        PASSWORD=str(params.get("password", "")),
        NAME=str(params.get("dbname", "postgres")),
    )
    connection = connections[PG]
    connection.settings_dict.update(database)
    with django_db_blocker.unblock():
        original = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        test_name = connection.settings_dict["NAME"]
    yield PG
    with django_db_blocker.unblock():
        connections.close_all()
        _end_sessions(pg_dsn, test_name)
        connection.creation.destroy_test_db(original, verbosity=0)


def _end_sessions(dsn: str, database: str) -> None:
    """End the sessions still on this run's test database (threads' connections nobody
    closed), which would keep it from being dropped; no other database's."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
