"""The host's appointment row, written in the same transaction as its pack usage."""

from __future__ import annotations

from django.db import models


# excerpt: model
class Booking(models.Model):  # type: ignore[misc]
    appointment_id = models.CharField(max_length=200, unique=True)
    client_id = models.CharField(max_length=200)
    pack_id = models.CharField(max_length=200, blank=True)


# end excerpt
