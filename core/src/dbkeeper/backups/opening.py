"""Opening a storage from what the user typed: a local path, ``file://``, or a plugin's URL (``s3://``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dbkeeper.backups.repository import Repository
from dbkeeper.backups.storage import BackupStorage
from dbkeeper.connections.config import storage_scheme
from dbkeeper.errors import ConfigError
from dbkeeper.plugin.manager import Plugins
from dbkeeper.plugin.storage import StorageRequest


def open_storage(location: Path | str, plugins: Plugins, settings: Mapping[str, str] | None = None) -> BackupStorage:
    """The storage at *location*: a local directory (a path or ``file://``), or a plugin's object store.

    *settings* are those of the ``[storage.NAME]`` section that applies (secrets included,
    never shown). An unknown scheme is an error naming the distribution to install.
    """
    text = str(location)
    scheme = storage_scheme(text)
    if scheme is None:
        return Repository(text)
    if scheme == "file":
        return Repository(text.removeprefix("file://") or "/")
    if "@" in text.split("://", 1)[1].split("/", 1)[0]:
        raise ConfigError(
            f"{scheme}:// storage URLs take no user or password (they would show in logs and process lists): "
            "give credentials through the environment or a [storage.NAME] section in dbkeeper.toml"
        )
    backend = plugins.storage_for(scheme).info
    unknown = sorted(set(settings or {}) - set(backend.settings))
    if unknown:
        raise ConfigError(
            f"the {backend.name} storage has no setting {unknown[0]!r} (its settings: {', '.join(backend.settings)})"
        )
    from dbkeeper.backups.objects import ObjectRepository  # object storage only: not imported by local backups

    return ObjectRepository(backend.open(StorageRequest(text, dict(settings or {}))))
