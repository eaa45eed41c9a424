"""dbkeeper's hook implementation for the age stage; importing it does not load pyrage."""

from __future__ import annotations

from collections.abc import Callable

from dbkeeper.plugin import Stage, hookimpl
from dbkeeper_age.stage import AgeStage


@hookimpl
def dbkeeper_register_stages(register: Callable[[Stage], None]) -> None:
    """Register the ``age`` encryption stage."""
    register(AgeStage())
