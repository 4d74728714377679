"""An ordered, bounded parallel map: results come back in input order, with at
most a fixed number of items in flight, so memory stays flat on any dataset size."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from odprep.errors import OdprepError
from odprep.termination import held, worker_setup

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def keep_freed_memory(limit: int = 64 << 20) -> None:
    """Ask glibc to keep freed blocks up to ``limit`` for reuse instead of handing them
    back to the kernel. Mask encoding allocates several 300-400 KB buffers per object;
    returning and re-faulting them dominated the run time on large datasets (kernel
    time grew with the size of the forked parent). A no-op where glibc is absent."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, limit)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, limit)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _start_worker(parent_pid: int, initializer: Callable | None, initargs: tuple) -> None:
    """Signals are the parent's to handle: it stops the pool and removes partial output."""
    worker_setup(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def fork_available() -> bool:
    """Workers forked from this process see its memory (no pickling needed)."""
    return "fork" in multiprocessing.get_all_start_methods()


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int,
                in_flight_per_worker: int = 8, initializer: Callable | None = None,
                initargs: tuple = ()) -> Iterator[R]:
    """map(fn, items) over ``workers`` processes (1 = in this process), in order."""
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, items)
        return
    context = multiprocessing.get_context("fork" if fork_available() else "spawn")
    executor: Executor = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                             initializer=_start_worker,
                                             initargs=(os.getpid(), initializer, initargs))
    pending: deque = deque()
    limit = workers * in_flight_per_worker
    finished = False
    try:
        for item in items:
            with held():  # submit may fork a worker: a signal there would be swallowed
                pending.append(executor.submit(fn, item))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
        finished = True
    except BrokenProcessPool:
        raise OdprepError("odprep", "a worker process died (the system ended it, often for lack of "
                          "memory)", "Run with fewer --workers, or on a machine with more memory") from None
    finally:
        with held():
            for future in pending:
                future.cancel()
            if not finished:  # an error or an interrupt: stop now rather than finish the chunks
                for process in list(getattr(executor, "_processes", {}).values()):
                    with contextlib.suppress(OSError, AttributeError):
                        process.kill()
            executor.shutdown(wait=True, cancel_futures=True)
