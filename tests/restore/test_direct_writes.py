"""Restored data is written past the page cache where it can be, and is the same either way."""

from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from vger.restore import direct
from vger.restore.direct import DirectWriter

# Chunks as a restore meets them: unaligned offsets, sizes around the threshold, out of order.
PIECES = [(0, 300_000), (300_000, 1_048_577), (1_348_577, 5), (1_348_582, 2_000_001), (3_348_583, 262_144)]


def _fill(path: Path, writer: DirectWriter) -> bytes:
    rng = random.Random(7)
    size = PIECES[-1][0] + PIECES[-1][1]
    expected = rng.randbytes(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, size)
        for offset, length in reversed(PIECES):
            writer.write_at(fd, memoryview(expected)[offset : offset + length], offset)
    finally:
        os.close(fd)
    return expected


def test_unaligned_chunks_come_out_byte_identical(tmp_path: Path) -> None:
    expected = _fill(tmp_path / "f", DirectWriter())
    assert (tmp_path / "f").read_bytes() == expected


@pytest.mark.skipif(shutil.which("fincore") is None, reason="needs util-linux's fincore")
def test_big_chunks_leave_the_page_cache_alone(tmp_path: Path) -> None:
    writer = DirectWriter()
    expected = _fill(tmp_path / "f", writer)
    if not writer.enabled:
        pytest.skip("this filesystem refuses O_DIRECT")
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(tmp_path / "f")],
        capture_output=True,
        text=True,
        check=True,
    )
    cached = int(out.stdout.split()[0])
    # only the unaligned edges of each big chunk, and the 5-byte chunk, went through the cache
    assert cached <= 8 * 4096, cached
    assert len(expected) > 3_000_000


@pytest.mark.parametrize("refused_by", ["fcntl", "write"])
def test_a_filesystem_without_direct_io_gets_ordinary_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused_by: str
) -> None:
    import fcntl

    real_fcntl, real_pwrite = fcntl.fcntl, os.pwrite
    refusals = []

    def fake_fcntl(fd: int, cmd: int, arg: int = 0) -> int:
        if refused_by == "fcntl" and cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            refusals.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_fcntl(fd, cmd, arg)

    def fake_pwrite(fd: int, data: object, position: int) -> int:
        if refused_by == "write" and real_fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refusals.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, position)  # type: ignore[arg-type]

    monkeypatch.setattr(fcntl, "fcntl", fake_fcntl)
    monkeypatch.setattr(direct.os, "pwrite", fake_pwrite)
    writer = DirectWriter()
    expected = _fill(tmp_path / "f", writer)
    assert (tmp_path / "f").read_bytes() == expected
    assert len(refusals) == 1 and not writer.enabled  # tried once, then left off
