"""Decrypting an artifact with identity files, and the one-line errors for each way it can fail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from dbkeeper.plugin import IntegrityError, KeyRequiredError, Readable
from dbkeeper_age.bridge import PullBridge
from dbkeeper_age.identities import Identity, load_identities

TAMPERED = "the encrypted artifact failed age authentication: it was changed or truncated — use another backup"


def recorded_recipients(record: Mapping[str, Any]) -> list[str]:
    """The recipient fingerprints a stage record lists (none if the record is damaged)."""
    recipients = record.get("recipients")
    if not isinstance(recipients, list):
        return []
    return [value for value in recipients if isinstance(value, str)]


def _listed(fingerprints: Sequence[str]) -> str:
    return ", ".join(fingerprints) or "unknown recipients"


def identity_needed(record: Mapping[str, Any]) -> KeyRequiredError:
    """The error for reading an encrypted artifact without an identity."""
    return KeyRequiredError(
        f"this backup is encrypted with age for {_listed(recorded_recipients(record))}: "
        "pass --identity FILE (or set DBKEEPER_IDENTITY_FILE)"
    )


def _translate(recipients: list[str], identities: list[Identity], error: BaseException) -> BaseException:
    """Map an error of pyrage to dbkeeper's: no matching key, or a ciphertext that does not authenticate.

    pyrage says "No matching keys found" also when the header's key stanzas were changed;
    when one of the identities is a recorded recipient, that is what happened.
    """
    if "no matching keys" not in str(error).lower():
        return IntegrityError(TAMPERED)
    if {identity.fingerprint for identity in identities} & set(recipients):
        return IntegrityError(TAMPERED)
    given = ", ".join(f"{identity.fingerprint} ({identity.path})" for identity in identities)
    return KeyRequiredError(
        f"no identity given can decrypt this backup: it is encrypted for {_listed(recipients)}, "
        f"the identities are {given}; pass the identity file of one of its recipients"
    )


def open_decrypter(source: Readable, record: Mapping[str, Any], paths: Sequence[Path]) -> Readable:
    """A reader of the plaintext of *source*; KeyRequiredError now if no identity in *paths* opens it."""
    import pyrage  # type: ignore[import-untyped]  # pyrage ships no type hints

    if not paths:
        raise identity_needed(record)
    identities = load_identities(paths)
    keys = [identity.key for identity in identities]
    reader = PullBridge(
        lambda encrypted, plain: pyrage.decrypt_io(encrypted, plain, keys),
        source,
        partial(_translate, recorded_recipients(record), identities),
    )
    reader.prime(KeyRequiredError)
    return reader
