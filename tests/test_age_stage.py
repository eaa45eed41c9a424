"""The age stage on real bytes: the core's chains, Debian's age CLI both ways, real keys, real damage, flat memory."""

from __future__ import annotations

import errno
import gc
import hashlib
import io
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dbkeeper.backups.pipeline import DecodeChain, EncodeChain, StagePlan
from dbkeeper.errors import IntegrityError, KeyRequiredError, StageOptionError
from dbkeeper.plugin.manager import load_plugins
from dbkeeper.plugin.streams import CHUNK_SIZE, EncryptionStage

PLUGINS = load_plugins()
AGE = PLUGINS.stage("age").stage
AGE_CHUNK = 64 * 1024 + 16
"""The size of a full chunk of age's payload (64 KiB of plaintext and its tag)."""
MEMORY_SCRIPT = """
import os, sys
from pathlib import Path
from dbkeeper.backups.pipeline import DecodeChain, EncodeChain, StagePlan
from dbkeeper.plugin.manager import load_plugins
from dbkeeper.plugin.streams import CHUNK_SIZE

plugins = load_plugins()
mib, recipient, identity, path = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
options = {"zstd": {"level": 1, "threads": 0}, "age": {"recipients": [recipient]}, "sha256": {}}
plans = [StagePlan(plugins.stage(name).stage, "test", opts) for name, opts in options.items()]
with path.open("wb") as out:
    chain = EncodeChain(plans, out, None)
    for _ in range(mib):
        chain.write(os.urandom(CHUNK_SIZE))  # incompressible: every byte goes through age
    records = chain.finish()
assert path.stat().st_size > mib * CHUNK_SIZE
total = 0
with path.open("rb") as source:
    stages = [(plan.stage, record) for plan, record in zip(plans, records)]
    chain = DecodeChain(stages, source, "x", identities=[identity])
    while data := chain.read(CHUNK_SIZE):
        total += len(data)
assert total == mib * CHUNK_SIZE
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


@dataclass(frozen=True)
class Keys:
    """Real keys made by age-keygen and ssh-keygen."""

    age_key: Path
    age_public: str
    ssh_key: Path
    ssh_public: str
    rsa_key: Path
    rsa_public: str
    other_key: Path
    locked_ssh_key: Path
    pem_key: Path


def run(*args: str | Path) -> str:
    """Run a tool; its standard output."""
    return subprocess.run([str(arg) for arg in args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Two age keys, ed25519 keys without and with a passphrase, and RSA keys in OpenSSH and PEM format."""
    folder = tmp_path_factory.mktemp("keys")
    for name in ("key.txt", "other.txt"):
        run("age-keygen", "-o", folder / name)
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@host", "-f", folder / "id_ed25519")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", folder / "locked")
    run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", folder / "id_rsa")
    run("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", folder / "pem_rsa")
    return Keys(
        age_key=folder / "key.txt",
        age_public=run("age-keygen", "-y", folder / "key.txt").strip(),
        ssh_key=folder / "id_ed25519",
        ssh_public=(folder / "id_ed25519.pub").read_text().strip(),
        rsa_key=folder / "id_rsa",
        rsa_public=(folder / "id_rsa.pub").read_text().strip(),
        other_key=folder / "other.txt",
        locked_ssh_key=folder / "locked",
        pem_key=folder / "pem_rsa",
    )


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    """After every test, no age worker thread is left running (they end within a bounded time)."""
    yield
    gc.collect()
    assert wait_for_no_workers(), "an age worker thread is still running"


def age_workers() -> list[threading.Thread]:
    """The age stage's worker threads alive now."""
    return [thread for thread in threading.enumerate() if thread.name.startswith("dbkeeper-age-")]


def wait_for_no_workers(seconds: float = 10.0) -> bool:
    """Whether every age worker ended within *seconds* (a bound against hanging, not a speed test)."""
    deadline = time.monotonic() + seconds
    while age_workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not age_workers()


def fingerprint(recipient: str) -> str:
    """The fingerprint the manifest records for a recipient (its type and body, without a comment)."""
    return "sha256:" + hashlib.sha256(" ".join(recipient.split()[:2]).encode()).hexdigest()[:16]


def secret_of(key_file: Path) -> str:
    """The AGE-SECRET-KEY line of an age-keygen file."""
    return next(line for line in key_file.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))


