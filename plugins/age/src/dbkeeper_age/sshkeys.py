"""The public half of an OpenSSH private key file, read without its passphrase.

An ``-----BEGIN OPENSSH PRIVATE KEY-----`` file stores the public key and the cipher name
in clear before the (possibly encrypted) private part, so the recipient an identity
stands for, and whether it needs a passphrase, are known without decrypting anything.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
END = "-----END OPENSSH PRIVATE KEY-----"
_MAGIC = b"openssh-key-v1\0"


class MalformedKey(ValueError):
    """The text is not a well-formed OpenSSH private key."""


@dataclass(frozen=True)
class SshKeyFacts:
    """What an OpenSSH private key file shows in clear: its public key line and whether it is encrypted."""

    key_type: str
    public_line: str
    encrypted: bool


def _take_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    """The SSH wire-format string at *offset* and the offset after it."""
    if offset + 4 > len(blob):
        raise MalformedKey("truncated")
    (length,) = struct.unpack_from(">I", blob, offset)
    end = offset + 4 + length
    if end > len(blob):
        raise MalformedKey("truncated")
    return blob[offset + 4 : end], end


def read_ssh_key(text: str) -> SshKeyFacts:
    """Parse the clear header of an OpenSSH private key (the first key of the file)."""
    start, stop = text.find(BEGIN), text.find(END)
    if start < 0 or stop < start:
        raise MalformedKey("no OpenSSH private key block")
    try:
        blob = base64.b64decode("".join(text[start + len(BEGIN) : stop].split()), validate=True)
    except binascii.Error as exc:
        raise MalformedKey("bad base64") from exc
    if not blob.startswith(_MAGIC):
        raise MalformedKey("not openssh-key-v1")
    cipher, offset = _take_string(blob, len(_MAGIC))
    _kdf, offset = _take_string(blob, offset)
    _kdf_options, offset = _take_string(blob, offset)
    offset += 4  # the number of keys; the first public key follows
    public, _ = _take_string(blob, offset)
    key_type, _ = _take_string(public, 0)
    try:
        name = key_type.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedKey("bad key type") from exc
    return SshKeyFacts(name, f"{name} {base64.b64encode(public).decode('ascii')}", cipher != b"none")
