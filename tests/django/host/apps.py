"""A host's own app, for the tests: appointments in the host's tables."""

from __future__ import annotations

from django.apps import AppConfig


class HostConfig(AppConfig):  # type: ignore[misc]
    name = "tests.django.host"
    label = "host"
    default_auto_field = "django.db.models.BigAutoField"
