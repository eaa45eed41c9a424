"""Stages and chains on real bytes, checked against the stock zstd, gzip and sha256sum."""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
from pathlib import Path

import pytest

from dbkeeper.backups.pipeline import DecodeChain, EncodeChain, StagePlan
from dbkeeper.errors import IntegrityError, StageOptionError
from dbkeeper.plugin.manager import load_plugins
from dbkeeper.plugin.streams import CHUNK_SIZE

PLUGINS = load_plugins(entry_points_group=None)


def sample(size: int) -> bytes:
    """Half text, half noise, so every codec has work to do."""
    rng = random.Random(size)
    words = [b"alpha", b"beta", b"\xc3\xa9t\xc3\xa9", b"42", b"NULL", b"\n"]
    text = b" ".join(rng.choice(words) for _ in range(size // 8))
    return (text[: size // 2] + os.urandom(size))[:size]


def encode(codec: str, data: bytes, path: Path, options: dict | None = None) -> list[dict]:
    plans = [
        StagePlan(PLUGINS.stage(codec).stage, "dbkeeper", options or {}),
        StagePlan(PLUGINS.stage("sha256").stage, "dbkeeper", {}),
    ]
    with path.open("wb") as out:
        chain = EncodeChain(plans, out, None)
        for start in range(0, len(data), 300_000):
            chain.write(data[start : start + 300_000])
        records = chain.finish()
    assert chain.raw.total == len(data)
    assert chain.stored.total == path.stat().st_size
    return records


def decode(records: list[dict], path: Path) -> bytes:
    stages = [(PLUGINS.stage(r["name"]).stage, r) for r in records]
    out = io.BytesIO()
    with path.open("rb") as source:
        chain = DecodeChain(stages, source, path.name)
        while chunk := chain.read(CHUNK_SIZE):
            out.write(chunk)
    return out.getvalue()


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, 3 * CHUNK_SIZE + 17])
def test_round_trip(tmp_path: Path, codec: str, size: int) -> None:
    data = sample(size)
    path = tmp_path / "artifact"
    records = encode(codec, data, path)
    assert decode(records, path) == data
    assert records[-1]["digest"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("codec", "tool"), [("zstd", ["zstd", "-dc"]), ("gzip", ["gzip", "-dc"])])
def test_stock_tools_read_our_output(tmp_path: Path, codec: str, tool: list[str]) -> None:
    data = sample(2 * CHUNK_SIZE)
    path = tmp_path / "artifact"
    records = encode(codec, data, path)
    assert subprocess.run([*tool, str(path)], capture_output=True, check=True).stdout == data
    sha256sum = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout
    assert sha256sum.split()[0] == records[-1]["digest"]


def test_we_read_stock_multi_frame_and_multi_member_output(tmp_path: Path) -> None:
    """Concatenated zstd frames and gzip members decode whole (what ``cat a.zst b.zst`` makes)."""
    data = sample(CHUNK_SIZE)
    for codec, tool in (("zstd", ["zstd", "-c", "-q"]), ("gzip", ["gzip", "-c"])):
        part = subprocess.run(tool, input=data, capture_output=True, check=True).stdout
        path = tmp_path / f"double.{codec}"
        path.write_bytes(part + part)
        record = {"name": "sha256", "digest": hashlib.sha256(part + part).hexdigest()}
        assert decode([{"name": codec}, record], path) == data + data


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
def test_damage_is_always_detected(tmp_path: Path, codec: str, damage: str) -> None:
    path = tmp_path / "artifact"
    records = encode(codec, sample(2 * CHUNK_SIZE), path)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 3] ^= 0x10
    elif damage == "truncate":
        del data[-100:]
    else:
        data += b"\0" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        decode(records, path)


def test_stage_options_are_checked() -> None:
    zstd = PLUGINS.stage("zstd").stage
    with pytest.raises(StageOptionError, match="no option 'speed'"):
        zstd.encoder(io.BytesIO(), {"speed": 1})
    with pytest.raises(StageOptionError, match="must be an integer"):
        zstd.encoder(io.BytesIO(), {"level": "3"})
    with pytest.raises(StageOptionError, match="1 to 9"):
        PLUGINS.stage("gzip").stage.encoder(io.BytesIO(), {"level": 0})


def test_gzip_output_is_bounded_per_read(tmp_path: Path) -> None:
    """A highly compressible artifact never inflates more than a chunk at a time."""
    path = tmp_path / "zeros"
    records = encode("gzip", b"\0" * (64 * CHUNK_SIZE), path)
    stages = [(PLUGINS.stage(r["name"]).stage, r) for r in records]
    with path.open("rb") as source:
        chain = DecodeChain(stages, source, "zeros")
        sizes = []
        while chunk := chain.read(CHUNK_SIZE):
            sizes.append(len(chunk))
    assert max(sizes) <= CHUNK_SIZE and sum(sizes) == 64 * CHUNK_SIZE


def test_parallel_writers_share_the_cores() -> None:
    """With --jobs N, each zstd encoder gets cores // N worker threads (none at one core), unless the user chose."""
    cores = os.cpu_count() or 1
    zstd = StagePlan(PLUGINS.stage("zstd").stage, "dbkeeper", {"level": 5})
    share = cores // 2
    assert zstd.sharing_cores(2).options == {"level": 5, "threads": share if share > 1 else 0}
    assert zstd.sharing_cores(cores).options == {"level": 5, "threads": 0}
    assert zstd.sharing_cores(1) is zstd
    chosen = StagePlan(zstd.stage, "dbkeeper", {"threads": 3})
    assert chosen.sharing_cores(4) is chosen
    gzip = StagePlan(PLUGINS.stage("gzip").stage, "dbkeeper", {})
    assert gzip.sharing_cores(4) is gzip
    for plan in (zstd.sharing_cores(2), zstd.sharing_cores(cores)):  # the shared options are valid for the codec
        plan.stage.encoder(io.BytesIO(), plan.options).finish()
