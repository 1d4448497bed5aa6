"""The app's configuration: label ``sessionpacks``, so its tables are ``sessionpacks_*``."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["SessionPacksConfig"]


class SessionPacksConfig(AppConfig):  # type: ignore[misc]  # Django ships no types
    """The ``sessionpacks.contrib.django`` app."""

    name = "sessionpacks.contrib.django"
    label = "sessionpacks"
    verbose_name = "Session packs"
    default_auto_field = "django.db.models.BigAutoField"
