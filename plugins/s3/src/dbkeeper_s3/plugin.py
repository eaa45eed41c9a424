"""The s3 storage's hook implementation: backups in S3-compatible object storage, ``s3://bucket/prefix``.

Every dbkeeper command loads this module, so importing it is cheap: the client libraries
(obstore, and boto3 for listing abandoned multipart uploads), the settings' class and the
object store's types load only when a store is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dbkeeper.plugin import StorageInfo, hookimpl

if TYPE_CHECKING:
    from dbkeeper.plugin import ObjectStore, StorageRequest

SETTING_NAMES = ("endpoint", "region", "access_key_id", "secret_access_key", "session_token", "profile", "timeout")
"""The keys a ``[storage.NAME]`` section for an s3:// URL may hold (:mod:`dbkeeper_s3.settings` reads them)."""


def open_store(request: StorageRequest) -> ObjectStore:
    """The objects under ``request.url``; nothing is sent to the service until the first operation."""
    from dbkeeper_s3.store import open_s3_store

    return open_s3_store(request)


STORAGE = StorageInfo(
    name="s3",
    schemes=("s3",),
    open=open_store,
    settings=SETTING_NAMES,
    description="S3-compatible object storage (AWS, MinIO, Ceph …): streamed multipart uploads, create-only manifests",
)


@hookimpl
def dbkeeper_register_storages(register: Callable[[StorageInfo], None]) -> None:
    """Register the ``s3`` storage."""
    register(STORAGE)
