"""The ``recipients`` option: public keys as users write them, checked, normalised and fingerprinted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dbkeeper.plugin import StageOptionError
from dbkeeper_age.fingerprints import fingerprint

ACCEPTED = "age1… (from age-keygen), 'ssh-ed25519 AAAA…' or 'ssh-rsa AAAA…' (a .pub line)"
SSH_TYPES = ("ssh-ed25519", "ssh-rsa")
_SHOWN = 12
"""Characters of a rejected value repeated in an error: enough to recognise it, never a key's body."""


@dataclass(frozen=True)
class Recipient:
    """A parsed public key (a pyrage recipient) and its fingerprint."""

    key: Any
    fingerprint: str


def _preview(value: str) -> str:
    return repr(value[:_SHOWN] + ("…" if len(value) > _SHOWN else ""))


def _rejected(value: str) -> StageOptionError:
    if value.startswith("AGE-SECRET-KEY-"):
        return StageOptionError("an age recipient must be a public key, not a secret key: use 'age-keygen -y KEYFILE'")
    return StageOptionError(f"age recipient {_preview(value)} is not a public key of the forms {ACCEPTED}")


def normalise(value: str) -> str:
    """The form a recipient is fingerprinted in: ``age1…``, or an SSH key's type and body without its comment."""
    parts = value.split()
    if parts and parts[0] in SSH_TYPES:
        return " ".join(parts[:2])
    return value.strip()


def parse_recipient(value: str) -> Recipient:
    """Parse one recipient, or raise StageOptionError naming the accepted forms."""
    import pyrage  # type: ignore[import-untyped]  # pyrage ships no type hints

    normal = normalise(value)
    if normal.startswith("age1"):
        parser = pyrage.x25519.Recipient.from_str
    elif normal.split(" ")[0] in SSH_TYPES:
        parser = pyrage.ssh.Recipient.from_str
    else:
        raise _rejected(normal)
    try:
        key = parser(normal)
    except pyrage.RecipientError:
        raise _rejected(normal) from None
    return Recipient(key, fingerprint(normal))


def parse_recipients(values: object) -> list[Recipient]:
    """Parse the ``recipients`` option: a non-empty list of strings; duplicates count once."""
    if not isinstance(values, list) or not values:
        raise StageOptionError(f"stage 'age' needs the option 'recipients': a list of one or more of {ACCEPTED}")
    parsed: dict[str, Recipient] = {}
    for value in values:
        if not isinstance(value, str):
            raise StageOptionError(f"an age recipient must be a string of the forms {ACCEPTED}")
        recipient = parse_recipient(value)
        parsed.setdefault(recipient.fingerprint, recipient)
    return list(parsed.values())
