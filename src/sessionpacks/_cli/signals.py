"""SIGINT and SIGTERM as a clean exit, for a command that holds temporary files.

While :func:`stopping_cleanly` is active, either signal raises an exception in the main thread,
so ``with`` blocks and ``finally`` clauses run and remove what they made; inside
:meth:`Stops.deferred` the signal waits until the block ends, so that a row being written is
finished rather than cut short. The old handlers are restored afterwards.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Stops", "Terminated", "stopping_cleanly"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(BaseException):
    """SIGTERM arrived: unwind and exit with status ``128 + signum``.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def _stop(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


class Stops:
    """The signals received, and whether they wait for the end of a deferred block."""

    def __init__(self) -> None:
        self.waiting = False
        self.pending: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.waiting:
            self.pending = signum
            return
        raise _stop(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a signal until the block is done, then act on it."""
        self.waiting = True
        try:
            yield
        finally:
            self.waiting = False
        if self.pending is not None:
            raise _stop(self.pending)


@contextmanager
def stopping_cleanly() -> Iterator[Stops]:
    """Turn SIGINT and SIGTERM into exceptions for the duration of the block.

    Signal handlers can only be set from the main thread; elsewhere (a host running ``main`` in
    a worker thread) the block runs with the handlers as they are.
    """
    stops = Stops()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    # A signal the caller ignores (nohup, a background job) stays ignored.
    previous = {
        number: signal.getsignal(number)
        for number in _SIGNALS
        if signal.getsignal(number) is not signal.SIG_IGN
    }
    for number in previous:
        signal.signal(number, stops.handle)
    try:
        yield stops
    finally:
        for number, handler in previous.items():
            # None: a handler set outside Python, which cannot be put back; the default is.
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
