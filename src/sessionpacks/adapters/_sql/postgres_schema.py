"""PostgreSQL's part of the schema: the ``commit_changes`` functions and the schema steps that
create them, beside the core's tables. No driver here, so every store on PostgreSQL (psycopg's
own, SQLAlchemy's) shares them without loading a pool.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from sessionpacks.adapters._common import Sharing
from sessionpacks.adapters._sql import schema as core_schema
from sessionpacks.adapters._sql.dialect import postgres
from sessionpacks.adapters._sql.rows import PROJECTION, PROJECTION_TYPES, V3_PROJECTION
from sessionpacks.adapters._sql.schema import statements
from sessionpacks.adapters._sql.session import Session, Step
from sessionpacks.errors import InvalidValueError
from sessionpacks.operations import Change
from sessionpacks.ports import CommandRecord

__all__ = [
    "ARGUMENTS",
    "COMMIT_FUNCTION",
    "FUNCTIONS",
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "Commit",
    "check_schema",
    "commit_call",
    "partitions_of",
]

# pg_advisory_xact_lock(classid, objid): classid says "sessionpacks schema upgrade", objid is
# hashtext(schema), so upgrades of different schemas do not wait for each other.
MIGRATION_LOCK = 0x5E5510
"""The advisory lock class an upgrade of a schema holds (with ``hashtext(schema)``)."""

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema(schema: object) -> str:
    """``schema`` if it is a lower-case SQL identifier of at most 63 characters."""
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidValueError(
            "schema", schema, "must be a lower-case SQL identifier of at most 63 characters"
        )
    return schema


# The commit is one call of commit_changes, so one round trip and one implicit transaction. Pack
# rows are written in the order given (the caller sorts them by id), the counter row last: no
# deadlock between commits. A conflict raises with the field in COLUMN and the value in DETAIL.
# Each schema version has its own function (PostgreSQL tells them apart by their arguments);
# the earlier ones stay, so processes of an earlier release keep working during an upgrade.


def _pack_writes(columns: Sequence[tuple[str, str]], *, terms: bool = False) -> str:
    """The function's loop writing pack rows: each projection column from its argument and,
    from version 6 (``terms``), a new pack's terms from ``p_terms``, kept on an update (or, in
    a row a writer of an earlier release opened, taken from the whole state it holds)."""
    names = ", ".join(column for column, _ in columns)
    values = ", ".join(f"{argument}[i]" for _, argument in columns)
    sets = ", ".join(f"{column} = {argument}[i]" for column, argument in columns)
    if terms:
        names, values = f"{names}, terms", f"{values}, p_terms[i]"
        sets += ",\n                    terms = coalesce(terms, (state::json -> 'terms')::text)"
    return f"""        FOR i IN 1 .. coalesce(array_length(p_packs, 1), 0) LOOP
            IF p_expected[i] = 0 THEN
                INSERT INTO {{schema}}.packs (practice_id, pack_id, {names})
                VALUES (p_practice, p_packs[i], {values})
                ON CONFLICT (practice_id, pack_id) DO NOTHING;
            ELSE
                UPDATE {{schema}}.packs SET {sets}
                WHERE practice_id = p_practice AND pack_id = p_packs[i]
                  AND version = p_expected[i];
            END IF;
            GET DIAGNOSTICS written = ROW_COUNT;
            IF written = 0 THEN
                SELECT version INTO current_version FROM {{schema}}.packs
                WHERE practice_id = p_practice AND pack_id = p_packs[i];
                RAISE EXCEPTION 'is at version %, not %', coalesce(current_version, 0),
                    p_expected[i]
                    USING ERRCODE = 'serialization_failure', COLUMN = 'pack_id',
                          DETAIL = p_packs[i];
            END IF;
        END LOOP;
