"""SIGINT and SIGTERM as a clean exit, for a command that holds temporary files.

While :func:`stopping_cleanly` is active, either signal is recorded, and raised as an exception
in the main thread where the command checks for it (:meth:`Stops.check`, at the end of each
:meth:`Stops.deferred` block), so ``with`` blocks and ``finally`` clauses run and remove what
they made, and a row being written is finished rather than cut short. Only inside
:meth:`Stops.interruptible` (a wait for input, which no check would reach) is it raised at once.
The old handlers are restored afterwards.

The handler never raises wherever the main thread happens to be: an exception out of a signal
handler can land in any Python code, between a lock's acquire and its release, and leave the
lock held. Coverage's tracer, for one, takes and releases a lock in Python on every call of a
measured function; a stop raised there left it held, and the next call waited for it forever.
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
    """The signal received, raised only where the command checks for it."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self.immediate = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.immediate:
            raise _stop(signum)
        self.pending = signum

    def check(self) -> None:
        """Raise for the signal received since the last check, if one was: the command may
        stop here."""
        signum = self.pending
        if signum is not None:
            self.pending = None
            raise _stop(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a signal until the block is done, then act on it."""
        yield
        self.check()

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block that may wait without end (for input): a signal in it raises at once."""
        self.check()
        self.immediate = True
        try:
            yield
        finally:
            self.immediate = False


@contextmanager
def stopping_cleanly() -> Iterator[Stops]:
    """Turn SIGINT and SIGTERM into exceptions, at the block's checks, for its duration.

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
    stops.check()  # one received after the command's last check still stops it
