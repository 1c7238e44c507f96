"""SIGINT and SIGTERM end a command cleanly, wherever they arrive.

Python turns SIGINT into :class:`KeyboardInterrupt` at whatever line the main
thread is running, and by default SIGTERM kills the process on the spot. That
loses a signal, or data, in three places:

- SIGTERM (from ``kill``, a batch scheduler, a container stop) skips every
  ``except``/``finally``, so the temporaries of an atomic write stay behind;
- an exception raised inside a callback from C is printed as "Exception
  ignored" and dropped: numba compiles a model through llvmlite, which calls
  back into Python through ctypes, so Ctrl-C during first-use compilation
  could be swallowed and the run went on to write its output and exit 0;
- between the two renames that replace an output folder, an interruption
  would leave the old output moved aside and no new one in its place.

So the command line installs :func:`handled`: both signals raise
:class:`Interrupted` (a ``KeyboardInterrupt``) *and* are recorded, and the
writers commit inside :func:`committing`, which first calls :func:`check` (a
swallowed signal is still seen there) and holds signals until the rename is
done (:func:`held`).
The exit code is the shell's convention, 128 + the signal number: 130 for
SIGINT, 143 for SIGTERM.
"""

import signal
import sys
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received = []   # signals seen by the command line's handler since handled() began


class Interrupted(KeyboardInterrupt):
    """The command was interrupted by `signum` (SIGINT or SIGTERM)."""

    def __init__(self, signum):
        self.signum = signal.Signals(signum)
        super().__init__(self.signum.name)


def _raise_interrupted(signum, frame):
    _received.append(signum)
    raise Interrupted(signum)


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()


@contextmanager
def handled():
    """SIGINT and SIGTERM raise :class:`Interrupted` and are recorded (for :func:`check`).

    The previous handlers come back on exit. Outside the main thread (where signals
    cannot be handled) this does nothing.
    """
    if not _in_main_thread():
        yield
        return
    previous = {number: signal.signal(number, _raise_interrupted) for number in SIGNALS}
    hook = sys.unraisablehook
    sys.unraisablehook = _quiet_about_interruptions(hook)
    _received.clear()
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        sys.unraisablehook = hook
        _received.clear()


def _quiet_about_interruptions(hook):
    """An unraisable-exception hook that says nothing of an interruption already recorded."""
    def quiet(unraisable):
        if not isinstance(unraisable.exc_value, Interrupted):
            hook(unraisable)
    return quiet


def received():
    """The first signal the command line's handler recorded, or None."""
    return _received[0] if _received else None


def check():
    """Raise :class:`Interrupted` if a signal arrived, even one whose exception was swallowed."""
    if _received:
        raise Interrupted(_received[0])


@contextmanager
def held():
    """Run a short critical section that SIGINT and SIGTERM cannot cut in two.

    A signal arriving inside is delivered again, to the handler in place before,
    once the section is over (so it still interrupts, just not half-way).
    """
    if not _in_main_thread():
        yield
        return
    pending = []
    previous = {number: signal.signal(number, lambda signum, frame: pending.append(signum)) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(pending):
            signal.raise_signal(number)


@contextmanager
def committing(output):
    """Commit `output` (its final rename) in one piece, or not at all if a signal came before.

    A signal recorded earlier (:func:`check`) stops the commit; one arriving during it is
    delivered after it, and its exception names the complete output in ``written``.
    """
    committed = False
    try:
        with held():
            check()
            yield
            committed = True
    except KeyboardInterrupt as interruption:
        if committed:
            interruption.written = output
        raise
