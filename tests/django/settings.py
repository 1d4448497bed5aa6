"""The test project's settings: the app, a host app, SQLite and (when there is one) PostgreSQL.

``conftest.py`` passes these to ``settings.configure()``. Both test databases get a name unique
to the run (the process id and a random part), since two runs may share the PostgreSQL server;
the ``postgres`` alias is filled from the server ``tests/pg_support.py`` finds, when a test asks
for it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

PG = "postgres"
"""The alias of the PostgreSQL database (its tests ask for the ``django_pg_db`` fixture)."""

RUN = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
"""This run's part of the test databases' names."""

INSTALLED_APPS = ["sessionpacks.contrib.django", "tests.django.host"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",  # never used: the tests run on the TEST database
        # Threads write at once in the contract suite: each transaction takes the write lock
        # at its start and waits for it (20 s) rather than failing on upgrading a read.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        # A file, not Django's shared in-memory database: its table locks are not waited on.
        "TEST": {"NAME": str(Path(tempfile.gettempdir()) / f"test_sessionpacks_{RUN}.sqlite3")},
    },
    PG: {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "HOST": "127.0.0.1",
        "TEST": {"NAME": f"test_sessionpacks_{RUN}"},
    },
}

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SECRET_KEY = "tests only"
