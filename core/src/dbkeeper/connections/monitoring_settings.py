"""The ``[monitoring]`` table of ``dbkeeper.toml``: what a scrape collects and how it bounds itself.

Only the monitoring commands and a ``[monitoring]`` table being checked need it:
``Config.monitoring`` imports this module on first use, so a backup does not create it.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LISTEN_PORT = 9861
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_LISTEN_PORT}"
"""Where ``dbkeeper metrics --serve`` listens unless ``[monitoring] listen`` says otherwise."""


@dataclass(frozen=True)
class MonitoringSettings:
    """The ``[monitoring]`` table: what a scrape collects and how it bounds itself.

    ``deadline``: seconds a whole scrape of one connection may take; ``statement_timeout``
    and ``lock_timeout``: seconds, set on the scrape's session; ``listen``: ``HOST:PORT``
    of ``dbkeeper metrics --serve``. The others are :class:`~dbkeeper.plugin.MetricsOptions`.
    """

    table_limit: int = 1000
    statements: bool = False
    statements_limit: int = 20
    query_text: bool = False
    deadline: float = 10.0
    statement_timeout: float = 5.0
    lock_timeout: float = 1.0
    listen: str = DEFAULT_LISTEN
