"""Test support for stores and hosts: :mod:`sessionpacks.testing.contract` is the suite every
:class:`~sessionpacks.ports.PackRepository` passes. Needs the ``testing`` extra (pytest,
hypothesis)."""

from sessionpacks.testing.contract import Opener, RepositoryContract

__all__ = ["Opener", "RepositoryContract"]
