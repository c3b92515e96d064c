"""Ctrl-C and SIGTERM as one kind of exception, so every command stops the same way on both.

Python turns SIGINT into :class:`KeyboardInterrupt` but lets SIGTERM end the process at once, without
``finally`` blocks: a training pool or a notebook kernel would be left running. Within
:func:`sigterm_raises`, SIGTERM raises :class:`Terminated`, a :class:`KeyboardInterrupt`, so the code that
stops workers and kernels on Ctrl-C also runs on SIGTERM. The command line reports either in one line and
exits with the shell's status for the signal, ``128 + signal number`` (:func:`exit_status`): 130 for SIGINT,
143 for SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM received (raised by the handler of :func:`sigterm_raises`)."""


def _raise_terminated(signum: int, frame) -> None:
    raise Terminated()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread; the previous handler is restored
    afterwards. Outside the main thread (where no handler can be installed) the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_status(interruption: KeyboardInterrupt) -> int:
    """The shell's exit status for the signal behind ``interruption``: 143 for SIGTERM, 130 for SIGINT."""
    signum = signal.SIGTERM if isinstance(interruption, Terminated) else signal.SIGINT
    return 128 + int(signum)


def interruption_line(command: str, interruption: KeyboardInterrupt) -> str:
    """The one line a command prints when stopped: the signal, the command, what it was doing (the
    interruption's message, e.g. ``step 'data'``) and how to resume."""
    kind = "terminated (SIGTERM)" if isinstance(interruption, Terminated) else "interrupted"
    during = f" during {interruption}" if str(interruption) else ""
    return f"{kind}: `{command}` stopped{during}; run the same command again to resume where it stopped"
