"""Streaming native tools in and out of the pipeline, with real processes."""

from __future__ import annotations

import hashlib
import io
import stat
from pathlib import Path

import pytest

from dbkeeper.backups.pipeline import DecodeChain
from dbkeeper.errors import DatabaseError, IntegrityError
from dbkeeper.plugin.manager import load_plugins
from dbkeeper.plugin.streams import CHUNK_SIZE
from dbkeeper.plugin.tools import copy_into, feed_verified, find_tool, private_file, stream_in, stream_out

SHA256 = load_plugins(entry_points_group=None).stage("sha256").stage


def verified_reader(data: bytes, digest_of: bytes | None = None) -> DecodeChain:
    record = {"digest": hashlib.sha256(digest_of if digest_of is not None else data).hexdigest()}
    return DecodeChain([(SHA256, record)], io.BytesIO(data), "test")


def test_stream_out_copies_stdout() -> None:
    out = io.BytesIO()
    assert stream_out(["head", "-c", str(3 * CHUNK_SIZE + 5), "/dev/zero"], out) == 3 * CHUNK_SIZE + 5
    assert out.getvalue() == b"\0" * (3 * CHUNK_SIZE + 5)


def test_stream_out_stops_the_tool_when_the_pipeline_fails() -> None:
    """The read-ahead thread must not keep an endless tool (or the caller) waiting."""

    class Full:
        def __init__(self) -> None:
            self.chunks = 0

        def write(self, data: bytes) -> int:
            self.chunks += 1
            if self.chunks == 3:
                raise OSError("No space left on device")
            return len(data)

    with pytest.raises(OSError, match="No space left"):
        stream_out(["cat", "/dev/zero"], Full())


def test_stream_out_failure_reports_stderr_and_masks_passwords() -> None:
    from dbkeeper.connections.urls import remember_secret

    remember_secret("tops3cret")
    with pytest.raises(DatabaseError, match=r"sh failed \(exit 3\): fatal: login failed for \*\*\*"):
        stream_out(["sh", "-c", "echo noise >&2; echo 'fatal: login failed for tops3cret' >&2; exit 3"], io.BytesIO())


def test_stream_in_feeds_everything_when_verified(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000
    target = tmp_path / "out"
    assert stream_in(["sh", "-c", f"cat > {target}"], verified_reader(data)) == len(data)
    assert target.read_bytes() == data


def test_stream_in_never_delivers_the_end_of_damaged_input(tmp_path: Path) -> None:
    data = b"x" * (3 * CHUNK_SIZE)
    target = tmp_path / "out"
    with pytest.raises(IntegrityError):
        stream_in(["sh", "-c", f"cat > {target}"], verified_reader(data, digest_of=b"something else"))
    assert len(target.read_bytes()) < len(data), "the tool never saw the whole (unverified) input"


def test_stream_in_when_the_tool_gives_up() -> None:
    with pytest.raises(DatabaseError, match="exit 4"):
        stream_in(
            ["sh", "-c", "head -c 10 >/dev/null; echo 'ERROR: bad input' >&2; exit 4"],
            verified_reader(b"y" * (4 * CHUNK_SIZE)),
        )


def test_feed_verified_holds_back_the_last_chunk() -> None:
    written: list[int] = []
    with pytest.raises(IntegrityError):
        feed_verified(verified_reader(b"z" * (2 * CHUNK_SIZE + 1), digest_of=b""), lambda b: written.append(len(b)))
    assert sum(written) < 2 * CHUNK_SIZE + 1


def test_private_file_and_find_tool(tmp_path: Path) -> None:
    path = private_file(tmp_path / "pass", "secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "secret"
    assert find_tool(["no-such-tool", "sh"], "install sh").endswith("/sh")
    with pytest.raises(DatabaseError, match="nope1 or nope2 not found on PATH — apt-get install nope"):
        find_tool(["nope1", "nope2"], "apt-get install nope")


def test_copy_into_writes_everything_and_proves_the_checksum(tmp_path: Path) -> None:
    data = bytes(range(256)) * (5 * CHUNK_SIZE // 256) + b"tail"
    with (tmp_path / "copy").open("wb") as file:
        assert copy_into(verified_reader(data), file) == len(data)
    assert (tmp_path / "copy").read_bytes() == data
    with (tmp_path / "bad").open("wb") as file, pytest.raises(IntegrityError, match="SHA256 mismatch"):
        copy_into(verified_reader(data, digest_of=b"other"), file)


def test_copy_into_reports_a_failing_write_and_stops_reading() -> None:
    """/dev/full refuses every write (ENOSPC): the error comes back, the reader is not read to the end."""
    data = b"x" * (20 * CHUNK_SIZE)
    reader = verified_reader(data)
    with open("/dev/full", "wb") as file, pytest.raises(OSError, match="No space left"):
        copy_into(reader, file, behind=2)
    assert reader.stored.total < len(data)
