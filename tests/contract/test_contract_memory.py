"""The reference in-memory store passes the repository contract."""

from __future__ import annotations

from sessionpacks.adapters.memory import InMemoryStore
from sessionpacks.testing.contract import Opener, RepositoryContract


class TestInMemoryContract(RepositoryContract):
    def make_store(self) -> Opener:
        return InMemoryStore().practice
