"""Paced write-out of a file's dirty pages, so one large flush does not hold the disk.

A disk works through its queue in order: when a checkpoint's tens of megabytes of copied
pages are flushed in one ``fsync``, every commit that flushes its own few kilobytes meanwhile
(each append does, before it is acknowledged) waits behind all of them: right after a burst
that was 100–200 ms per commit. :func:`paced_sync` writes the file out a few megabytes at a
time with Linux's ``sync_file_range`` and rests briefly after each piece that had data to
write, so other flushes slip in between; a final ``fsync`` then has little left to do. Where
``sync_file_range`` is not available it is a plain ``fsync``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from collections.abc import Callable

# <fcntl.h>: wait for writeback already under way, start it, wait for it to finish.
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not hasattr(os, "sched_getaffinity"):  # not Linux
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # a CDLL call releases the GIL while it waits


_sync_file_range = _load_sync_file_range()


def paced_sync(
    fd: int,
    *,
    chunk: int = 4 * 1024 * 1024,
    slow: float = 0.002,
    pause: float = 0.005,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Make the file behind ``fd`` durable, writing it out ``chunk`` bytes at a time.

    After each piece that took longer than ``slow`` seconds (it had pages to write), rest
    ``pause`` seconds. Ends with ``os.fsync``. Returns the number of rests taken.
    """
    rests = 0
    if _sync_file_range is not None:
        size = os.fstat(fd).st_size
        for offset in range(0, size, chunk):
            started = time.perf_counter()
            if _sync_file_range(fd, offset, chunk, _WAIT_BEFORE | _WRITE | _WAIT_AFTER) != 0:
                break  # e.g. a file system without it: the fsync below does the work
            if time.perf_counter() - started > slow:
                sleep(pause)
                rests += 1
    os.fsync(fd)
    return rests


def start_writeout(path: str | os.PathLike[str]) -> bool:
    """Start writing the file's dirty pages to disk, without waiting for them (Linux).

    Consumer transactions commit without a flush of their own; the next append's flush then
    wrote out everything they had put in the WAL meanwhile: right after the catch-up of a
    burst, appends took 11–40 ms each for a second or more. Started early, that writing is
    mostly done by then. Returns False where it cannot be done (no file, not Linux).
    """
    if _sync_file_range is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        return _sync_file_range(fd, 0, 0, _WRITE) == 0  # 0 bytes: to the end of the file
    finally:
        os.close(fd)
