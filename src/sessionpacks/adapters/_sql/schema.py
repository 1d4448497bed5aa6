"""The schema, step by step, and every statement the core runs, written once for both dialects.

The steps are history: a database at version N has had the first N applied, so a step's text
never changes once released. ``{s}`` is the table prefix (PostgreSQL's schema), the other
fields are :class:`~sessionpacks.adapters._sql.dialect.Dialect` tokens.

Every table's ``CREATE TABLE`` ends with ``{partitioned}``: empty on SQLite and in PostgreSQL's
plain layout (so the text each step runs there is as released), ``PARTITION BY HASH
(practice_id)`` in the partitioned one, where the PostgreSQL step creating a table then creates
its partitions (``postgres_schema``). Every key and index starts with ``practice_id``, which a
partitioned table needs of its unique indexes (``tests/adapters/test_postgres_keys.py``).
"""

from __future__ import annotations

from itertools import groupby

from sessionpacks.adapters._common import Bounds
from sessionpacks.adapters._sql.dialect import Dialect
from sessionpacks.adapters._sql.rows import PROJECTION, V3_PROJECTION, projection, split_state
from sessionpacks.adapters._sql.session import Session, Step
from sessionpacks.ledger import replay
from sessionpacks.serialization import loads_entry

__all__ = [
    "STEPS",
    "V1",
    "V2",
    "V3",
    "V4",
    "V5",
    "V6",
    "V7",
    "V8",
    "Statements",
    "client_packs_sql",
    "find_packs",
    "refold_states",
    "split_states",
    "statements",
]


def statements(*sql: str) -> Step:
    """A step running ``sql`` statements in order, each rendered in the session's dialect
    (``{s}`` and ``{schema}`` name PostgreSQL's schema; write a literal brace twice)."""

    def run(session: Session) -> None:
        for statement in sql:
            session.run(session.dialect.render(statement))

    return run


V1 = statements(
    """CREATE TABLE {s}practices (
        practice_id text PRIMARY KEY,
        timezone text NOT NULL,
        last_position {bigint} NOT NULL DEFAULT 0{nonnegative}
    ){without_rowid}{partitioned}""",
    # {opened}: the order packs were opened in, which client_packs() lists them in.
    """CREATE TABLE {s}packs (
        practice_id text NOT NULL{practice_ref},
        pack_id text NOT NULL,
        {opened_column}
        client_id text NOT NULL,
        version integer NOT NULL CHECK (version >= 1),
        state text NOT NULL,
        expiry_date {date},
        ended {bool} NOT NULL,
        remaining_units {bigint} NOT NULL,
        expired_on {date},
        {pack_key} (practice_id, pack_id)
    ){partitioned}""",
    "CREATE INDEX packs_by_client ON {s}packs ({by_client})",
    """CREATE INDEX packs_expiring ON {s}packs (practice_id, expiry_date)
        WHERE NOT ended AND remaining_units > 0""",
    """CREATE TABLE {s}entries (
        practice_id text NOT NULL,
        pack_id text NOT NULL,
        sequence integer NOT NULL CHECK (sequence >= 1),
        kind text NOT NULL,
        entry text NOT NULL,
        PRIMARY KEY (practice_id, pack_id, sequence){pack_ref}
    ){without_rowid}{partitioned}""",
    """CREATE TABLE {s}events (
        practice_id text NOT NULL{practice_ref},
        position {bigint} NOT NULL CHECK (position >= 1),
        event_id text NOT NULL,
        pack_id text NOT NULL,
        kind text NOT NULL,
        event text NOT NULL,
        PRIMARY KEY (practice_id, position),
        UNIQUE (practice_id, event_id)
    ){without_rowid}{partitioned}""",
    """CREATE TABLE {s}active_usages (
        practice_id text NOT NULL,
        appointment_id text NOT NULL,
        pack_id text NOT NULL,
        PRIMARY KEY (practice_id, appointment_id){pack_ref}
    ){without_rowid}{partitioned}""",
    # {saved}: templates() lists ids in the order first saved, like the reference store.
    """CREATE TABLE {s}templates (
        practice_id text NOT NULL{practice_ref},
        template_id text NOT NULL,
        version integer NOT NULL CHECK (version >= 1),
        {saved_column}
        template text NOT NULL,
        {template_key} (practice_id, template_id, version)
    ){partitioned}""",
    """CREATE TABLE {s}preferences (
        practice_id text NOT NULL{practice_ref},
        client_id text NOT NULL,
        preference text NOT NULL,
        PRIMARY KEY (practice_id, client_id)
    ){without_rowid}{partitioned}""",
)
"""Version 1 (release 0.1.0): the ledger, the folded states, usages, events, templates."""

