"""A base for stages whose encoder forwards bytes unchanged while observing them."""

from __future__ import annotations

from typing import Any

from dbkeeper.plugin.streams import Writable


class PassThroughEncoder:
    """Forwards every write to the sink; subclasses observe ``_see`` and report in ``finish``."""

    def __init__(self, sink: Writable) -> None:
        self._sink = sink

    def _see(self, data: bytes) -> None:
        """Observe *data* on its way through (nothing by default)."""

    def write(self, data: bytes, /) -> int:
        """Observe and forward *data*."""
        self._see(data)
        self._sink.write(data)
        return len(data)

    def finish(self) -> dict[str, Any]:
        """Nothing to flush; report nothing."""
        return {}
