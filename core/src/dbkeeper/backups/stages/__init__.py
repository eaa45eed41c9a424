"""The built-in pipeline stages, registered through the same hook a third-party stage uses."""

from __future__ import annotations

from collections.abc import Callable

from dbkeeper.backups.stages.gzip import GzipStage
from dbkeeper.backups.stages.none import NoCompressionStage
from dbkeeper.backups.stages.sha256 import Sha256Stage
from dbkeeper.backups.stages.zstd import ZstdStage
from dbkeeper.plugin.hookspecs import hookimpl
from dbkeeper.plugin.streams import Stage


@hookimpl
def dbkeeper_register_stages(register: Callable[[Stage], None]) -> None:
    """Register ``zstd`` (the default codec), ``gzip``, ``none`` and ``sha256``."""
    for stage in (ZstdStage(), GzipStage(), NoCompressionStage(), Sha256Stage()):
        register(stage)
