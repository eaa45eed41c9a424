"""Fingerprints: short, stable names for public keys that the manifest can hold instead of the keys."""

from __future__ import annotations

import hashlib


def fingerprint(recipient: str) -> str:
    """``sha256:`` and the first 16 hex digits of the SHA256 of a normalised recipient string.

    The same recipient gives the same fingerprint whether it came from ``--recipient`` or
    was derived from an identity file, so a restore can say which identity is missing.
    """
    return "sha256:" + hashlib.sha256(recipient.encode()).hexdigest()[:16]
