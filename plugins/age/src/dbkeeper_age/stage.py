"""The ``age`` stage: encrypts artifacts to public-key recipients; the file is what ``age -e`` writes.

Every command loads this module (plugins register their stages at load); the modules that
parse keys and run the encryption are imported by the methods that use them, when a
backup is encrypted or decrypted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dbkeeper.plugin import BackupError, Encoder, Readable, StageKind, Writable, check_options


def _encryption_failed(error: BaseException) -> BaseException:
    return BackupError(f"age encryption failed ({error}); the backup was not written")


class AgeStage:
    """age encryption (age-encryption.org/v1) to X25519 and SSH public keys.

    Option ``recipients``: a list of public keys (``age1…``, ``ssh-ed25519 …``, ``ssh-rsa …``).
    The record lists their fingerprints only. Decrypting needs an identity file:
    :meth:`decrypter`; the plain :meth:`decoder` says so.
    """

    name = "age"
    kind: StageKind = "encryption"
    suffix = ".age"

    def encoder(self, sink: Writable, options: Mapping[str, Any]) -> Encoder:
        """Encrypt to every recipient; the record is ``{"recipients": [fingerprint, …]}``."""
        import pyrage  # type: ignore[import-untyped]  # pyrage ships no type hints

        from dbkeeper_age.bridge import PushBridge
        from dbkeeper_age.recipients import parse_recipients

        others = {key: value for key, value in options.items() if key != "recipients"}
        check_options(self.name, others, {"recipients": list})  # unknown options; never echoes the recipients
        recipients = parse_recipients(options.get("recipients"))
        keys = [recipient.key for recipient in recipients]
        return PushBridge(
            lambda plain, encrypted: pyrage.encrypt_io(plain, encrypted, keys),
            sink,
            _encryption_failed,
            {"recipients": [recipient.fingerprint for recipient in recipients]},
        )

    def decoder(self, source: Readable, record: Mapping[str, Any]) -> Readable:
        """Refuse: decrypting needs an identity (KeyRequiredError naming the recipients)."""
        from dbkeeper_age.decrypting import identity_needed

        raise identity_needed(record)

    def decrypter(self, source: Readable, record: Mapping[str, Any], identities: Sequence[Path]) -> Readable:
        """Decrypt *source* with the identity files *identities* (age-keygen files, OpenSSH keys)."""
        from dbkeeper_age.decrypting import open_decrypter

        return open_decrypter(source, record, identities)
