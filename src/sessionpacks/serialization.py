"""JSON text for the library's values, for hosts writing a store of their own.

Each ``dumps_*`` gives compact JSON text (a ``str``, ASCII only, keys sorted) and the matching
``loads_*`` gives back an equal value: entries, events, pack states, templates and preferences.
The library's own stores write the same text, so a host's columns can hold it as they are
(TEXT, JSON or JSONB), and the CLI's ``--json`` output is the same encoding.

The encoding, one cattrs converter (:data:`converter`):

- a value of a union (an entry, an event, an expiry rule, a pricing, a preference, a decision's
  action) carries its class under ``"type"``: ``{"type": "Used", ...}``;
- money is ``{"amount": "120.00", "currency": "AUD"}``; an amount is told by its JSON type:
  whole sessions a number (``3``), a duration a string, money an object;
- durations are ISO 8601 in hours, minutes and seconds, exact to the microsecond
  (``"PT1H30M"``, ``"-PT0.5S"``); periods ISO 8601 (``"P3M"``); dates ISO 8601 and instants
  ISO 8601 with their offset, read back as the same instant at that fixed offset;
- sets are sorted lists.

Text written by an earlier release (durations as integer microseconds, amounts as
``{"sessions": 3}``, ``{"us": 5400000000}`` or ``{"money": "1.00", "currency": "AUD"}``) loads
too; only the form above is written. Text holding a field this release does not know does not
load (cattrs raises), rather than losing it silently.

>>> from datetime import timedelta
>>> from sessionpacks import Money, Period, PreferTemplate
>>> text = dumps_preference(PreferTemplate("physio-10"))
>>> text
'{"template_id":"physio-10","type":"PreferTemplate"}'
>>> loads_preference(text)
PreferTemplate(template_id='physio-10')
>>> converter.unstructure([Money("120", "AUD"), timedelta(microseconds=-1), Period(months=3)])
[{'amount': '120.00', 'currency': 'AUD'}, '-PT0.000001S', 'P3M']
>>> converter.structure(5400000000, timedelta)  # as release 0.1.0 wrote it
datetime.timedelta(seconds=5400)
"""

from __future__ import annotations

import cattrs

from sessionpacks import _encoding
from sessionpacks._encoding import converter
from sessionpacks.events import Event
from sessionpacks.ledger import Entry, PackState
from sessionpacks.model import PackTemplate, Preference

__all__ = [
    "converter",
    "dumps_entry",
    "dumps_event",
    "dumps_preference",
    "dumps_state",
    "dumps_template",
    "loads_entry",
    "loads_event",
    "loads_preference",
    "loads_state",
    "loads_template",
    "make_converter",
]


def make_converter() -> cattrs.Converter:
    """A new converter of the same encoding as :data:`converter`, for a host to add hooks of its
    own to (``converter.copy()`` would lose the tagged unions). It refuses a value it has no form
    for with ``TypeError``, so what it gives is always JSON data."""
    return _encoding.make_converter()


def dumps_entry(entry: Entry) -> str:
    """A ledger entry (``Opened``, ``Used``, ... ``Invoiced``) as JSON text."""
    return _encoding.dump(entry, Entry)


def loads_entry(text: str | bytes) -> Entry:
    """The entry :func:`dumps_entry` wrote."""
    return _encoding.load(text, Entry)  # type: ignore[arg-type]


def dumps_event(event: Event) -> str:
    """A domain event (``PackOpened``, ``SessionUsed``, ...) as JSON text, without its position."""
    return _encoding.dump(event, Event)


def loads_event(text: str | bytes) -> Event:
    """The event :func:`dumps_event` wrote."""
    return _encoding.load(text, Event)  # type: ignore[arg-type]


def dumps_state(state: PackState) -> str:
    """A pack's folded state (a snapshot of its ledger at ``state.version``) as JSON text."""
    return _encoding.dump(state, PackState)


def loads_state(text: str | bytes) -> PackState:
    """The state :func:`dumps_state` wrote."""
    return _encoding.load(text, PackState)


def dumps_template(template: PackTemplate) -> str:
    """One version of a template as JSON text."""
    return _encoding.dump(template, PackTemplate)


def loads_template(text: str | bytes) -> PackTemplate:
    """The template :func:`dumps_template` wrote."""
    return _encoding.load(text, PackTemplate)


def dumps_preference(preference: Preference) -> str:
    """A client's preferred service, template or pack as JSON text."""
    return _encoding.dump(preference, Preference)


def loads_preference(text: str | bytes) -> Preference:
    """The preference :func:`dumps_preference` wrote."""
    return _encoding.load(text, Preference)  # type: ignore[arg-type]