# R27: a command's idempotency key, its fingerprint and result, written with its changes.
_COMMANDS = statements(
    """CREATE TABLE {s}commands (
        practice_id text NOT NULL{practice_ref},
        key text NOT NULL,
        fingerprint text NOT NULL,
        result text NOT NULL,
        first_position {bigint} NOT NULL,
        PRIMARY KEY (practice_id, key)
    ){without_rowid}{partitioned}""",
)


def refold_states(session: Session, columns: tuple[str, ...] = PROJECTION) -> None:
    """Fold every ledger again and store the states with ``columns`` of their projection:
    a state an earlier release kept lacks what this one tracks (events fired once per total,
    R12b; tier places, R7a). The ledgers, and so every figure they give, are untouched."""
    dialect = session.dialect
    update = dialect.render(
        f"UPDATE {{s}}packs SET {', '.join(f'{c} = ?' for c in columns)}"
        " WHERE practice_id = ? AND pack_id = ?"
    )
    rows = session.rows(
        dialect.render(
            "SELECT practice_id, pack_id, entry FROM {s}entries"
            " ORDER BY practice_id, pack_id, sequence"
        )
    )
    for (practice_id, pack_id), ledger in groupby(rows, key=lambda row: (row[0], row[1])):
        state = replay(loads_entry(row[2]) for row in ledger)
        values = dict(zip(PROJECTION, projection(dialect, state), strict=True))
        session.run(update, (*(values[c] for c in columns), practice_id, pack_id))


def _v2(session: Session) -> None:
    _COMMANDS(session)
    refold_states(session, PROJECTION[: PROJECTION.index("pending_expiry")])


V2 = _v2
"""Version 2: the ``commands`` table (R27), and every state folded again."""

_PENDING = statements(
    "ALTER TABLE {s}packs ADD COLUMN pending_expiry {date}",
    # The expiry query compares pending_expiry alone; 0.1.0's index served its own query.
    "DROP INDEX {s}packs_expiring",
    """CREATE INDEX packs_pending_expiry ON {s}packs (practice_id, pending_expiry)
        WHERE pending_expiry IS NOT NULL""",
)


def _v3(session: Session) -> None:
    _PENDING(session)
    refold_states(session, V3_PROJECTION)


V3 = _v3
"""Version 3: ``packs.pending_expiry``, the date an expiry sweep has yet to record (R12),
filled from the ledgers, with the index the expiry query reads."""

# find_packs answers in pack_id order: the indexes that can give the answer in that order end
# with it; the date and amount ranges give a part of the practice, sorted afterwards.
_QUERIES = statements(
    "ALTER TABLE {s}packs ADD COLUMN lasting_status text",
    "ALTER TABLE {s}packs ADD COLUMN open_until {date}",
    "ALTER TABLE {s}packs ADD COLUMN remaining_unit text",
    "ALTER TABLE {s}packs ADD COLUMN template_id text",
    """CREATE INDEX packs_lasting ON {s}packs (practice_id, lasting_status, pack_id)
        WHERE lasting_status IS NOT NULL""",
    """CREATE INDEX packs_open_until ON {s}packs (practice_id, open_until)
        WHERE open_until IS NOT NULL""",
    """CREATE INDEX packs_by_expiry ON {s}packs (practice_id, expiry_date)
        WHERE expiry_date IS NOT NULL""",
    "CREATE INDEX packs_by_left ON {s}packs (practice_id, remaining_unit, remaining_units)",
    """CREATE INDEX packs_by_template ON {s}packs (practice_id, template_id, pack_id)
        WHERE template_id IS NOT NULL""",
)


def _v4(session: Session) -> None:
    # Pack ids sort by code point, as Python sorts them, so every store pages alike; the key
    # (practice_id, pack_id) then gives the unfiltered answer in order, and the indexes after.
    if session.dialect.tokens["code_point_ids"]:
        statements("{code_point_ids}")(session)
    _QUERIES(session)
    refold_states(session)


V4 = _v4
"""Version 4: the columns ``find_packs`` narrows by (``lasting_status``, ``open_until``,
``remaining_unit``, ``template_id``), filled from the ledgers, and their indexes."""

V5 = statements(
    # R20: the clients beside its owner each pack is shared with, so a client's packs are
    # read by index whoever owns them. Rows come and go with the states' shared_with.
    """CREATE TABLE {s}shared_packs (
        practice_id text NOT NULL,
        client_id text NOT NULL,
        pack_id text NOT NULL,
        PRIMARY KEY (practice_id, client_id, pack_id){pack_ref}
    ){without_rowid}{partitioned}""",
)
"""Version 5: ``shared_packs``, the clients each pack is shared with beside its owner (R20).
No pack was shared before it, so it starts empty."""

