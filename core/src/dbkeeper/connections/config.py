"""Configuration: ``dbkeeper.toml``, ``DATABASE_URL``, and named connections.

Example ``dbkeeper.toml``::

    backup_dir = "backups"            # relative to this file

    [backup]
    compress = "zstd"                 # zstd | gzip | none, or a plugin's codec
    format = "sqlite"                 # the driver's dump format

    [backup.zstd]                     # options for a stage, used when it is chosen
    level = 3
    threads = 2

    [connections.app]
    url = "sqlite:///app.db"
    migrations = "db/migrations"      # relative to this file; default ./migrations

    [connections.prod]
    url = "postgresql://app:${PROD_DB_PASSWORD}@db.internal/app"

    [drivers.postgresql]              # a driver's options (see `dbkeeper plugins --json`)
    jobs = 4

``[drivers.NAME]`` holds the options driver *NAME* declares, for every command they apply
to; a flag on the command line beats them. They are checked against the declarations when
a backup or restore runs (the plugins are not loaded before).

``${NAME}`` is replaced by the environment variable *NAME* when the connection is used,
so secrets stay out of the file. The file is found through ``--config``, then
``DBKEEPER_CONFIG``, then ``./dbkeeper.toml``; a connection argument is a URL or a name,
and when it is omitted ``DATABASE_URL`` is used, then the connection named ``default``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbkeeper.connections.urls import DatabaseURL, redact
from dbkeeper.errors import ConfigError
from dbkeeper.system.filesystem import local_directory

CONFIG_ENV = "DBKEEPER_CONFIG"
DATABASE_URL_ENV = "DATABASE_URL"
DEFAULT_FILE = "dbkeeper.toml"
DEFAULT_BACKUP_DIR = "backups"
DEFAULT_MIGRATIONS_DIR = "migrations"
DEFAULT_CONNECTION = "default"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false"}
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class BackupDefaults:
    """The ``[backup]`` table: defaults for ``dbkeeper backup``; sub-tables hold stage options."""

    compress: str | None = None
    format: str | None = None
    stage_options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """The loaded configuration (empty when there is no file)."""

    path: Path | None = None
    backup_dir: Path | None = None
    backup: BackupDefaults = BackupDefaults()
    connections: dict[str, str] = field(default_factory=dict)
    migration_dirs: dict[str, Path] = field(default_factory=dict)
    driver_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The ``[drivers.NAME]`` tables: driver name → option name → value, as written."""

    def connection_url(self, name: str) -> str:
        """The URL of connection *name*, with ``${VAR}`` references substituted."""
        if name not in self.connections:
            known = ", ".join(sorted(self.connections)) or "none"
            where = self.path or DEFAULT_FILE
            raise ConfigError(f"no connection named {name!r} in {where} (defined: {known})")
        template = self.connections[name]
        url = expand_env(template, f"connection {name!r}")
        variables = ", ".join(f"${{{v}}}" for v in _ENV_REFERENCE.findall(template))
        origin = f"connection {name!r} in {self.path or DEFAULT_FILE}"
        return _checked(url, f"{origin}, with {variables} from the environment" if variables else origin)

    def resolve(self, ref: str | None) -> tuple[str, str]:
        """A connection argument → ``(label, url)``: a URL, a name, or the default."""
        if ref and ("://" in ref or not _NAME.match(ref)):
            return redact(ref), ref  # a URL, or something meant as one: parsing will say what is wrong
        if ref:
            return ref, self.connection_url(ref)
        if env_url := os.environ.get(DATABASE_URL_ENV):
            return DATABASE_URL_ENV, _checked(env_url, f"the {DATABASE_URL_ENV} environment variable")
        if DEFAULT_CONNECTION in self.connections:
            return DEFAULT_CONNECTION, self.connection_url(DEFAULT_CONNECTION)
        raise ConfigError(
            f"no connection given: pass a name or URL, set {DATABASE_URL_ENV}, or define "
            f"[connections.{DEFAULT_CONNECTION}] in {DEFAULT_FILE}"
        )

    def migrations_directory(self, connection: str, override: Path | str | None) -> Path:
        """``--dir``, else the connection's ``migrations`` setting, else ``./migrations``."""
        if override:
            return Path(override)
        return self.migration_dirs.get(connection) or Path(DEFAULT_MIGRATIONS_DIR)

    def backup_directory(self, override: Path | str | None) -> Path:
        """``--dir``, else the configured ``backup_dir``, else ``./backups``."""
        if override:
            return Path(override)
        return self.backup_dir or Path(DEFAULT_BACKUP_DIR)


def _checked(url: str, origin: str) -> str:
    """*url* unchanged when it parses; otherwise InvalidURLError naming *origin*, where the URL came from."""
    DatabaseURL.parse(url, origin=origin)
    return url


def expand_env(text: str, where: str) -> str:
    """Replace ``${VAR}`` with the environment's value; a missing variable is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where} uses ${{{name}}}, which is not set in the environment")
        return os.environ[name]

    return _ENV_REFERENCE.sub(value, text)


def _typed(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
        raise ConfigError(f"{where}: {key} must be {TYPE_NAMES.get(kind, kind.__name__)}, not {value!r}")
    return value


def _known_keys(table: dict[str, Any], known: set[str], where: str) -> None:
    if unknown := sorted(set(table) - known):
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")


def load_config(path: Path | str | None = None) -> Config:
    """Load the configuration file; without one, an empty configuration."""
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else Path(DEFAULT_FILE)
    if not file.is_file():
        if explicit:
            raise ConfigError(f"configuration file {file} does not exist")
        return Config()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from None
    where = str(file)
    _known_keys(data, {"backup_dir", "backup", "connections", "drivers"}, where)
    backup_dir = _typed(data, "backup_dir", str, where)
    if backup_dir:
        local_directory(backup_dir, where=f"{where}: backup_dir")
    backup = data.get("backup", {})
    connections = data.get("connections", {})
    if not isinstance(backup, dict) or not isinstance(connections, dict):
        raise ConfigError(f"{where}: [backup] and [connections.NAME] must be tables")
    drivers = data.get("drivers", {})
    if not isinstance(drivers, dict) or not all(isinstance(table, dict) for table in drivers.values()):
        raise ConfigError(f"{where}: [drivers.NAME] must be tables of a driver's options")
    scalars = {key for key, value in backup.items() if not isinstance(value, dict)}
    _known_keys(dict.fromkeys(scalars), {"compress", "format"}, f"{where} [backup]")
    urls = {}
    migration_dirs = {}
    for name, table in connections.items():
        if not isinstance(table, dict) or not isinstance(table.get("url"), str):
            raise ConfigError(f'{where}: [connections.{name}] needs url = "scheme://..."')
        _known_keys(table, {"url", "migrations"}, f"{where} [connections.{name}]")
        urls[name] = table["url"]
        if migrations := _typed(table, "migrations", str, f"{where} [connections.{name}]"):
            migration_dirs[name] = file.parent / migrations
    return Config(
        path=file,
        backup_dir=(file.parent / backup_dir) if backup_dir else None,
        backup=BackupDefaults(
            compress=_typed(backup, "compress", str, f"{where} [backup]"),
            format=_typed(backup, "format", str, f"{where} [backup]"),
            stage_options={key: value for key, value in backup.items() if isinstance(value, dict)},
        ),
        connections=urls,
        migration_dirs=migration_dirs,
        driver_options=drivers,
    )
