"""The stores' names for the one encoding of :mod:`sessionpacks._encoding`, kept while the SQL
stores move to it (issue 12); new code imports :mod:`sessionpacks._encoding` or
:mod:`sessionpacks.serialization`."""

from __future__ import annotations

from sessionpacks._encoding import converter, dump, load
from sessionpacks._encoding import make_converter as _make_converter
from sessionpacks.serialization import dumps_entry as dump_entry
from sessionpacks.serialization import dumps_event as dump_event
from sessionpacks.serialization import dumps_preference as dump_preference
from sessionpacks.serialization import dumps_state as dump_state
from sessionpacks.serialization import dumps_template as dump_template
from sessionpacks.serialization import loads_entry as load_entry
from sessionpacks.serialization import loads_event as load_event
from sessionpacks.serialization import loads_preference as load_preference
from sessionpacks.serialization import loads_state as load_state
from sessionpacks.serialization import loads_template as load_template

__all__ = [
    "_make_converter",
    "converter",
    "dump",
    "dump_entry",
    "dump_event",
    "dump_preference",
    "dump_state",
    "dump_template",
    "load",
    "load_entry",
    "load_event",
    "load_preference",
    "load_state",
    "load_template",
]
