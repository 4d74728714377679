"""How a run ends early: SIGTERM and SIGHUP end it like Ctrl-C (clean-up runs, nothing is
left at the output paths), and worker processes die with their parent."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

_PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the run is so that its clean-up runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_held = {"depth": 0, "pending": None, "received": None}


def _interrupt(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _on_signal(signum: int, _frame) -> None:
    _held["received"] = signum
    if _held["depth"]:
        _held["pending"] = _held["pending"] or signum  # raised when the held block ends
        return
    raise _interrupt(signum)


def end_like_ctrl_c() -> dict:
    """Make SIGINT, SIGTERM and SIGHUP raise in the main thread (held off while a ``held``
    block runs). Returns the previous handlers, for ``restore``."""
    _held["received"] = None
    _held["committed"] = False
    return {sig: signal.signal(sig, _on_signal) for sig in _SIGNALS}


def mark_committed() -> None:
    """The command's output is in place (called when the last commit is done): a signal
    from here on must not be reported as if nothing had been written."""
    _held["committed"] = True


def quiet_exit() -> None:
    """After an interrupt, the interpreter's shutdown finalises what the signal cut short
    (an upload's coroutines, their tasks) and prints "Exception ignored in ..." and "Task
    was destroyed but it is pending!": noise after the one line the user is owed."""
    import logging
    import sys
    import warnings

    sys.unraisablehook = lambda _unraisable: None
    logging.getLogger("asyncio").disabled = True
    warnings.simplefilter("ignore")


def interrupted_message() -> str:
    """What a signal leaves, said truthfully."""
    if _held.get("committed"):
        return "interrupted after the output was written: it is complete and in place"
    return "interrupted: no output was written"


def check() -> None:
    """Raise again a signal that arrived but never ended the run: Python ignores exceptions
    raised in some places (an os.fork hook, a __del__), which would swallow it. Called per
    record and before anything is committed."""
    if _held["received"] is not None and not _held["depth"]:
        raise _interrupt(_held["received"])


def restore(previous: dict) -> None:
    """Put back the handlers ``end_like_ctrl_c`` replaced; the command is over, and so is
    any signal it had noted."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    _held["received"] = _held["pending"] = None


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block is done (renames, clean-up). A signal
    that came meanwhile is raised afterwards, unless the block is already unwinding one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = hasattr(signal, "pthread_sigmask")
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, set(_SIGNALS)) if mask else None
    _held["depth"] += 1
    unwinding = False
    try:
        yield
    except BaseException:
        unwinding = True
        raise
    finally:
        _held["depth"] -= 1
        if mask:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a blocked one is handled now
        pending, _held["pending"] = _held["pending"], None
        if pending and not unwinding and not _held["depth"]:
            raise _interrupt(pending)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal number, as a shell reports a process ended by it."""
    return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


def worker_setup(parent_pid: int) -> None:
    """In a worker: leave INT/TERM/HUP to the parent, which stops the workers and cleans up;
    and die if the parent dies (SIGKILL included), so no worker is ever orphaned."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        pass
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)