def encode(data: bytes, path: Path, recipients: list[str]) -> list[dict[str, Any]]:
    """Push *data* through zstd → age → sha256 into *path*; the stage records."""
    options = {"zstd": {}, "age": {"recipients": recipients}, "sha256": {}}
    plans = [
        StagePlan(PLUGINS.stage(name).stage, PLUGINS.stage(name).provider.distribution, o)
        for name, o in options.items()
    ]
    with path.open("wb") as out:
        chain = EncodeChain(plans, out, None)
        for start in range(0, len(data), 300_000):
            chain.write(data[start : start + 300_000])
        return chain.finish()


def decode(records: list[dict[str, Any]], path: Path, identities: list[Path]) -> bytes:
    """Pull *path* back through the chain the records describe."""
    stages = [(PLUGINS.stage(record["name"]).stage, record) for record in records]
    out = io.BytesIO()
    with path.open("rb") as source:
        chain = DecodeChain(stages, source, path.name, identities=identities)
        while chunk := chain.read(CHUNK_SIZE):
            out.write(chunk)
    return out.getvalue()


def decrypt_directly(ciphertext: bytes, record: dict[str, Any], identities: list[Path]) -> bytes:
    """Our decrypter alone (no checksum stage around it) over *ciphertext*."""
    reader = AGE.decrypter(io.BytesIO(ciphertext), record, identities)
    return b"".join(iter(lambda: reader.read(CHUNK_SIZE), b""))


def assert_one_line_without(message: str, *secrets: str) -> None:
    """*message* is one line and holds none of *secrets*."""
    assert "\n" not in message
    for secret in filter(None, secrets):
        assert secret not in message


