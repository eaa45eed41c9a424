"""The ``none`` codec: stores the raw bytes as they are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbkeeper.backups.stages.passthrough import PassThroughEncoder
from dbkeeper.plugin.streams import Encoder, Readable, StageKind, Writable, check_options


class NoCompressionStage:
    """Stores artifacts uncompressed (``--compress none``); the artifact is the raw dump."""

    name = "none"
    kind: StageKind = "compression"
    suffix = ""

    def encoder(self, sink: Writable, options: Mapping[str, Any]) -> Encoder:
        """Forward bytes unchanged."""
        check_options(self.name, options, {})
        return PassThroughEncoder(sink)

    def decoder(self, source: Readable, record: Mapping[str, Any]) -> Readable:
        """Return the stored bytes unchanged."""
        return source
