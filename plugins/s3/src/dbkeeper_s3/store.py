"""The objects under one ``s3://bucket/prefix``: obstore for the data, boto3 for abandoned multipart uploads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dbkeeper.plugin import CHUNK_SIZE, PendingUpload, StorageError, StorageRequest, StoredObject
from dbkeeper_s3.clients import boto3_client, obstore_store
from dbkeeper_s3.errors import storage_error
from dbkeeper_s3.location import S3Location, parse_location
from dbkeeper_s3.reader import S3Reader
from dbkeeper_s3.settings import S3Settings, resolve_settings
from dbkeeper_s3.upload import S3Upload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from obstore import ObjectMeta


def open_s3_store(request: StorageRequest) -> S3ObjectStore:
    """The store for *request*'s URL and settings (contacts nobody)."""
    return S3ObjectStore(parse_location(request.url), resolve_settings(request.settings))


class S3ObjectStore:
    """An :class:`~dbkeeper.plugin.ObjectStore` on S3; keys are relative to the URL's prefix."""

    def __init__(self, where: S3Location, settings: S3Settings) -> None:
        self.location = where.url
        self._where = where
        self._settings = settings
        try:
            self._store = obstore_store(where, settings)
        except Exception as exc:  # a profile that does not exist, a setting obstore refuses
            raise storage_error(exc, where, settings) from exc
        self._boto3: S3Client | None = None

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every object whose key starts with *prefix*."""
        import obstore

        folder = prefix.rpartition("/")[0]  # obstore lists whole path segments: list the folder, keep the matches
        try:
            for batch in obstore.list(self._store, prefix=folder or None):
                yield from (_stored(meta) for meta in batch if meta["path"].startswith(prefix))
        except Exception as exc:
            raise self._failed(exc, prefix) from exc

    def head(self, key: str) -> StoredObject | None:
        """The object at *key*, or None."""
        import obstore

        try:
            return _stored(obstore.head(self._store, key))
        except FileNotFoundError:  # obstore's "not found"
            return None
        except Exception as exc:
            raise self._failed(exc, key) from exc

    def open(self, key: str) -> S3Reader:
        """A streaming reader of the object at *key*."""
        import obstore

        try:
            stream = obstore.get(self._store, key).stream(min_chunk_size=CHUNK_SIZE)
        except Exception as exc:
            raise self._failed(exc, key) from exc
        return S3Reader(stream, lambda exc: self._failed(exc, key))

    def upload(self, key: str) -> S3Upload:
        """A streamed (multipart) upload to *key*."""
        return S3Upload(self._store, key, self.head, self._failed, wait=3 * self._settings.timeout)

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        """Store *data* at *key* in one PUT; False when *create_only* and an object is there already."""
        import obstore
        from obstore.exceptions import AlreadyExistsError

        try:
            obstore.put(self._store, key, data, mode="create" if create_only else "overwrite", use_multipart=False)
        except AlreadyExistsError:
            return False
        except Exception as exc:
            raise self._failed(exc, key) from exc
        return True

    def delete(self, key: str) -> None:
        """Delete the object at *key* (a missing one counts as deleted)."""
        import obstore

        try:
            obstore.delete(self._store, key)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._failed(exc, key) from exc

    def pending_uploads(self, prefix: str = "") -> list[PendingUpload]:
        """Multipart uploads under *prefix* never completed nor aborted (listed with boto3: obstore cannot)."""
        pages = self._client().get_paginator("list_multipart_uploads")
        try:
            return [
                PendingUpload(self._where.relative(upload["Key"]), upload["UploadId"], upload.get("Initiated"))
                for page in pages.paginate(Bucket=self._where.bucket, Prefix=self._where.key(prefix))
                for upload in page.get("Uploads", [])
            ]
        except Exception as exc:
            raise self._failed(exc, prefix) from exc

    def abort_pending(self, upload: PendingUpload) -> None:
        """Abort *upload* and free its parts (one already gone counts as aborted)."""
        try:
            self._client().abort_multipart_upload(
                Bucket=self._where.bucket, Key=self._where.key(upload.key), UploadId=upload.upload_id
            )
        except Exception as exc:
            if _code(exc) != "NoSuchUpload":
                raise self._failed(exc, upload.key) from exc

    def _client(self) -> S3Client:
        if self._boto3 is None:
            try:
                self._boto3 = boto3_client(self._settings)
            except Exception as exc:
                raise self._failed(exc) from exc
        return self._boto3

    def _failed(self, exc: BaseException, key: str | None = None) -> StorageError:
        if isinstance(exc, StorageError):
            return exc
        return storage_error(exc, self._where, self._settings, key)


def _stored(meta: ObjectMeta) -> StoredObject:
    return StoredObject(key=meta["path"], size=meta["size"], modified=meta["last_modified"])


def _code(exc: BaseException) -> str | None:
    response: Any = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None