def sample(size: int) -> bytes:
    """Compressible text and noise, so zstd and age both have work to do."""
    return (b"INSERT INTO t VALUES (42, 'x');\n" * (size // 64) + os.urandom(size))[:size]


def test_the_stage_is_registered_and_importing_the_plugin_does_not_load_pyrage() -> None:
    assert isinstance(AGE, EncryptionStage)
    assert (AGE.name, AGE.kind, AGE.suffix) == ("age", "encryption", ".age")
    code = "import sys, dbkeeper_age.plugin; print('pyrage' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


@pytest.mark.parametrize("size", [0, 1, 3 * CHUNK_SIZE + 17])
@pytest.mark.parametrize("identity", ["age", "ssh-ed25519", "ssh-rsa"])
def test_round_trip_through_the_chains(tmp_path: Path, keys: Keys, size: int, identity: str) -> None:
    data, path = sample(size), tmp_path / "artifact.zst.age"
    publics = [keys.age_public, keys.ssh_public, keys.rsa_public]
    records = encode(data, path, publics)
    assert records[1] == {"name": "age", "distribution": "dbkeeper-age", "recipients": list(map(fingerprint, publics))}
    stored = json.dumps(records)
    bodies = [public.split()[1] if public.startswith("ssh-") else public.removeprefix("age1") for public in publics]
    assert not [body for body in bodies if body[:20] in stored]  # no key material, only fingerprints
    key = {"age": keys.age_key, "ssh-ed25519": keys.ssh_key, "ssh-rsa": keys.rsa_key}[identity]
    assert decode(records, path, [key]) == data


@pytest.mark.parametrize("identity", ["age", "ssh"])
def test_stock_age_and_zstd_read_our_artifact(tmp_path: Path, keys: Keys, identity: str) -> None:
    data, path = sample(2 * CHUNK_SIZE), tmp_path / "artifact.zst.age"
    encode(data, path, [keys.age_public, keys.ssh_public])
    key = keys.age_key if identity == "age" else keys.ssh_key
    command = f"set -o pipefail; age -d -i {shlex.quote(str(key))} {shlex.quote(str(path))} | zstd -dc"
    assert subprocess.run(["bash", "-c", command], capture_output=True, check=True).stdout == data


@pytest.mark.parametrize("identity", ["age", "ssh"])
def test_we_read_what_stock_zstd_and_age_write(tmp_path: Path, keys: Keys, identity: str) -> None:
    data, path = sample(2 * CHUNK_SIZE), tmp_path / "native.zst.age"
    recipients = f"-r {shlex.quote(keys.age_public)} -R {shlex.quote(str(keys.ssh_key) + '.pub')}"
    command = f"set -o pipefail; zstd -q -c | age {recipients} > {shlex.quote(str(path))}"
    subprocess.run(["bash", "-c", command], input=data, check=True)
    records = [
        {"name": "zstd", "level": 3},
        {"name": "age", "recipients": [fingerprint(keys.age_public), fingerprint(keys.ssh_public)]},
        {"name": "sha256", "digest": hashlib.sha256(path.read_bytes()).hexdigest()},
    ]
    assert decode(records, path, [keys.age_key if identity == "age" else keys.ssh_key]) == data


def test_the_wrong_identity_names_fingerprints_and_files_not_keys(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "artifact.zst.age"
    records = encode(sample(CHUNK_SIZE), path, [keys.age_public])
    with pytest.raises(KeyRequiredError) as raised:
        decode(records, path, [keys.other_key])
    message = str(raised.value)
    assert fingerprint(keys.age_public) in message and str(keys.other_key) in message
    other_public = run("age-keygen", "-y", keys.other_key).strip()
    assert fingerprint(other_public) in message
    assert_one_line_without(message, "AGE-SECRET-KEY", secret_of(keys.other_key), keys.age_public, other_public)


def test_without_an_identity_the_error_says_how_to_pass_one(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "artifact.zst.age"
    records = encode(sample(1000), path, [keys.age_public])
    for identities in ([], None):
        with pytest.raises(KeyRequiredError, match="--identity FILE") as raised:
            if identities is None:
                AGE.decoder(io.BytesIO(path.read_bytes()), records[1])
            else:
                decode(records, path, identities)
        assert fingerprint(keys.age_public) in str(raised.value)
        assert_one_line_without(str(raised.value), keys.age_public)


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("passphrase", "passphrase"),
        ("pem", "PEM"),
        ("malformed age key", "malformed age secret key"),
        ("not a key file", "line 2 is not"),
        ("empty", "holds no"),
        ("missing", "cannot be read"),
    ],
)
def test_an_unusable_identity_file_is_named_not_shown(tmp_path: Path, keys: Keys, case: str, problem: str) -> None:
    path = tmp_path / "artifact.zst.age"
    records = encode(sample(1000), path, [keys.age_public])
    broken = secret_of(keys.age_key)[:-6] + "QQQQQQ"  # a checksum that does not match
    contents = {"malformed age key": broken, "not a key file": f"# a comment\npassword={broken}\n", "empty": "# x\n"}
    identity = {"passphrase": keys.locked_ssh_key, "pem": keys.pem_key}.get(case, tmp_path / "identity.txt")
    if case in contents:
        identity.write_text(contents[case])
    with pytest.raises(KeyRequiredError, match=problem) as raised:
        decode(records, path, [keys.age_key, identity] if case == "missing" else [identity])
    message = str(raised.value)
    assert str(identity) in message
    assert_one_line_without(message, broken[16:], "password", identity.read_text()[40:80] if identity.exists() else "")


@pytest.mark.parametrize(
    "recipient",
    [
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYM",
        "age1notavalidbech32publickeyatallqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
        "ssh-ed25519 ZZZZnotbase64ofanykey!!",
        "my-hostname-and-some-private-note",
        "",
    ],
)
def test_an_unknown_recipient_is_refused_in_one_line_echoing_at_most_twelve_characters(recipient: str) -> None:
    with pytest.raises(StageOptionError, match="age1") as raised:
        AGE.encoder(io.BytesIO(), {"recipients": [recipient]})
    message = str(raised.value)
    assert_one_line_without(message, *(recipient[start : start + 13] for start in range(len(recipient) - 12)))


def test_a_secret_key_given_as_recipient_is_never_echoed(keys: Keys) -> None:
    secret = secret_of(keys.age_key)
    for options in ({"recipients": [secret]}, {"recipients": secret}, {"recipients": [keys.age_public], "key": 1}):
        with pytest.raises(StageOptionError) as raised:
            AGE.encoder(io.BytesIO(), options)
        assert_one_line_without(str(raised.value), secret[14:])
    with pytest.raises(StageOptionError, match="needs the option 'recipients'"):
        AGE.encoder(io.BytesIO(), {})


def test_a_flipped_byte_in_the_middle_fails_authentication(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "artifact.zst.age"
    records = encode(os.urandom(3 * CHUNK_SIZE), path, [keys.age_public])
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(damaged)
    with pytest.raises(IntegrityError, match="failed age authentication: it was changed or truncated") as raised:
        decode(records, path, [keys.age_key])
    assert_one_line_without(str(raised.value), secret_of(keys.age_key))


def test_a_changed_header_is_damage_not_a_missing_key(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "artifact.zst.age"
    records = encode(sample(1000), path, [keys.age_public])
    header = path.read_bytes()
    body = header.index(b"\n", header.index(b"-> X25519")) + 1  # the wrapped file key's line
    changed = header[:body] + (b"B" if header[body : body + 1] == b"A" else b"A") + header[body + 1 :]
    with pytest.raises(IntegrityError, match="failed age authentication"):
        decrypt_directly(changed, records[1], [keys.age_key])


@pytest.mark.parametrize("cut", ["middle", "last bytes", "chunk boundary"])
def test_a_truncated_artifact_is_refused(tmp_path: Path, keys: Keys, cut: str) -> None:
    path = tmp_path / "artifact.zst.age"
    records = encode(os.urandom(3 * CHUNK_SIZE), path, [keys.age_public])
    whole = path.read_bytes()
    header = whole.index(b"\n---") + 1
    header = whole.index(b"\n", header) + 1 + 16  # the MAC line, then the payload's nonce
    keep = {"middle": len(whole) // 2, "last bytes": len(whole) - 100, "chunk boundary": header + 20 * AGE_CHUNK}[cut]
    path.write_bytes(whole[:keep])
    with pytest.raises(IntegrityError):
        decode(records, path, [keys.age_key])  # the checksum or age, whichever sees it first
    with pytest.raises(IntegrityError, match="failed age authentication"):
        decrypt_directly(whole[:keep], records[1], [keys.age_key])


def test_a_failing_sink_raises_its_own_error_in_the_caller(keys: Keys) -> None:
    with open("/dev/full", "wb", buffering=0) as full:
        encoder = AGE.encoder(full, {"recipients": [keys.age_public]})
        with pytest.raises(OSError) as raised:  # at a later write, or at finish
            for _ in range(16):
                encoder.write(os.urandom(CHUNK_SIZE))
            encoder.finish()
    assert raised.value.errno == errno.ENOSPC


@pytest.mark.parametrize("how", ["closed", "dropped"])
def test_a_reader_that_stops_reading_leaves_no_thread(tmp_path: Path, keys: Keys, how: str) -> None:
    path = tmp_path / "artifact.zst.age"
    records = encode(os.urandom(16 * CHUNK_SIZE), path, [keys.age_public])
    with path.open("rb") as source:
        reader = AGE.decrypter(source, records[1], [keys.age_key])
        assert len(reader.read(CHUNK_SIZE)) == CHUNK_SIZE
        assert age_workers(), "the worker is still decrypting ahead, waiting for room"
        if how == "closed":
            reader.close()
            with pytest.raises(ValueError, match="closed"):
                reader.read(CHUNK_SIZE)
        del reader
        gc.collect()
        assert wait_for_no_workers()


def test_an_encoder_dropped_mid_stream_leaves_no_thread(keys: Keys) -> None:
    encoder = AGE.encoder(io.BytesIO(), {"recipients": [keys.age_public]})
    encoder.write(os.urandom(CHUNK_SIZE))
    assert age_workers()
    del encoder
    gc.collect()
    assert wait_for_no_workers()


def peak_rss_mib(mib: int, keys: Keys, path: Path) -> float:
    """The peak RSS (MiB) of a process encrypting then decrypting *mib* MiB through zstd, age and sha256.

    The child reports its VmHWM: ``ru_maxrss`` would also count the pages of this (large)
    pytest process that the child shared between fork and exec.
    """
    args = [sys.executable, "-c", MEMORY_SCRIPT, str(mib), keys.age_public, str(keys.age_key), str(path)]
    return int(subprocess.run(args, capture_output=True, text=True, check=True).stdout) / 1024


def test_memory_stays_flat_from_20_to_200_mib(tmp_path: Path, keys: Keys) -> None:
    small = peak_rss_mib(20, keys, tmp_path / "small.age")
    large = peak_rss_mib(200, keys, tmp_path / "large.age")
    assert large < 80, f"peak RSS {large:.0f} MiB for 200 MiB"
    assert large - small < 10, f"peak RSS grows with the size: {small:.0f} MiB for 20 MiB, {large:.0f} MiB for 200 MiB"
