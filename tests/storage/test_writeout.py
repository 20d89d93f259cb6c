"""Paced write-out: a file's dirty pages are written piece by piece, resting after each piece
that had data, and the file ends durable (fsync)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from attune.storage import writeout


def test_every_piece_of_the_file_is_written_out_then_the_file_is_synced(tmp_path: Path, monkeypatch) -> None:
    if writeout._sync_file_range is None:
        pytest.skip("sync_file_range is Linux-only")
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(10 * 1024))
    calls: list[tuple[int, int]] = []
    synced: list[int] = []
    real_range, real_fsync = writeout._sync_file_range, os.fsync

    def spy_range(fd: int, offset: int, nbytes: int, flags: int) -> int:
        calls.append((offset, nbytes))
        return real_range(fd, offset, nbytes, flags)

    def spy_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(writeout, "_sync_file_range", spy_range)
    monkeypatch.setattr(writeout.os, "fsync", spy_fsync)
    rests: list[float] = []
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, b"x" * 4096, 0)  # dirty again
        # Every piece counts as slow (threshold below zero): a rest after each.
        taken = writeout.paced_sync(fd, chunk=4096, slow=-1.0, pause=0.001, sleep=rests.append)
    finally:
        os.close(fd)
    assert calls == [(0, 4096), (4096, 4096), (8192, 4096)]
    assert taken == 3 and rests == [0.001] * 3
    assert len(synced) == 1
    assert path.read_bytes()[:4096] == b"x" * 4096


def test_pieces_with_nothing_to_write_are_not_followed_by_a_rest(tmp_path: Path) -> None:
    path = tmp_path / "clean.bin"
    path.write_bytes(b"\0" * 64 * 1024)
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)  # nothing dirty left
        rests: list[float] = []
        # A clean piece returns in microseconds, well under an hour.
        assert writeout.paced_sync(fd, chunk=4096, slow=3600.0, sleep=rests.append) == 0
    finally:
        os.close(fd)
    assert rests == []


def test_writing_out_can_be_started_without_waiting_where_linux_allows(tmp_path: Path) -> None:
    path = tmp_path / "wal.bin"
    path.write_bytes(os.urandom(64 * 1024))
    assert writeout.start_writeout(path) is (writeout._sync_file_range is not None)
    assert writeout.start_writeout(tmp_path / "missing") is False
