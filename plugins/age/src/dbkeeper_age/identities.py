"""Identity files: age-keygen key files and unencrypted OpenSSH private keys, each key with its fingerprint.

Nothing read from a file is ever repeated in a message: errors name the file (and a line
number), and a key is known by the fingerprint of its public half.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbkeeper.plugin import KeyRequiredError
from dbkeeper_age.fingerprints import fingerprint
from dbkeeper_age.recipients import SSH_TYPES
from dbkeeper_age.sshkeys import BEGIN, MalformedKey, read_ssh_key

MAX_FILE = 64 << 10
"""No identity file is larger; a bigger one is not an identity file (and is not read whole)."""
AGE_PREFIX = "AGE-SECRET-KEY-1"
FORMS = "an age key file (age-keygen -o FILE) or an OpenSSH private key without a passphrase"


@dataclass(frozen=True)
class Identity:
    """A private key (a pyrage identity), the fingerprint of its recipient, and the file it came from."""

    key: Any
    fingerprint: str
    path: Path


def _unusable(path: Path, problem: str, remedy: str = f"pass {FORMS}") -> KeyRequiredError:
    return KeyRequiredError(f"identity file {path} {problem}: {remedy}")


def _read(path: Path) -> str:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE + 1)
    except OSError as exc:
        raise _unusable(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(data) > MAX_FILE:
        raise _unusable(path, f"is larger than {MAX_FILE >> 10} KiB, so it is no identity file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _unusable(path, "is not text") from None


def _age_keys(path: Path, text: str) -> list[Identity]:
    import pyrage  # type: ignore[import-untyped]  # pyrage ships no type hints

    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(AGE_PREFIX):
            raise _unusable(path, f"line {number} is not an {AGE_PREFIX}… key")
        try:
            key = pyrage.x25519.Identity.from_str(line)
        except pyrage.IdentityError:
            raise _unusable(path, f"line {number} is a malformed age secret key") from None
        found.append(Identity(key, fingerprint(str(key.to_public())), path))
    if not found:
        raise _unusable(path, f"holds no {AGE_PREFIX}… line")
    return found


def _ssh_key(path: Path, text: str) -> Identity:
    import pyrage

    try:
        facts = read_ssh_key(text)
    except MalformedKey:
        raise _unusable(path, "is a malformed OpenSSH private key") from None
    if facts.encrypted:
        raise _unusable(path, "is protected by a passphrase, which dbkeeper cannot ask for")
    if facts.key_type not in SSH_TYPES:
        raise _unusable(path, f"holds a {facts.key_type} key; age reads only {' and '.join(SSH_TYPES)} keys")
    try:
        key = pyrage.ssh.Identity.from_buffer(text.encode())
    except pyrage.IdentityError:
        raise _unusable(path, "is a malformed OpenSSH private key") from None
    return Identity(key, fingerprint(facts.public_line), path)


def load_identities(paths: Sequence[Path]) -> list[Identity]:
    """Every key of every file in *paths*; KeyRequiredError naming the first file that cannot be used."""
    identities: list[Identity] = []
    for path in paths:
        text = _read(path)
        if BEGIN in text:
            identities.append(_ssh_key(path, text))
        elif "-----BEGIN" in text:
            raise _unusable(path, "is a PEM key", "rewrite it in OpenSSH format with 'ssh-keygen -p -f FILE'")
        else:
            identities.extend(_age_keys(path, text))
    return identities
