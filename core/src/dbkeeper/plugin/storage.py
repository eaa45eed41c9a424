"""Storage backends: where backups live when they are not in a local directory.

A storage plugin registers a :class:`StorageInfo` through ``dbkeeper_register_storages``
for one or more URL schemes (``s3``). When a command is given ``--dir s3://bucket/prefix``
(or ``backup_dir``, or a ``[storage.NAME]`` section names such a URL), the core calls the
backend's ``open`` with a :class:`StorageRequest` and gets an :class:`ObjectStore`: a flat
namespace of objects under that prefix, each written in one streamed upload and never
modified afterwards.

The backup protocol itself (ids, manifest last, create-only manifests, what is running or
incomplete, what prune removes) is the core's, in
:mod:`dbkeeper.backups.objects`; a backend only moves bytes. The local directory is the
built-in storage and is not an object store: it keeps its own, stronger protocol
(``flock`` locks, ``fsync``, ``O_NOFOLLOW``).

Every method raises :class:`dbkeeper.errors.StorageError` (or a subclass) with one line
that says what to do — never a client library's traceback — and never puts credentials
in a message. Waits are bounded: a backend sets its own connect and request timeouts and a
bounded number of retries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dbkeeper.system.lazy import LazyNames

if TYPE_CHECKING:
    from dbkeeper.plugin.object_store import ObjectReader as ObjectReader
    from dbkeeper.plugin.object_store import ObjectStore as ObjectStore
    from dbkeeper.plugin.object_store import PendingUpload as PendingUpload
    from dbkeeper.plugin.object_store import StoredObject as StoredObject
    from dbkeeper.plugin.object_store import Upload as Upload

OBJECT_STORE_TYPES = ("ObjectReader", "ObjectStore", "PendingUpload", "StoredObject", "Upload")
"""The names of :mod:`dbkeeper.plugin.object_store`: only commands that use object storage create them."""

_LAZY = LazyNames(__name__, {"dbkeeper.plugin.object_store": OBJECT_STORE_TYPES})


def __getattr__(name: str) -> object:
    """An object store type (:mod:`dbkeeper.plugin.object_store`), imported on first use."""
    return _LAZY.attribute(name)


def __dir__() -> list[str]:
    """Every name of the module, those imported on first use included."""
    return _LAZY.names()


@dataclass(frozen=True)
class StorageRequest:
    """What opening a storage needs: its URL and the settings of its ``[storage.NAME]`` section.

    ``url`` never holds credentials (the core refuses a URL with a password). ``settings``
    are the section's other keys with ``${ENV}`` already substituted; they may hold secrets,
    which a backend must never put in a message, a log or a child process's arguments.
    Without a section, ``settings`` is empty and the backend uses the service's standard
    places (for S3: the ``AWS_*`` environment variables, profiles, instance roles).
    """

    url: str
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StorageInfo:
    """A storage backend a plugin registers: its name, URL schemes and how to open one.

    ``settings`` names the keys a ``[storage.NAME]`` section may hold for it (anything else
    there is a configuration error naming these). ``open`` must not contact the service:
    the first operation does, within the backend's timeouts.
    """

    name: str
    schemes: tuple[str, ...]
    open: Callable[[StorageRequest], ObjectStore]
    settings: tuple[str, ...] = ()
    description: str = ""
