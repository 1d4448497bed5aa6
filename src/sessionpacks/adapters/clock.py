"""The clocks, where they were first published: :mod:`sessionpacks.clock` holds them now.

They live outside the adapters so that the service and the command line, which must not depend
on a store's module, can use them; this module keeps the old import path working.
"""

from __future__ import annotations

from sessionpacks.clock import FixedClock, SystemClock

__all__ = ["FixedClock", "SystemClock"]
