"""Which database a health check or an optimisation means: a connection name or URL, and its driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dbkeeper.connections.config import Config, load_config
from dbkeeper.connections.urls import DatabaseURL

if TYPE_CHECKING:
    from dbkeeper.plugin.manager import Driver, Plugins


@dataclass(frozen=True)
class Target:
    """A resolved connection: its label (the name, or the URL without its password), URL and driver."""

    label: str
    url: DatabaseURL
    driver: Driver


def resolve_target(connection: str | None, config: Config | None, plugins: Plugins | None) -> tuple[Target, Config]:
    """*connection* (a name, a URL, or None for ``DATABASE_URL`` then ``default``) with its driver.

    *config* defaults to ``dbkeeper.toml``, *plugins* to every installed plugin; the
    configuration is returned too, for its ``[monitoring]`` and ``[health]`` settings.
    """
    config = config if config is not None else load_config()
    if plugins is None:
        from dbkeeper.plugin.manager import load_plugins

        plugins = load_plugins()
    label, url_text = config.resolve(connection)
    url = DatabaseURL.parse(url_text)
    return Target(label, url, plugins.driver_for(url)), config
