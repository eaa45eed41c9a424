"""Configuration: ``dbkeeper.toml``, ``DATABASE_URL``, and named connections.

Example ``dbkeeper.toml``::

    backup_dir = "backups"            # relative to this file, or a storage URL (s3://bucket/prefix)

    [backup]
    compress = "zstd"                 # zstd | gzip | none, or a plugin's codec
    format = "sqlite"                 # the driver's dump format
    recipients = ["age1…"]            # encrypt every backup for these age public keys

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

    [storage.offsite]                 # settings for every storage URL under url (see docs/storage.md)
    url = "s3://backups/prod"
    endpoint = "https://s3.eu-central-1.amazonaws.com"
    secret_access_key = "${OFFSITE_SECRET}"

    [monitoring]                      # dbkeeper metrics (see docs/monitoring.md)
    deadline = 10                     # seconds a whole scrape of one connection may take
    listen = "127.0.0.1:9861"         # where `dbkeeper metrics --serve` binds

    [health]                          # dbkeeper health's thresholds
    long_query_seconds = 30

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbkeeper.connections.urls import DatabaseURL, redact
from dbkeeper.errors import ConfigError

if TYPE_CHECKING:
    from dbkeeper.connections.monitoring_settings import MonitoringSettings
    from dbkeeper.plugin.monitoring import HealthThresholds

CONFIG_ENV = "DBKEEPER_CONFIG"
DATABASE_URL_ENV = "DATABASE_URL"
DEFAULT_FILE = "dbkeeper.toml"
DEFAULT_BACKUP_DIR = "backups"
DEFAULT_MIGRATIONS_DIR = "migrations"
DEFAULT_CONNECTION = "default"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", float: "a number"}
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_STORAGE_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class BackupDefaults:
    """The ``[backup]`` table: defaults for ``dbkeeper backup``; sub-tables hold stage options."""

    compress: str | None = None
    format: str | None = None
    recipients: tuple[str, ...] = ()
    stage_options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """The loaded configuration (empty when there is no file)."""

    path: Path | None = None
    backup_dir: Path | str | None = None
    """A local directory (relative paths made relative to the file), or a storage URL."""
    backup: BackupDefaults = BackupDefaults()
    connections: dict[str, str] = field(default_factory=dict)
    migration_dirs: dict[str, Path] = field(default_factory=dict)
    driver_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The ``[drivers.NAME]`` tables: driver name → option name → value, as written."""
    monitoring_values: dict[str, Any] = field(default_factory=dict)
    """The ``[monitoring]`` table as checked: setting → value (the others keep their defaults)."""
    health: dict[str, float] = field(default_factory=dict)
    """The ``[health]`` table as checked: threshold name → value (the others keep their defaults)."""
    storages: dict[str, dict[str, str]] = field(default_factory=dict)
    """The ``[storage.NAME]`` tables: name → setting → value as written (``${VAR}`` not yet substituted)."""

    @property
    def monitoring(self) -> MonitoringSettings:
        """The ``[monitoring]`` settings: the defaults, overridden by the file's table."""
        from dbkeeper.connections.monitoring_settings import MonitoringSettings

        return MonitoringSettings(**self.monitoring_values)

    @property
    def health_thresholds(self) -> HealthThresholds:
        """The health checks' thresholds: the defaults, overridden by ``[health]``."""
        from dbkeeper.plugin.monitoring import HealthThresholds

        return HealthThresholds(**self.health)  # type: ignore[arg-type]  # each value's type is checked at load

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

    def backup_directory(self, override: Path | str | None) -> Path | str:
        """``--dir``, else the configured ``backup_dir``, else ``./backups``: a path, or a storage URL."""
        if override:
            return override if _STORAGE_URL.match(str(override)) else Path(override)
        return self.backup_dir or Path(DEFAULT_BACKUP_DIR)

    def storage_settings(self, location: Path | str) -> dict[str, str]:
        """The settings of the ``[storage.NAME]`` section whose ``url`` *location* is under, ``${VAR}`` substituted.

        The longest matching ``url`` wins; a location no section covers gets none (the
        storage then uses its standard places, such as the ``AWS_*`` variables).
        """
        text = str(location).rstrip("/")
        matches = [
            (name, table)
            for name, table in self.storages.items()
            if text == table["url"].rstrip("/") or text.startswith(table["url"].rstrip("/") + "/")
        ]
        if not matches:
            return {}
        name, table = max(matches, key=lambda match: len(match[1]["url"]))
        where = f"[storage.{name}] in {self.path or DEFAULT_FILE}"
        return {key: expand_env(value, f"{where}: {key}") for key, value in table.items() if key != "url"}


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


def _number(table: dict[str, Any], key: str, where: str, *, integer: bool = False) -> float | None:
    """``table[key]`` when it is a non-negative number (an integer when *integer*), else ConfigError."""
    value = table.get(key)
    if value is None:
        return None
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
        kind = "a non-negative integer" if integer else "a non-negative number"
        raise ConfigError(f"{where}: {key} must be {kind}, not {value!r}")
    return value


def _seconds(table: dict[str, Any], key: str, where: str) -> float | None:
    """``table[key]`` as seconds, more than 0, else ConfigError; None when absent."""
    value = _number(table, key, where)
    if value == 0:
        raise ConfigError(f"{where}: {key} must be more than 0 seconds")
    return None if value is None else float(value)