"""


# What every version writes after the packs: entries, active usages, events.
_OTHER_WRITES = """\
        INSERT INTO {schema}.entries (practice_id, pack_id, sequence, kind, entry)
        SELECT p_practice, e.pack_id, e.sequence, e.kind, e.entry
        FROM unnest(e_packs, e_sequences, e_kinds, e_entries) AS e(pack_id, sequence, kind, entry);
        -- Releases first, so a move in one commit frees the appointment before it is taken.
        DELETE FROM {schema}.active_usages
        WHERE practice_id = p_practice AND appointment_id = ANY (u_released);
        FOR i IN 1 .. coalesce(array_length(u_appointments, 1), 0) LOOP
            -- The same pack holding it already is no conflict; another pack is (R6).
            INSERT INTO {schema}.active_usages (practice_id, appointment_id, pack_id)
            VALUES (p_practice, u_appointments[i], u_packs[i])
            ON CONFLICT (practice_id, appointment_id) DO UPDATE SET pack_id = EXCLUDED.pack_id
            WHERE active_usages.pack_id = EXCLUDED.pack_id;
            GET DIAGNOSTICS written = ROW_COUNT;
            IF written = 0 THEN
                SELECT pack_id INTO holder FROM {schema}.active_usages
                WHERE practice_id = p_practice AND appointment_id = u_appointments[i];
                RAISE EXCEPTION 'is active on pack % (R6)', holder
                    USING ERRCODE = 'unique_violation', COLUMN = 'appointment_id',
                          DETAIL = u_appointments[i];
            END IF;
        END LOOP;
        IF coalesce(array_length(v_ids, 1), 0) > 0 THEN
            -- The counter row stays locked until this transaction ends (module docstring).
            UPDATE {schema}.practices SET last_position = last_position + array_length(v_ids, 1)
            WHERE practice_id = p_practice
            RETURNING last_position - array_length(v_ids, 1) INTO base;
            INSERT INTO {schema}.events (practice_id, position, event_id, pack_id, kind, event)
            SELECT p_practice, base + e.n, e.event_id, e.pack_id, e.kind, e.event
            FROM unnest(v_ids, v_packs, v_kinds, v_events)
                 WITH ORDINALITY AS e(event_id, pack_id, kind, event, n);
        END IF;
"""

# R13a: a commit opening a pack for a client, or deciding on a client's packs, holds that
# client's advisory lock until it ends, so the next one counts after it. Keyed by schema,
# practice and client (ids hold no control characters): other clients, and other schemas of
# the same database, never wait. Taken in client order, so two such commits cannot deadlock.
_CLIENT_CHECK = """\
        PERFORM pg_advisory_xact_lock(
            hashtextextended('{schema}' || E'\\x1f' || p_practice || E'\\x1f' || c, 7))
        FROM (SELECT DISTINCT c FROM (
                  SELECT {clients}[i] AS c FROM generate_subscripts(p_packs, 1) AS i
                  WHERE p_expected[i] = 0
                  UNION SELECT unnest(c_clients)) AS named
              ORDER BY c) AS locked;
        FOR i IN 1 .. coalesce(array_length(c_clients, 1), 0) LOOP
            SELECT count(*) INTO counted FROM {schema}.packs
            WHERE practice_id = p_practice AND client_id = c_clients[i];
            IF counted <> c_counts[i] THEN
                RAISE EXCEPTION 'has % pack(s), not the % the decision was made on (R13a)',
                    counted, c_counts[i]
                    USING ERRCODE = 'serialization_failure', COLUMN = 'client_id',
                          DETAIL = c_clients[i];
            END IF;
        END LOOP;
"""

# R20 (version 5): the clients each pack is shared with, after the pack rows they refer to.
_SHARING = """\
        DELETE FROM {schema}.shared_packs AS sp
        USING unnest(s_packs, s_clients, s_listed) AS s(pack_id, client_id, listed)
        WHERE sp.practice_id = p_practice AND sp.client_id = s.client_id
          AND sp.pack_id = s.pack_id AND NOT s.listed;
        INSERT INTO {schema}.shared_packs (practice_id, client_id, pack_id)
        SELECT p_practice, s.client_id, s.pack_id
        FROM unnest(s_packs, s_clients, s_listed) AS s(pack_id, client_id, listed)
        WHERE s.listed
        ON CONFLICT (practice_id, client_id, pack_id) DO NOTHING;
