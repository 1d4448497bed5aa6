"""Clocks for :class:`sessionpacks.ports.Clock`: the machine's, and one that stands still.

They touch no storage and import only the model, so the service and the command line, which must
not depend on :mod:`sessionpacks.adapters`, may use them (``sessionpacks.adapters.clock``
re-exports both, for code that imports them from there)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from sessionpacks.model import require_aware

__all__ = ["FixedClock", "SystemClock"]


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@attrs.define
class FixedClock:
    """A clock that stands still until moved: for tests, scripts and the demo."""

    current: datetime = attrs.field(
        validator=lambda _, a, v: require_aware("FixedClock.current", v)
    )

    def now(self) -> datetime:
        return self.current

    def advance(self, by: timedelta) -> None:
        self.current = self.current + by

    def set(self, to: datetime) -> None:
        self.current = require_aware("to", to)
