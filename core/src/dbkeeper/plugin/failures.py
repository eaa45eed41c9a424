"""A plugin that could not be loaded, and why: created only when one fails, not in every command."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    distribution: str
    error: str

    @classmethod
    def of(cls, name: str, distribution: str, exc: Exception) -> PluginFailure:
        """The failure of plugin *name* from *distribution*, told by the exception it raised."""
        return cls(name, distribution, f"{type(exc).__name__}: {exc}".strip())