def listen_address(value: str, where: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as ``(host, port)``; ConfigError naming *where* otherwise."""
    from dbkeeper.connections.monitoring_settings import DEFAULT_LISTEN

    host, _, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f'{where}: listen must be "HOST:PORT" (e.g. "{DEFAULT_LISTEN}"), not {value!r}')
    return host, int(port)


def _monitoring(table: Any, where: str) -> dict[str, Any]:
    """The ``[monitoring]`` table's settings, each checked; unknown keys are errors."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [monitoring] must be a table")
    if not table:
        return {}
    from dbkeeper.connections.monitoring_settings import MonitoringSettings

    _known_keys(table, set(vars(MonitoringSettings())), where)
    integers = {key: _number(table, key, where, integer=True) for key in ("table_limit", "statements_limit")}
    seconds = {key: _seconds(table, key, where) for key in ("deadline", "statement_timeout", "lock_timeout")}
    flags = {key: _typed(table, key, bool, where) for key in ("statements", "query_text")}
    listen = _typed(table, "listen", str, where)
    if listen is not None:
        listen_address(listen, where)
    given: dict[str, Any] = {**integers, **seconds, **flags, "listen": listen}
    return {key: value for key, value in given.items() if value is not None}


def _health(table: Any, where: str) -> dict[str, float]:
    """The ``[health]`` table: known threshold names, numbers of the default's kind, ratios from 0 to 1."""
    from dbkeeper.plugin.monitoring import HealthThresholds

    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [health] must be a table")
    defaults = vars(HealthThresholds())
    _known_keys(table, set(defaults), where)
    checked: dict[str, float] = {}
    for key in table:
        integer = isinstance(defaults[key], int)
        value = _number(table, key, where, integer=integer)
        if value is None:
            continue
        if "ratio" in key and value > 1:
            raise ConfigError(f"{where}: {key} is a ratio from 0 to 1, not {value!r}")
        checked[key] = value if integer else float(value)
    return checked


def load_config(path: Path | str | None = None) -> Config:
    """Load the configuration file; without one, an empty configuration."""
    explicit = path or os.environ.get(CONFIG_ENV)
    file = Path(explicit) if explicit else Path(DEFAULT_FILE)
    if not file.is_file():
        if explicit:
            raise ConfigError(f"configuration file {file} does not exist")
        return Config()
    import tomllib  # only when there is a configuration file

    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from None
    where = str(file)
    _known_keys(data, {"backup_dir", "backup", "connections", "drivers", "monitoring", "health", "storage"}, where)
    backup_dir = _typed(data, "backup_dir", str, where)
    backup = data.get("backup", {})
    connections = data.get("connections", {})
    if not isinstance(backup, dict) or not isinstance(connections, dict):
        raise ConfigError(f"{where}: [backup] and [connections.NAME] must be tables")
    drivers = data.get("drivers", {})
    if not isinstance(drivers, dict) or not all(isinstance(table, dict) for table in drivers.values()):
        raise ConfigError(f"{where}: [drivers.NAME] must be tables of a driver's options")
    scalars = {key for key, value in backup.items() if not isinstance(value, dict)}
    _known_keys(dict.fromkeys(scalars), {"compress", "format", "recipients"}, f"{where} [backup]")
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
        backup_dir=_backup_dir(file, backup_dir),
        backup=BackupDefaults(
            compress=_typed(backup, "compress", str, f"{where} [backup]"),
            format=_typed(backup, "format", str, f"{where} [backup]"),
            recipients=_strings(backup, "recipients", f"{where} [backup]"),
            stage_options={key: value for key, value in backup.items() if isinstance(value, dict)},
        ),
        connections=urls,
        migration_dirs=migration_dirs,
        driver_options=drivers,
        monitoring_values=_monitoring(data.get("monitoring", {}), f"{where} [monitoring]"),
        health=_health(data.get("health", {}), f"{where} [health]"),
        storages=_storages(data.get("storage", {}), where),
    )


def storage_scheme(location: Path | str) -> str | None:
    """The URL scheme of a backup location (``s3``), or None when it is a local path."""
    match = _STORAGE_URL.match(str(location))
    return match.group(1).lower() if match else None


def _backup_dir(file: Path, value: str | None) -> Path | str | None:
    """``backup_dir``: a storage URL as written, a local path relative to the file."""
    if not value:
        return None
    return value if _STORAGE_URL.match(value) else file.parent / value


def _strings(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _storages(tables: Any, where: str) -> dict[str, dict[str, str]]:
    """The ``[storage.NAME]`` sections: each a ``url`` and string settings (checked against the backend on use)."""
    if not isinstance(tables, dict) or not all(isinstance(table, dict) for table in tables.values()):
        raise ConfigError(f"{where}: [storage.NAME] must be tables of a storage's settings")
    for name, table in tables.items():
        url = table.get("url")
        if not isinstance(url, str) or not _STORAGE_URL.match(url):
            raise ConfigError(f'{where}: [storage.{name}] needs url = "scheme://bucket/prefix"')
        if bad := [key for key, value in table.items() if not isinstance(value, str)]:
            raise ConfigError(f"{where}: [storage.{name}] {bad[0]} must be a string")
    return tables
