"""The packs file of ``import --packs``: packs sold in another system, opened here as migrated
(R19) before the appointments file is read, so that a migration brings both.

One row per pack: ``client_id``, ``template_id`` and ``opened_on``, and optionally ``pack_id``
(the old system's id), ``used`` (in the pack's metric: ``6`` sessions, ``1:30`` or ``90 min``
of an hours pack, ``$150.00`` of a money pack), ``numbered`` (sessions numbered there) and
``expires_on`` (its expiry there, which stands instead of the template's rule). A pack with no
template here gives its terms instead of a ``template_id`` (:mod:`.packterms`: ``name``,
``allowance``, ``price``, ``currency``, ``services``, ``expires_after``); a row that gives both,
or neither, is refused. Each row opens
one pack with :meth:`PackService.open_pack(..., migrated=Migration(...))
<sessionpacks.service.PackService.open_pack>`, in file order, through the same batches as the
appointments (:mod:`sessionpacks._batch`): a crash leaves whole packs.

A re-run is exact. A row without a ``pack_id`` gets one made from what identifies the pack
(its client, template, or for a row with terms its name, and opening date, and which of the
file's packs with those three it is),
``mig-`` and a hash. A pack already opened under the row's id is skipped when the row says what
it was opened with, and the row is refused, naming the first column that differs, when it does
not: a pack is never opened twice, nor changed by an import.

A template that is a bundle (R24) refuses its rows, naming ``template_id``: what a bundle used
elsewhere would be line by line, and a migration holds one amount.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs

from sessionpacks.errors import NotFoundError, RefusedError, Rule, SessionPacksError
from sessionpacks.ledger import Migration, PackState
from sessionpacks.model import Amount, Metric, Money, PackTerms, amount, format_amount
from sessionpacks.service import PackService

from .csvrows import Record, RowError
from .packterms import TERMS_COLUMNS, row_terms, terms_filled, terms_texts
from .packterms import cell as _cell
from .packterms import read_cell as _read
from .spellings import Layout, read_duration, read_price
from .values import amount_of, currency, day, identifier, shown, whole

__all__ = [
    "PACK_COLUMNS",
    "PACK_KNOWN",
    "PACK_OPTIONAL",
    "TERMS_COLUMNS",
    "PackRow",
    "PackRows",
    "open_row",
]

PACK_COLUMNS = ("client_id", "opened_on")
"""The columns every packs file has: a row gives a ``template_id`` or its pack's terms."""
PACK_OPTIONAL = ("pack_id", "used", "numbered", "expires_on")
PACK_KNOWN = ("client_id", "template_id", "opened_on", *PACK_OPTIONAL, *TERMS_COLUMNS)
MADE_PREFIX = "mig-"
"""The start of a pack id made for a row without one."""

_INTERNAL = "(row)"

Terms = Callable[[str], PackTerms]


@attrs.frozen
class PackRow:
    """What one row of the packs file opens."""

    line: int
    pack_id: str
    client_id: str
    template_id: str | None
    migrated: Migration
    terms: PackTerms | None = None
    """The terms the row gives, for a row without a template."""


# Reading cells -----------------------------------------------------------------------------


def _hours(text: str) -> timedelta:
    """A duration used there: any spelling of the import's durations, or none at all."""
    if text.strip() in ("0", "0h", "0m", "0:00", "PT0S"):
        return timedelta(0)
    return read_duration(text)


def _money(text: str, currency: str) -> Money:
    found = read_price(text, currency)
    if found.amount < 0:
        raise argparse.ArgumentTypeError(f"{shown(text)} must not be negative")
    return found


def used_of(text: str, terms: PackTerms) -> Amount:
    """``used`` in the pack's metric: sessions, a duration or money in its currency; empty is
    nothing used."""
    if not text.strip():
        return amount(terms.metric, 0, terms.currency)
    if terms.metric is Metric.SESSIONS:
        return amount_of(Metric.SESSIONS, text, terms.currency)
    if terms.metric is Metric.HOURS:
        return _hours(text)
    return _money(text, terms.currency)


def _optional(row: dict[str, str], column: str, reader: Callable[[str], Any]) -> Any:
    return _read(row, column, reader) if _cell(row, column) else None


def _migration(row: dict[str, str], terms: PackTerms) -> Migration:
    opened_on = _read(row, "opened_on", day)
    used = _read(row, "used", lambda text: used_of(text, terms))
    numbered = _optional(row, "numbered", whole)
    expires_on = _optional(row, "expires_on", day)
    try:
        return Migration(opened_on, used, numbered, expires_on)
    except SessionPacksError as error:
        raise RowError(column_of(error.field), str(error)) from None


def column_of(field: str) -> str:
    """The packs file's column for a library field: ``migrated.used`` is ``used``."""
    return field.removeprefix("migrated.")


# Reading rows ------------------------------------------------------------------------------