"""

# Version 7: a commit decided on states the process remembers names the practice's repairs it
# knew them at. Checked after the pack rows are written, when their lock is held, so that no
# rebuild (which locks the table) is in progress and any before it is seen.
_REPAIRS_CHECK = """\
        IF r_repairs IS NOT NULL THEN
            PERFORM 1 FROM {schema}.practices
            WHERE practice_id = p_practice AND repairs = r_repairs;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'was repaired by rebuild_snapshots since this process read it'
                    USING ERRCODE = 'serialization_failure', COLUMN = 'practice_id',
                          DETAIL = p_practice;
            END IF;
        END IF;
"""

# R27: the idempotency record, written last with the position before the first event.
_COMMAND_RECORD = """        IF k_key IS NOT NULL THEN
            INSERT INTO {schema}.commands (practice_id, key, fingerprint, result, first_position)
            VALUES (p_practice, k_key, k_fingerprint, k_result, base)
            ON CONFLICT (practice_id, key) DO NOTHING;
            GET DIAGNOSTICS written = ROW_COUNT;
            IF written = 0 THEN
                RAISE EXCEPTION 'was recorded by a concurrent command (R27)'
                    USING ERRCODE = 'unique_violation', COLUMN = 'idempotency_key',
                          DETAIL = k_key;
            END IF;
        END IF;
"""


def _function(
    create: str, parameters: Sequence[tuple[str, str]], body: str, clients: str | None
) -> str:
    """One version of ``commit_changes``: its arguments, the client check, ``body`` and the
    command record; ``clients`` names the argument holding each pack's client (``None``:
    version 1, which has neither the check nor the record)."""
    check = "" if clients is None else _CLIENT_CHECK.replace("{clients}", clients)
    arguments = ",\n        ".join(f"{name} {kind}" for name, kind in parameters)
    return (
        f"""{create} {{schema}}.commit_changes(
        {arguments}
    ) RETURNS bigint LANGUAGE plpgsql AS $body$
    DECLARE
        written integer;
        current_version integer;
        holder text;
        counted bigint;
        base bigint := 0;
    BEGIN
