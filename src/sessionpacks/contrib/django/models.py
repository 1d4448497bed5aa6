"""The app's tables: one model per table of the library's SQL stores, in Django's own naming.

The columns are the SQL core's (``sessionpacks.adapters._sql.schema``), so the two read alike,
but the tables are Django's: each has the surrogate ``id`` Django wants, which also orders packs
as opened and templates as saved, and the app's migrations create and change them. Every row
carries its practice, and every query the store runs filters on it (tenant isolation).

Values are the library's one encoding, :mod:`sessionpacks.serialization` (JSON text, ASCII
only), kept in ``TextField``\\ s: a host can read them with any JSON tool, or cast them to
``jsonb`` in PostgreSQL. The other columns of a pack are derived from its state, for the
queries (who owns it, what is due to expire).

A host never writes these tables itself: :class:`~sessionpacks.contrib.django.store.DjangoStore`
keeps the invariants the library relies on (versions, one pack per active appointment, the
event positions). Reading them (an admin page, a report) is fine.
"""

from __future__ import annotations

from django.db import models

from sessionpacks._limits import MAX_ID_LENGTH

__all__ = [
    "ActiveUsage",
    "SharedPack",
    "StoredCommand",
    "StoredEntry",
    "StoredEvent",
    "StoredPack",
    "StoredPractice",
    "StoredPreference",
    "StoredTemplate",
]

_KIND_LENGTH = 100  # a class name: "Used", "PackOpened"...
# An event id is its pack's id with a suffix ("P1#3.1").
_EVENT_ID_LENGTH = MAX_ID_LENGTH + 55


def _id_field() -> models.CharField:
    return models.CharField(max_length=MAX_ID_LENGTH)


def _practice() -> models.ForeignKey:
    # The column holds the practice's id itself, as in the SQL core.
    return models.ForeignKey(
        "StoredPractice", on_delete=models.CASCADE, db_column="practice_id", related_name="+"
    )


class StoredPractice(models.Model):  # type: ignore[misc]  # Django ships no types
    """A practice (tenant): its time zone and the last position of its event stream."""

    practice_id = models.CharField(max_length=MAX_ID_LENGTH, primary_key=True)
    timezone = models.CharField(max_length=MAX_ID_LENGTH)
    last_position = models.BigIntegerField(default=0)

    class Meta:
        db_table = "sessionpacks_practice"


class StoredPack(models.Model):  # type: ignore[misc]
    """A pack's folded state (``state``, JSON) and the columns the queries read."""

    practice = _practice()
    pack_id = _id_field()
    client_id = _id_field()
    version = models.IntegerField()
    state = models.TextField()
    expiry_date = models.DateField(null=True)
    ended = models.BooleanField()
    remaining_units = models.BigIntegerField()
    expired_on = models.DateField(null=True)
    pending_expiry = models.DateField(null=True)
    # What find_packs narrows by (sessionpacks.adapters._common.QueryColumns).
    lasting_status = models.CharField(max_length=20, null=True)
    open_until = models.DateField(null=True)
    remaining_unit = models.CharField(max_length=20, null=True)
    template_id = models.CharField(max_length=MAX_ID_LENGTH, null=True)

    class Meta:
        db_table = "sessionpacks_pack"
        constraints = (
            models.UniqueConstraint(fields=["practice", "pack_id"], name="sessionpacks_pack_key"),
        )
        indexes = (
            models.Index(fields=["practice", "client_id", "id"], name="sessionpacks_pack_client"),
            models.Index(
                fields=["practice", "pending_expiry"],
                name="sessionpacks_pack_expiring",
                condition=models.Q(pending_expiry__isnull=False),
            ),
            models.Index(
                fields=["practice", "lasting_status", "pack_id"],
                name="sessionpacks_pack_lasting",
                condition=models.Q(lasting_status__isnull=False),
            ),
            models.Index(
                fields=["practice", "open_until"],
                name="sessionpacks_pack_open_until",
                condition=models.Q(open_until__isnull=False),
            ),
            models.Index(
                fields=["practice", "expiry_date"],
                name="sessionpacks_pack_expiry",
                condition=models.Q(expiry_date__isnull=False),
            ),
            models.Index(
                fields=["practice", "remaining_unit", "remaining_units"],
                name="sessionpacks_pack_left",
            ),
            models.Index(
                fields=["practice", "template_id", "pack_id"],
                name="sessionpacks_pack_template",
                condition=models.Q(template_id__isnull=False),
            ),
        )