class PackRows:
    """Reads the rows of one packs file: the templates' terms (read once), and the ids made for
    rows without a ``pack_id`` (the n-th pack of a client, template and date in the file)."""

    def __init__(self, layout: Layout, terms: Terms) -> None:
        self.layout = layout
        self._terms = terms
        self._known: dict[str, PackTerms | SessionPacksError] = {}
        self._seen: Counter[str] = Counter()

    def terms(self, template_id: str) -> PackTerms:
        found = self._known.get(template_id)
        if found is None:
            try:
                found = self._terms(template_id)
            except SessionPacksError as error:
                found = error
            self._known[template_id] = found
        if isinstance(found, SessionPacksError):
            raise found
        return found

    def parse(self, record: Record) -> PackRow:
        """The pack a record describes, or a RowError or the library's error: nothing else."""
        if record.problem is not None:
            raise record.problem
        try:
            return self._parse(record.line, self.layout.mapped(record.row))
        except (RowError, SessionPacksError):
            raise
        except Exception as error:  # a bug in a value reader: refuse the row and go on
            raise RowError(
                _INTERNAL, f"cannot be read ({type(error).__name__}); please report this"
            ) from None

    def _parse(self, line: int, row: dict[str, str]) -> PackRow:
        client_id = _read(row, "client_id", identifier)
        template_id: str | None = None
        given: PackTerms | None = None
        if _cell(row, "template_id"):
            template_id = _read(row, "template_id", identifier)
            terms = self._template_terms(row, template_id)
        elif terms_filled(row) is not None:
            terms = given = row_terms(row)
        else:
            raise RowError(
                "template_id",
                "must not be empty: give the template the pack was sold from, or its terms "
                "(name, allowance, price)",
            )
        migrated = _migration(row, terms)
        pack_id = _optional(row, "pack_id", identifier)
        if pack_id is None:
            pack_id = self._made_id(client_id, template_id, terms.name, migrated)
        return PackRow(line, pack_id, client_id, template_id, migrated, given)

    def _template_terms(self, row: dict[str, str], template_id: str) -> PackTerms:
        """The template's terms, for a row that gives no terms of its own."""
        filled = terms_filled(row)
        if filled is not None:
            raise RowError(
                filled,
                f"{shown(_cell(row, filled))}: give template_id or the pack's terms, not both",
            )
        terms = self.terms(template_id)
        code = _optional(row, "currency", currency)
        if code is not None and code != terms.currency:
            raise RowError(
                "currency", f"{shown(code)}: the template {template_id} is in {terms.currency}"
            )
        if terms.lines:
            # What a bundle used there would be line by line, which a migration does not hold
            # (R19, R24): refused here, with the way out, rather than by the library per row.
            raise RowError(
                "template_id",
                f"{shown(template_id)} is a bundle ({', '.join(line.name for line in terms.lines)})"
                ": a bundle cannot be opened as migrated; open it with 'pack open --line', "
                "each line with what is left of it",
            )
        return terms

    def _made_id(
        self, client_id: str, template_id: str | None, name: str, migrated: Migration
    ) -> str:
        opened_on = migrated.opened_on.isoformat()
        # A template's row as before; a row of terms by its name (four items: never the same).
        identity = json.dumps(
            [client_id, template_id, opened_on]
            if template_id is not None
            else [client_id, None, opened_on, name]
        )
        digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        self._seen[digest] += 1
        count = self._seen[digest]
        return f"{MADE_PREFIX}{digest}" if count == 1 else f"{MADE_PREFIX}{digest}-{count}"


# Opening -----------------------------------------------------------------------------------


def open_row(service: PackService, row: PackRow) -> str:
    """Open the row's pack (``opened``), or skip it if it is open already as the row says
    (``skipped``); a pack opened otherwise refuses the row, naming the column that differs."""
    try:
        existing = service.pack(row.pack_id)
    except NotFoundError:
        service.open_pack(
            row.client_id,
            template_id=row.template_id,
            terms=row.terms,
            pack_id=row.pack_id,
            migrated=row.migrated,
        )
        return "opened"
    _refuse_different(existing, row)
    return "skipped"


def _text(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, Money | timedelta):
        return format_amount(value)
    return str(value)


def _refuse_different(pack: PackState, row: PackRow) -> None:
    given, found = row.migrated, pack.migrated
    pairs = [
        ("client_id", row.client_id, pack.client_id),
        ("template_id", row.template_id, pack.template_id),
    ]
    for name in ("opened_on", "used", "numbered", "expires_on"):
        pairs.append((name, getattr(given, name), None if found is None else getattr(found, name)))
    if found is None:
        pairs.insert(2, ("opened_on", "a migrated pack", "a pack opened here"))
    if row.terms is not None:
        pairs += [
            (column, wanted, held)
            for (column, wanted), (_, held) in zip(
                terms_texts(row.terms), terms_texts(pack.terms), strict=True
            )
        ]
        if row.terms != pack.terms:  # the same in every column, other in the rest
            pairs.append(("name", "these terms", "other terms"))
    for column, wanted, held in pairs:
        if wanted != held:
            raise RefusedError(
                Rule.R19,
                column,
                _text(wanted),
                f"pack {row.pack_id} is open already with {column} {_text(held)}: an import "
                "does not change a pack (fix the row, or give it another pack_id)",
            )