_TERMS = statements("ALTER TABLE {s}packs ADD COLUMN terms text")


def split_states(session: Session) -> None:
    """Move each pack's terms from its state to ``packs.terms``: the state is stored without
    them. A split of the JSON, not a fold: every state and figure stays as it was."""
    dialect = session.dialect
    rows = session.rows(dialect.render("SELECT practice_id, pack_id, state FROM {s}packs"))
    split = [(practice_id, pack_id, *split_state(state)) for practice_id, pack_id, state in rows]
    session.run_many(
        dialect.render(
            "UPDATE {s}packs SET state = ?, terms = ? WHERE practice_id = ? AND pack_id = ?"
        ),
        [(state, terms, p, k) for p, k, state, terms in split if terms is not None],
    )


def _v6(session: Session) -> None:
    _TERMS(session)
    split_states(session)


V6 = _v6
"""Version 6: ``packs.terms``, each pack's terms stored once (they never change), moved out of
its state, which every commit rewrites. A writer of an earlier release, during a rolling
upgrade, still writes whole states and opens packs without ``terms``: both are read."""

V7 = statements(
    # How many times rebuild_snapshots has repaired the practice's rows: a repair keeps each
    # row's version, so what a process remembers is checked against this as well.
    "ALTER TABLE {s}practices ADD COLUMN repairs integer NOT NULL DEFAULT 0",
)
"""Version 7: ``practices.repairs``, counted up by each ``rebuild_snapshots`` that rewrites a
row, so that a state a process remembered from before the repair is never decided on."""

V8 = statements(
    # The packs a booking can draw on: read without visiting the client's used-up and closed
    # ones, which packs_by_client would walk row by row to test their status.
    """CREATE INDEX packs_live_by_client ON {s}packs ({by_client})
        WHERE lasting_status IS NULL""",
)
"""Version 8: ``packs_live_by_client``, a client's packs still open or expired only (no lasting
status), the index every SQL store's ``client_packs`` of those reads."""

STEPS: tuple[Step, ...] = (V1, V2, V3, V4, V5, V6, V7, V8)
"""The core's schema steps in order (a store adds its own to them, as PostgreSQL's does)."""


def client_packs_sql(dialect: Dialect, where: str = "") -> str:
    """The statement reading a client's packs, owned and shared with them (R20), in the order
    opened, with ``where`` (a condition on ``p``, the pack's row) added: parameters
    ``(practice_id, client_id, practice_id, client_id)``."""
    condition = f" AND {where}" if where else ""
    return dialect.render(
        f"""SELECT state, terms FROM (
            SELECT p.{{opened}} AS opened_order, p.state, p.terms FROM {{s}}packs AS p
            WHERE p.practice_id = ? AND p.client_id = ?{condition}
            UNION ALL
            SELECT p.{{opened}}, p.state, p.terms FROM {{s}}shared_packs AS sp
            JOIN {{s}}packs AS p ON p.practice_id = sp.practice_id AND p.pack_id = sp.pack_id
            WHERE sp.practice_id = ? AND sp.client_id = ?{condition}
        ) AS found ORDER BY opened_order"""
    )


def find_packs(dialect: Dialect, bounds: Bounds) -> tuple[str, tuple[object, ...]]:
    """The statement reading ``find_packs`` candidates within ``bounds`` and its parameters
    after the practice's: ``(pack_id, state)`` rows in code point order of ``pack_id``, after
    the pack id given as the next parameter and up to the limit given after it (each row
    ``(pack_id, state, terms)``)."""
    where: list[str] = []
    params: list[object] = []
    if bounds.by_status:
        either: list[str] = []
        if bounds.lasting:
            either.append(f"lasting_status IN ({', '.join('?' for _ in bounds.lasting)})")
            params.extend(bounds.lasting)
        if bounds.open_after is not None:
            either.append("open_until > ?")
            params.append(dialect.day(bounds.open_after))
        if bounds.expired_by is not None:
            either.append("open_until <= ?")
            params.append(dialect.day(bounds.expired_by))
        where.append(f"({' OR '.join(either)})" if either else "1 = 0")
    for condition, day in (
        ("expiry_date >= ?", bounds.expiring_from),
        ("expiry_date <= ?", bounds.expiring_to),
    ):
        if day is not None:
            where.append(condition)
            params.append(dialect.day(day))
    if bounds.template_id is not None:
        where.append("template_id = ?")
        params.append(bounds.template_id)
    if bounds.left is not None:
        where.append("remaining_unit = ? AND remaining_units <= ?")
        params.extend(bounds.left)
    where.append("pack_id > ?")
    # A balance, a window of dates or the packs expired by a date is a narrow range of its
    # index: read it, then sort. The packs still open are most of a practice: walk the key.
    ranged = any(
        b is not None
        for b in (bounds.left, bounds.expiring_from, bounds.expiring_to, bounds.expired_by)
    )
    order = "{sorted_after}pack_id" if ranged else "pack_id"
    sql = dialect.render(
        "SELECT pack_id, state, terms FROM {s}packs WHERE practice_id = ? AND "
        + " AND ".join(where)
        + f" ORDER BY {order} LIMIT ?"
    )
    return sql, tuple(params)


