"""feed_pipe: an artifact decoded by the real ``zstd -d``, spliced into a real tool's pipe (as pg_restore is fed).

The tool gets the same bytes at the same moments as with the Python decoder: everything
when the artifact is good, never its last chunk when anything is wrong (checksum, the
program's own check, a size the manifest does not record), and nothing keeps running.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from test_pipeline import PLUGINS, encode, sample

from dbkeeper.backups.piped_decoding import PROGRAM_FROM
from dbkeeper.backups.pipeline import DecodeChain
from dbkeeper.errors import IntegrityError
from dbkeeper.plugin.streams import CHUNK_SIZE
from dbkeeper.plugin.tools import feed_pipe, running
from helpers import noting_tool

pytestmark = pytest.mark.skipif(not hasattr(os, "splice") or shutil.which("zstd") is None, reason="Linux and zstd")

SIZE = PROGRAM_FROM + 3 * CHUNK_SIZE + 17


@pytest.fixture(scope="module")
def data() -> bytes:
    return sample(SIZE)


@pytest.fixture
def artifact(tmp_path: Path, data: bytes) -> tuple[Path, list[dict]]:
    path = tmp_path / "artifact.zst"
    return path, encode("zstd", data, path)


@pytest.fixture
def zstd_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``zstd`` first on PATH that notes each run in a file, then runs the real one."""
    bindir, log = tmp_path / "bin", tmp_path / "zstd-runs"
    noting_tool(bindir, "zstd", log)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return log


@contextlib.contextmanager
def chain(artifact: tuple[Path, list[dict]], raw_bytes: int | None) -> Iterator[DecodeChain]:
    path, records = artifact
    with path.open("rb") as source:
        yield DecodeChain([(PLUGINS.stage(r["name"]).stage, r) for r in records], source, "b1/a.zst",
                          raw_bytes=raw_bytes)  # fmt: skip


def zstd_children() -> list[int]:
    """This process's children running zstd."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and comm == "zstd":
                found.append(int(entry.name))
    return found


def feed(reader: DecodeChain, out: Path, calls: list[str]) -> int:
    with running(["/bin/sh", "-c", f"/bin/cat > {out}"], stdin=True) as tool:
        return feed_pipe(reader, tool.stdin, before_last=lambda: calls.append("last"))


def test_zstd_decodes_and_the_tool_gets_every_byte(tmp_path: Path, artifact, data: bytes, zstd_runs: Path) -> None:
    calls: list[str] = []
    with chain(artifact, len(data)) as reader:
        assert feed(reader, tmp_path / "out", calls) == len(data)
        assert reader.read(CHUNK_SIZE) == b""
        assert reader.stored.total == artifact[0].stat().st_size
    assert (tmp_path / "out").read_bytes() == data
    assert calls == ["last"]
    assert zstd_runs.read_text().split() == ["--decompress", "--stdout", "--quiet"]
    assert zstd_children() == []


def test_without_zstd_or_a_size_python_decodes(
    tmp_path: Path, artifact, data: bytes, zstd_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No recorded size, no program on PATH, or a small artifact: the same bytes through the Python decoder."""
    for raw_bytes, path in ((None, os.environ["PATH"]), (len(data), str(tmp_path / "empty"))):
        monkeypatch.setenv("PATH", path)
        calls: list[str] = []
        with chain(artifact, raw_bytes) as reader:
            assert feed(reader, tmp_path / "out", calls) == len(data)
        assert (tmp_path / "out").read_bytes() == data and calls == ["last"]
    monkeypatch.setenv("PATH", str(zstd_runs.parent / "bin"))
    small = tmp_path / "small.zst"
    records = encode("zstd", data[: PROGRAM_FROM - 1], small)
    with chain((small, records), PROGRAM_FROM - 1) as reader:
        assert feed(reader, tmp_path / "out", []) == PROGRAM_FROM - 1
    assert not zstd_runs.exists()


def damage_digest(path: Path, records: list[dict]) -> list[dict]:
    records[1]["digest"] = "0" * 64
    return records


def damage_frame(path: Path, records: list[dict]) -> list[dict]:
    """A frame zstd refuses, in a file whose recorded digest matches (the program's own check fails)."""
    raw = bytearray(path.read_bytes())
    raw[0] ^= 0xFF
    path.write_bytes(raw)
    records[1]["digest"] = hashlib.sha256(raw).hexdigest()
    return records


@pytest.mark.parametrize(
    ("damage", "size_error", "message"),
    [
        (damage_digest, 0, "artifact b1/a.zst: SHA256 mismatch"),
        (damage_frame, 0, r"artifact b1/a.zst is damaged \(zstd: .*\); it cannot be restored"),
        (None, -1, r"damaged \(it decodes to more than the \d+ bytes the manifest records\)"),
        (None, +1, r"damaged \(it decodes to \d+ bytes, the manifest records \d+\)"),
    ],
)
def test_the_tool_never_gets_its_last_chunk_when_anything_is_wrong(
    tmp_path: Path, artifact, data: bytes, damage, size_error: int, message: str
) -> None:
    path, records = artifact
    if damage is not None:
        records = damage(path, records)
    calls: list[str] = []
    with pytest.raises(IntegrityError, match=message), chain((path, records), len(data) + size_error) as reader:
        feed(reader, tmp_path / "out", calls)
    assert calls == []
    assert len((tmp_path / "out").read_bytes()) <= len(data) - CHUNK_SIZE + max(size_error, 0)
    assert zstd_children() == []


def test_a_tool_that_stops_reading(tmp_path: Path, artifact, data: bytes) -> None:
    """BrokenPipeError, as feed_verified gives; the program is gone, and reading on proves the checksum."""
    for digest_ok in (True, False):
        path, records = artifact
        if not digest_ok:
            records[1]["digest"] = "0" * 64
        with chain((path, records), len(data)) as reader:
            with pytest.raises(BrokenPipeError), running(["/bin/sh", "-c", "head -c 10 >/dev/null"], stdin=True) as t:
                feed_pipe(reader, t.stdin)
            assert zstd_children() == []
            if digest_ok:
                assert reader.read(CHUNK_SIZE) == b""
            else:
                with pytest.raises(IntegrityError, match="SHA256 mismatch"):
                    reader.read(CHUNK_SIZE)
            assert reader.stored.total == path.stat().st_size


class FailingFile:
    """A stored file whose reads fail part way (an I/O error of the disk)."""

    def __init__(self, file: BinaryIO, after: int) -> None:
        self._file = file
        self._left = after

    def read(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            raise OSError(5, "Input/output error")
        data = self._file.read(min(size, self._left))
        self._left -= len(data)
        return data


def test_a_read_error_of_the_stored_file_is_damage_as_with_the_python_decoder(
    tmp_path: Path, artifact, data: bytes
) -> None:
    path, records = artifact
    stages = [(PLUGINS.stage(r["name"]).stage, r) for r in records]
    with path.open("rb") as file, pytest.raises(IntegrityError, match=r"b1/a.zst is damaged \(.*Input/output error"):
        feed(DecodeChain(stages, FailingFile(file, path.stat().st_size // 2), "b1/a.zst", raw_bytes=len(data)),
             tmp_path / "out", [])  # fmt: skip
    assert len((tmp_path / "out").read_bytes()) < len(data)
    assert zstd_children() == []
