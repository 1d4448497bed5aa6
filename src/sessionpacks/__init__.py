"""sessionpacks: prepaid session packs for practice-management software.

The public API is what this module exports; every other name is private. The domain
(:mod:`~sessionpacks.model`, :mod:`~sessionpacks.ledger`, :mod:`~sessionpacks.pricing`,
:mod:`~sessionpacks.operations`, :mod:`~sessionpacks.resolution`) is pure: no I/O, no clock, no
storage. :class:`PackService` runs the workflows on a :class:`PackRepository`.

``sessionpacks.__version__`` is the installed distribution's version, read from its metadata
when asked for (it is not in ``__all__``).
"""

from typing import TYPE_CHECKING

from sessionpacks.adapters.clock import FixedClock, SystemClock
from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.errors import (
    ConcurrencyError,
    ConnectionLostError,
    InvalidValueError,
    NotFoundError,
    RefusedError,
    Rule,
    SessionPacksError,
    StoreError,
)
from sessionpacks.events import (
    Event,
    ExpiringSoon,
    ExpiryExtended,
    HoldEnded,
    LineExhausted,
    LowBalance,
    PackAdjusted,
    PackClosed,
    PackExhausted,
    PackExpired,
    PackHeld,
    PackOpened,
    PackShared,
    PackTransferred,
    PackUnshared,
    PackVoided,
    RecordedEvent,
    SessionUsed,
    UsageMarked,
    UsageReleased,
    UsageRescheduled,
)
from sessionpacks.ledger import Entry, Mark, Migration, PackState, PackStatus, Usage, replay
from sessionpacks.model import (
    Allowance,
    Appointment,
    BundleLine,
    ExpiresAfterFirstUse,
    ExpiresAfterOpening,
    ExpiresOn,
    Metric,
    Money,
    NoExpiry,
    PackTemplate,
    PackTerms,
    Period,
    PerPack,
    PerSession,
    Policies,
    Practice,
    PreferPack,
    PreferService,
    PreferTemplate,
    Service,
    Tier,
)
from sessionpacks.operations import AppointmentStatus
from sessionpacks.ports import Clock, CommandRecord, PackPage, PackQuery, PackRepository
from sessionpacks.pricing import InvoiceLine, PackFigures
from sessionpacks.reports import JournalAccounts, JournalLine, Report, ReportLine
from sessionpacks.resolution import Choice, Decision, NoPack, OpenPack, UsePack
from sessionpacks.service import Assignment, Closure, PackService

__all__ = [
    "Allowance",
    "Appointment",
    "AppointmentStatus",
    "Assignment",
    "BundleLine",
    "Choice",
    "Clock",
    "Closure",
    "CommandRecord",
    "ConcurrencyError",
    "ConnectionLostError",
    "Decision",
    "Entry",
    "Event",
    "ExpiresAfterFirstUse",
    "ExpiresAfterOpening",
    "ExpiresOn",
    "ExpiringSoon",
    "ExpiryExtended",
    "FixedClock",
    "HoldEnded",
    "InMemoryStore",
    "InvalidValueError",
    "InvoiceLine",
    "JournalAccounts",
    "JournalLine",
    "LineExhausted",
    "LowBalance",
    "Mark",
    "Metric",
    "Migration",
    "Money",
    "NoExpiry",
    "NoPack",
    "NotFoundError",
    "OpenPack",
    "PackAdjusted",
    "PackClosed",
    "PackExhausted",
    "PackExpired",
    "PackFigures",
    "PackHeld",
    "PackOpened",
    "PackPage",
    "PackQuery",
    "PackRepository",
    "PackService",
    "PackShared",
    "PackState",
    "PackStatus",
    "PackTemplate",
    "PackTerms",
    "PackTransferred",
    "PackUnshared",
    "PackVoided",
    "PerPack",
    "PerSession",
    "Period",
    "Policies",
    "Practice",
    "PreferPack",
    "PreferService",
    "PreferTemplate",
    "RecordedEvent",
    "RefusedError",
    "Report",
    "ReportLine",
    "Rule",
    "Service",
    "SessionPacksError",
    "SessionUsed",
    "StoreError",
    "SystemClock",
    "Tier",
    "Usage",
    "UsageMarked",
    "UsageReleased",
    "UsageRescheduled",
    "UsePack",
    "replay",
]


def _lazy_attribute(name: str) -> str:
    """``__version__``, read from the installed distribution's metadata when asked for."""
    if name == "__version__":
        from importlib.metadata import version

        return version("sessionpacks")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    __version__: str
else:
    # Only at run time: to a type checker the module keeps its exact names, so a misspelt
    # attribute is still an error rather than a ``str``.
    __getattr__ = _lazy_attribute