"""
        + check
        + body
        + _OTHER_WRITES
        + ("" if clients is None else _COMMAND_RECORD)
        + """        RETURN base;
    END
    $body$"""
    )


# Versions 1 and 2 name the projection columns' arguments their own way.
_V1_COLUMNS = (
    ("client_id", "p_clients"),
    ("version", "p_versions"),
    ("state", "p_states"),
    ("expiry_date", "p_expiry_dates"),
    ("ended", "p_ended"),
    ("remaining_units", "p_remaining"),
    ("expired_on", "p_expired_on"),
)
_V1_ARGUMENTS = (
    ("p_practice", "text"),
    ("p_packs", "text[]"),
    ("p_expected", "integer[]"),
    ("p_versions", "integer[]"),
    ("p_clients", "text[]"),
    ("p_states", "text[]"),
    ("p_expiry_dates", "date[]"),
    ("p_ended", "boolean[]"),
    ("p_remaining", "bigint[]"),
    ("p_expired_on", "date[]"),
    ("e_packs", "text[]"),
    ("e_sequences", "integer[]"),
    ("e_kinds", "text[]"),
    ("e_entries", "text[]"),
    ("u_released", "text[]"),
    ("u_appointments", "text[]"),
    ("u_packs", "text[]"),
    ("v_ids", "text[]"),
    ("v_packs", "text[]"),
    ("v_kinds", "text[]"),
    ("v_events", "text[]"),
)
_V2_ARGUMENTS = (
    *_V1_ARGUMENTS,
    ("c_clients", "text[]"),
    ("c_counts", "bigint[]"),
    ("k_key", "text"),
    ("k_fingerprint", "text"),
    ("k_result", "text"),
)


@attrs.frozen
class Commit:
    """What one commit writes, in the order ``commit_changes`` takes it: packs by id."""

    practice_id: str
    packs: list[Change]
    columns: list[tuple[Any, ...]]  # each pack's projection
    entries: list[tuple[str, int, str, str]]
    released: list[str]
    used: dict[str, str]
    events: list[tuple[str, str, str, str]]
    client_packs: Mapping[str, int]
    command: CommandRecord | None
    sharing: Sharing = attrs.field(factory=Sharing)
    terms: list[str | None] = attrs.field(factory=list)  # a new pack's terms, else None
    repairs: int | None = None  # the practice's repairs the decision knew (None: unchecked)

    @property
    def shares(self) -> list[tuple[str, str, bool]]:
        """``(pack_id, client_id, listed)``: the clients to list, then those to unlist."""
        added, removed = self.sharing.added, self.sharing.removed
        return [(p, c, True) for p, c in added] + [(p, c, False) for p, c in removed]


def _projected(index: int) -> Callable[[Commit], list[Any]]:
    return lambda commit: [columns[index] for columns in commit.columns]


def _field(rows: str, index: int) -> Callable[[Commit], list[Any]]:
    return lambda commit: [row[index] for row in getattr(commit, rows)]


def _kept(name: str) -> Callable[[Commit], Any]:
    return lambda commit: None if commit.command is None else getattr(commit.command, name)


_PG = postgres("schema")  # for the type names only: they do not depend on the schema


def _arguments(
    projection: Sequence[str],
    *,
    sharing: bool = False,
    terms: bool = False,
    repairs: bool = False,
) -> tuple[tuple[str, str, Callable[[Commit], Any]], ...]:
    """The arguments of the ``commit_changes`` writing ``projection`` (and, from version 5,
    ``sharing`` the clients packs are shared with; from version 6, ``terms``, each new pack's
    terms; from version 7, ``repairs``, the practice's repairs the decision knew), their
    types and where each value comes from: the function's signature, the call (by name) and
    its values are all made from this list."""
    shared = (
        ("s_packs", "text[]", _field("shares", 0)),
        ("s_clients", "text[]", _field("shares", 1)),
        ("s_listed", "boolean[]", _field("shares", 2)),
    )
    kinds = dict(zip(PROJECTION, PROJECTION_TYPES, strict=True))
    return (
        ("p_practice", "text", lambda commit: commit.practice_id),
        ("p_packs", "text[]", lambda commit: [change.pack_id for change in commit.packs]),
        ("p_expected", "integer[]", lambda commit: [c.expected_version for c in commit.packs]),
        *(
            (f"p_{column}", _PG.render(kinds[column]) + "[]", _projected(PROJECTION.index(column)))
            for column in projection
        ),
        ("e_packs", "text[]", _field("entries", 0)),
        ("e_sequences", "integer[]", _field("entries", 1)),
        ("e_kinds", "text[]", _field("entries", 2)),
        ("e_entries", "text[]", _field("entries", 3)),
        ("u_released", "text[]", lambda commit: commit.released),
        ("u_appointments", "text[]", lambda commit: sorted(commit.used)),
        ("u_packs", "text[]", lambda commit: [commit.used[a] for a in sorted(commit.used)]),
        ("v_ids", "text[]", _field("events", 0)),
        ("v_packs", "text[]", _field("events", 1)),
        ("v_kinds", "text[]", _field("events", 2)),
        ("v_events", "text[]", _field("events", 3)),
        ("c_clients", "text[]", lambda commit: sorted(commit.client_packs)),
        ("c_counts", "bigint[]", lambda c: [c.client_packs[k] for k in sorted(c.client_packs)]),
        ("k_key", "text", _kept("key")),
        ("k_fingerprint", "text", _kept("fingerprint")),
        ("k_result", "text", _kept("result")),
        *(shared if sharing else ()),
        *((("p_terms", "text[]", lambda commit: commit.terms),) if terms else ()),
        *((("r_repairs", "integer", lambda commit: commit.repairs),) if repairs else ()),
    )


ARGUMENTS = _arguments(PROJECTION, sharing=True, terms=True, repairs=True)
"""The arguments of ``commit_changes`` version 7, the one this release calls."""


def _commit_function(
    projection: Sequence[str],
    *,
    sharing: bool = False,
    terms: bool = False,
    repairs: bool = False,
) -> str:
    writes = _pack_writes([(column, f"p_{column}") for column in projection], terms=terms)
    arguments = _arguments(projection, sharing=sharing, terms=terms, repairs=repairs)
    return _function(
        "CREATE FUNCTION",
        [(name, kind) for name, kind, _ in arguments],
        writes + (_REPAIRS_CHECK if repairs else "") + (_SHARING if sharing else ""),
        "p_client_id",
    )


_V1_FUNCTION = _function("CREATE FUNCTION", _V1_ARGUMENTS, _pack_writes(_V1_COLUMNS), None)
_V2_FUNCTION = _function("CREATE FUNCTION", _V2_ARGUMENTS, _pack_writes(_V1_COLUMNS), "p_clients")
# From version 3 the earlier functions write pending_expiry too, as their expiry date: no later
# than the pending one, so the expiry query finds their packs and the definition decides.
_EARLIER = (*_V1_COLUMNS, ("pending_expiry", "p_expiry_dates"))
_V3_FUNCTION = _commit_function(V3_PROJECTION)
_V4_FUNCTION = _commit_function(PROJECTION)
_V5_FUNCTION = _commit_function(PROJECTION, sharing=True)
_V6_FUNCTION = _commit_function(PROJECTION, sharing=True, terms=True)
COMMIT_FUNCTION = _commit_function(PROJECTION, sharing=True, terms=True, repairs=True)
"""The commit function this release calls (schema version 7)."""


def partitions_of(session: Session, *tables: str) -> None:
    """In the partitioned layout, the hash partitions of ``tables`` just created with
    ``{partitioned}`` (each ``<table>_p<remainder>``); in the plain layout nothing. A step
    creating a table creates its partitions: rows go in only once they exist."""
    count = session.dialect.partitions
    for table in tables:
        for remainder in range(count):
            session.run(
                session.dialect.render(
                    f"CREATE TABLE {{s}}{table}_p{remainder} PARTITION OF {{s}}{table}"
                    f" FOR VALUES WITH (MODULUS {count}, REMAINDER {remainder})"
                )
            )


_V1_TABLES = ("practices", "packs", "entries", "events", "active_usages", "templates")


def _v1(session: Session) -> None:
    core_schema.V1(session)
    partitions_of(session, *_V1_TABLES, "preferences")
    statements(_V1_FUNCTION)(session)


def _v2(session: Session) -> None:
    core_schema.V2(session)
    partitions_of(session, "commands")
    statements(_V2_FUNCTION)(session)


_V3_FUNCTIONS = (
    _function("CREATE OR REPLACE FUNCTION", _V1_ARGUMENTS, _pack_writes(_EARLIER), None),
    _function("CREATE OR REPLACE FUNCTION", _V2_ARGUMENTS, _pack_writes(_EARLIER), "p_clients"),
    _V3_FUNCTION,
)

FUNCTIONS: tuple[str, ...] = (
    *_V3_FUNCTIONS,
    _V4_FUNCTION,
    _V5_FUNCTION,
    _V6_FUNCTION,
    COMMIT_FUNCTION,
)
"""The commit functions a schema at version 7 has (each version's, the first two writing
``pending_expiry`` too), as :func:`~sessionpacks.adapters._sql.schema.statements` text.

The earlier ones do not write version 4's query columns, nor version 5's shares: a process
of an earlier release committing during an upgrade leaves them as they were, which
``check_snapshots`` reports and ``rebuild_snapshots`` mends. They write whole states, terms
included, and no ``terms`` for a pack they open: both are read as they are (version 6)."""


def _v3(session: Session) -> None:
    core_schema.V3(session)
    statements(*_V3_FUNCTIONS)(session)


def _v4(session: Session) -> None:
    core_schema.V4(session)
    statements(_V4_FUNCTION)(session)


def _v5(session: Session) -> None:
    core_schema.V5(session)
    partitions_of(session, "shared_packs")
    statements(_V5_FUNCTION)(session)


def _v6(session: Session) -> None:
    core_schema.V6(session)
    statements(_V6_FUNCTION)(session)


def _v7(session: Session) -> None:
    core_schema.V7(session)
    statements(COMMIT_FUNCTION)(session)


MIGRATIONS: tuple[Step, ...] = (_v1, _v2, _v3, _v4, _v5, _v6, _v7, core_schema.V8)
"""Schema steps in order: a schema at version N has had the first N applied."""


def commit_call(schema: str) -> str:
    """``SELECT commit_changes(name => value, ...)``: each argument matched by its name; arrays
    go in binary (``%b``)."""
    named = (
        f"{name} => %({name}){'b' if kind.endswith('[]') else 's'}::{kind}"
        for name, kind, _ in ARGUMENTS
    )
    return f"SELECT {schema}.commit_changes({', '.join(named)})"