class StoredEntry(models.Model):  # type: ignore[misc]
    """One ledger entry (JSON); ``(practice, pack_id, sequence)`` is unique: append-only."""

    practice = _practice()
    pack_id = _id_field()
    sequence = models.IntegerField()
    kind = models.CharField(max_length=_KIND_LENGTH)
    entry = models.TextField()

    class Meta:
        db_table = "sessionpacks_entry"
        constraints = (
            models.UniqueConstraint(
                fields=["practice", "pack_id", "sequence"], name="sessionpacks_entry_key"
            ),
        )


class StoredEvent(models.Model):  # type: ignore[misc]
    """One event of the practice's stream (JSON), at its position (1, 2, 3...)."""

    practice = _practice()
    position = models.BigIntegerField()
    event_id = models.CharField(max_length=_EVENT_ID_LENGTH)
    pack_id = _id_field()
    kind = models.CharField(max_length=_KIND_LENGTH)
    event = models.TextField()

    class Meta:
        db_table = "sessionpacks_event"
        constraints = (
            models.UniqueConstraint(
                fields=["practice", "position"], name="sessionpacks_event_position"
            ),
            models.UniqueConstraint(fields=["practice", "event_id"], name="sessionpacks_event_id"),
        )


class ActiveUsage(models.Model):  # type: ignore[misc]
    """An appointment active on a pack; unique per practice and appointment (R6)."""

    practice = _practice()
    appointment_id = _id_field()
    pack_id = _id_field()

    class Meta:
        db_table = "sessionpacks_active_usage"
        constraints = (
            models.UniqueConstraint(
                fields=["practice", "appointment_id"], name="sessionpacks_usage_key"
            ),
        )


class SharedPack(models.Model):  # type: ignore[misc]
    """A client beside its owner who may draw on a pack (R20): a client's packs are those they
    own and these."""

    practice = _practice()
    client_id = _id_field()
    pack_id = _id_field()

    class Meta:
        db_table = "sessionpacks_shared_pack"
        constraints = (
            models.UniqueConstraint(
                fields=["practice", "client_id", "pack_id"], name="sessionpacks_shared_key"
            ),
        )


class StoredTemplate(models.Model):  # type: ignore[misc]
    """One version of a template (JSON); ``id`` is the order saved."""

    practice = _practice()
    template_id = _id_field()
    version = models.IntegerField()
    template = models.TextField()

    class Meta:
        db_table = "sessionpacks_template"
        constraints = (
            models.UniqueConstraint(
                fields=["practice", "template_id", "version"], name="sessionpacks_template_key"
            ),
        )


class StoredPreference(models.Model):  # type: ignore[misc]
    """A client's preferred service, template or pack (JSON)."""

    practice = _practice()
    client_id = _id_field()
    preference = models.TextField()

    class Meta:
        db_table = "sessionpacks_preference"
        constraints = (
            models.UniqueConstraint(
                fields=["practice", "client_id"], name="sessionpacks_preference_key"
            ),
        )


class StoredCommand(models.Model):  # type: ignore[misc]
    """A command's idempotency key, fingerprint and result (R27), written with its changes."""

    practice = _practice()
    key = _id_field()
    fingerprint = models.TextField()
    result = models.TextField()
    first_position = models.BigIntegerField()

    class Meta:
        db_table = "sessionpacks_command"
        constraints = (
            models.UniqueConstraint(fields=["practice", "key"], name="sessionpacks_command_key"),
        )