class Statements:
    """Every statement of the core in one dialect, rendered once."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        r = dialect.render
        columns = ", ".join(PROJECTION)
        marks = ", ".join("?" for _ in PROJECTION)
        self.version_table = r(
            """CREATE TABLE IF NOT EXISTS {s}schema_version (
                version integer PRIMARY KEY, applied_at {timestamp} NOT NULL)"""
        )
        self.has_version_table = r("{has_version_table}")
        self.schema_version = r("SELECT coalesce(max(version), 0) FROM {s}schema_version")
        self.add_version = r("INSERT INTO {s}schema_version (version, applied_at) VALUES (?, ?)")
        self.timezone = r("SELECT timezone FROM {s}practices WHERE practice_id = ?")
        self.add_practice = r(
            """INSERT INTO {s}practices (practice_id, timezone) VALUES (?, ?)
               ON CONFLICT (practice_id) DO NOTHING"""
        )
        self.load = r("SELECT state, terms FROM {s}packs WHERE practice_id = ? AND pack_id = ?")
        self.version = r("SELECT version FROM {s}packs WHERE practice_id = ? AND pack_id = ?")
        self.ledger = r(
            """SELECT entry FROM {s}entries WHERE practice_id = ? AND pack_id = ?
               ORDER BY sequence"""
        )
        self.client_packs = client_packs_sql(dialect)
        # A client's open or expired packs: no lasting status (schema version 4's column),
        # read by schema version 8's index without visiting or decoding the others.
        self.live_client_packs = client_packs_sql(dialect, "p.lasting_status IS NULL")
        self.share = r(
            """INSERT INTO {s}shared_packs (practice_id, client_id, pack_id) VALUES (?, ?, ?)
               ON CONFLICT (practice_id, client_id, pack_id) DO NOTHING"""
        )
        self.unshare = r(
            """DELETE FROM {s}shared_packs
               WHERE practice_id = ? AND client_id = ? AND pack_id = ?"""
        )
        self.all_shared = r("SELECT pack_id, client_id FROM {s}shared_packs WHERE practice_id = ?")
        self.clear_shared = r("DELETE FROM {s}shared_packs WHERE practice_id = ?")
        self.count_client = r(
            "SELECT count(*) FROM {s}packs WHERE practice_id = ? AND client_id = ?"
        )
        self.holder = r(
            "SELECT pack_id FROM {s}active_usages WHERE practice_id = ? AND appointment_id = ?"
        )
        # The partial index's condition follows from the comparison (NULL is never <=).
        self.expiry_candidates = r(
            """SELECT state, terms FROM {s}packs WHERE practice_id = ? AND pending_expiry <= ?
               ORDER BY {opened}"""
        )
        self.events_since = r(
            """SELECT position, event FROM {s}events WHERE practice_id = ? AND position > ?
               ORDER BY position LIMIT ?"""
        )
        self.command = r(
            """SELECT key, fingerprint, result, first_position FROM {s}commands
               WHERE practice_id = ? AND key = ?"""
        )
        self.record_command = r(
            """INSERT INTO {s}commands (practice_id, key, fingerprint, result, first_position)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT (practice_id, key) DO NOTHING"""
        )
        self.latest_template_version = r(
            """SELECT coalesce(max(version), 0) FROM {s}templates
               WHERE practice_id = ? AND template_id = ?"""
        )
        # Conditional on the latest version; two writers of one version meet the key.
        self.save_template = r(
            """INSERT INTO {s}templates (practice_id, template_id, version, template)
               SELECT ?, ?, ?, ?
               WHERE (SELECT coalesce(max(version), 0) FROM {s}templates
                      WHERE practice_id = ? AND template_id = ?) = ?"""
        )
        self.latest_template = r(
            """SELECT template FROM {s}templates WHERE practice_id = ? AND template_id = ?
               ORDER BY version DESC LIMIT 1"""
        )
        self.template_version = r(
            """SELECT template FROM {s}templates
               WHERE practice_id = ? AND template_id = ? AND version = ?"""
        )
        self.templates = r(
            """SELECT t.template FROM {s}templates AS t
               JOIN (SELECT template_id, max(version) AS latest, min({saved}) AS first
                     FROM {s}templates WHERE practice_id = ? GROUP BY template_id) AS h
                 ON t.template_id = h.template_id AND t.version = h.latest
               WHERE t.practice_id = ?
               ORDER BY h.first"""
        )
        self.set_preference = r(
            """INSERT INTO {s}preferences (practice_id, client_id, preference) VALUES (?, ?, ?)
               ON CONFLICT (practice_id, client_id) DO UPDATE
               SET preference = excluded.preference"""
        )
        self.clear_preference = r(
            "DELETE FROM {s}preferences WHERE practice_id = ? AND client_id = ?"
        )
        self.preference = r(
            "SELECT preference FROM {s}preferences WHERE practice_id = ? AND client_id = ?"
        )
        self.all_entries = r(
            """SELECT pack_id, entry FROM {s}entries WHERE practice_id = ?
               ORDER BY pack_id, sequence"""
        )
        self.all_packs = r(
            f"SELECT pack_id, terms, {columns} FROM {{s}}packs WHERE practice_id = ?"
        )
        self.all_active = r(
            "SELECT appointment_id, pack_id FROM {s}active_usages WHERE practice_id = ?"
        )
        # A pack's terms are written when it is opened; its state, without them, on every
        # commit. A pack an earlier release's writer opened has none in its row: they are
        # taken from the whole state it wrote, before the state is replaced by one without.
        self.insert_pack = r(
            f"""INSERT INTO {{s}}packs (practice_id, pack_id, {columns}, terms)
                VALUES (?, ?, {marks}, ?)"""
        )
        self._updates: dict[tuple[str, ...], str] = {}
        self.put_pack = r(
            f"""INSERT INTO {{s}}packs (practice_id, pack_id, {columns}, terms)
                VALUES (?, ?, {marks}, ?)
                ON CONFLICT (practice_id, pack_id) DO UPDATE SET
                {", ".join(f"{c} = excluded.{c}" for c in (*PROJECTION, "terms"))}"""
        )
        self.delete_pack = r("DELETE FROM {s}packs WHERE practice_id = ? AND pack_id = ?")
        self.clear_active = r("DELETE FROM {s}active_usages WHERE practice_id = ?")
        self.release = r(
            "DELETE FROM {s}active_usages WHERE practice_id = ? AND appointment_id = ?"
        )
        # Taken only if free: zero rows written means another pack holds it (R6).
        self.take = r(
            """INSERT INTO {s}active_usages (practice_id, appointment_id, pack_id)
               VALUES (?, ?, ?) ON CONFLICT (practice_id, appointment_id) DO NOTHING"""
        )
        self.add_entry = r(
            """INSERT INTO {s}entries (practice_id, pack_id, sequence, kind, entry)
               VALUES (?, ?, ?, ?, ?)"""
        )
        self.add_event = r(
            """INSERT INTO {s}events (practice_id, position, event_id, pack_id, kind, event)
               VALUES (?, ?, ?, ?, ?, ?)"""
        )
        self.advance = r(
            """UPDATE {s}practices SET last_position = last_position + ?
               WHERE practice_id = ? RETURNING last_position, repairs"""
        )
        self.repairs = r("SELECT repairs FROM {s}practices WHERE practice_id = ?")
        self.repaired = r("UPDATE {s}practices SET repairs = repairs + 1 WHERE practice_id = ?")

    def update_pack(self, columns: tuple[str, ...]) -> str:
        """The conditional update of a pack's row setting ``columns`` (of :data:`PROJECTION`,
        in its order) and no others: SQLite rewrites every index on a column an ``UPDATE``
        sets, changed or not, so the columns a commit leaves as they were are left out (three
        index pages fewer a usage). Its parameters: the columns' values, then the practice,
        the pack and the version the change was decided on."""
        sql = self._updates.get(columns)
        if sql is None:
            # A pack an earlier release's writer opened has no terms in its row: they are
            # taken from the whole state it wrote, before the state is replaced by one without.
            sql = self.dialect.render(
                f"""UPDATE {{s}}packs SET {", ".join(f"{c} = ?" for c in columns)},
                    terms = coalesce(terms, {{state_terms}})
                    WHERE practice_id = ? AND pack_id = ? AND version = ?"""
            )
            self._updates[columns] = sql
        return sql
