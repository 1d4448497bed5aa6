"""The SQLite store, on a file, passes the repository contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionpacks.adapters.sqlite import SqliteStore
from sessionpacks.testing.contract import Opener, RepositoryContract


class TestSqliteContract(RepositoryContract):
    @pytest.fixture(autouse=True)
    def _file(self, tmp_path: Path) -> None:
        self.path = tmp_path / "packs.db"

    def make_store(self) -> Opener:
        self.store = SqliteStore(self.path)
        return self.store.practice

    def close_store(self) -> None:
        self.store.close()
