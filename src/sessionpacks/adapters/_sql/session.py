"""The seam between the SQL core and a driver: a :class:`Session` runs the core's statements."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from sessionpacks.adapters._sql.dialect import Dialect

__all__ = ["Params", "Session", "Step"]

Params = Sequence[Any] | Mapping[str, Any]


class Session(Protocol):
    """A connection of one driver, translating its errors into the library's, each named by
    the field and value the session is :meth:`about`."""

    @property
    def dialect(self) -> Dialect: ...

    def about(self, field: str, value: Any) -> Session:
        """The same connection, naming ``field`` and ``value`` in the errors it raises."""
        ...

    def rows(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement (already in this dialect)."""
        ...

    def run(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it wrote."""
        ...

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once for each of ``rows``."""
        ...


Step = Callable[[Session], None]
"""One schema step, run inside the upgrade's transaction (DDL is transactional in both)."""
