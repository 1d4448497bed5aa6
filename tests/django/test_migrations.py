"""The committed migrations match the models, and create every table the store uses."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from sessionpacks.contrib.django import models


@pytest.mark.django_db
def test_makemigrations_finds_nothing_missing() -> None:
    out = io.StringIO()
    # --check exits non-zero (SystemExit) when a model change has no migration.
    call_command("makemigrations", "sessionpacks", check=True, dry_run=True, stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_the_migrations_create_every_table() -> None:
    tables = set(connection.introspection.table_names())
    expected = {getattr(models, name)._meta.db_table for name in models.__all__}
    assert expected <= tables
    assert all(name.startswith("sessionpacks_") for name in expected)
