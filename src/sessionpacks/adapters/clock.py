"""Clocks for :class:`sessionpacks.ports.Clock`."""

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
