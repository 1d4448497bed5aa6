"""What every command runs with: the parsed arguments, the store, the service and the output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TextIO

from sessionpacks import _compose as compose
from sessionpacks.clock import FixedClock, SystemClock
from sessionpacks.ports import Clock
from sessionpacks.service import PackService

from . import store as stores
from .render import jsonable

__all__ = ["Command", "Context"]


class Context:
    """Opens the store on first use, so ``--help`` and usage errors touch no database."""

    def __init__(
        self, args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.args = args
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._store: compose.Store | None = None
        self._service: PackService | None = None

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def clock(self) -> Clock:
        fixed: datetime | None = self.args.now
        return FixedClock(fixed) if fixed is not None else SystemClock()

    @property
    def service(self) -> PackService:
        if self._service is None:
            self._store = stores.open_store(self.args)
            args = self.args
            self._service = compose.open_service(
                self._store, args.practice, args.timezone, self.clock()
            )
        return self._service

    def now(self) -> datetime:
        return self.service.clock.now()

    def emit(self, data: Any, text: str | Iterable[str]) -> None:
        """Print ``data`` as one JSON document under ``--json``, else ``text``."""
        if self.json:
            print(json.dumps(jsonable(data), ensure_ascii=False), file=self.out)
        else:
            print(text if isinstance(text, str) else "\n".join(text), file=self.out)

    def note(self, text: str) -> None:
        """A remark for the person at the terminal, on stderr."""
        print(text, file=self.err)

    def close(self) -> None:
        if self._store is not None:
            compose.close(self._store)
            self._store = None
            self._service = None


Command = Callable[[Context, argparse.Namespace], int]
