"""Finding, loading and calling plugins: the typed facade over pluggy.

:func:`load_plugins` builds a :class:`Plugins` object: the built-in stages plus every
plugin advertised in the ``dbkeeper`` entry-point group, except those named in
``DBKEEPER_DISABLE_PLUGINS``. A plugin that fails to import or does not match the hook
contract is recorded as a :class:`PluginFailure` and the others still work. Two plugins
claiming the same driver, URL scheme or stage raise :class:`PluginConflictError`.

Library code calls typed methods on :class:`Driver` objects; nothing outside this module
touches ``pm.hook``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import pluggy

from dbkeeper.connections.urls import DatabaseURL
from dbkeeper.errors import (
    ConfigError,
    DriverNotFoundError,
    PluginConflictError,
    PluginError,
    StageNotFoundError,
    UnsupportedOperationError,
)
from dbkeeper.plugin import hookspecs
from dbkeeper.plugin.contract import DriverInfo, PrepareRequest
from dbkeeper.plugin.discovery import distribution_version, entry_points
from dbkeeper.plugin.options import DriverOptions, Operation, Option
from dbkeeper.system.lazy import LazyNames

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dbkeeper.plugin.contract import DumpRequest, DumpResult, MigrationDialect
    from dbkeeper.plugin.drills import DrillDialect, DrillRequest
    from dbkeeper.plugin.failures import PluginFailure as PluginFailure
    from dbkeeper.plugin.monitoring import (
        CollectorResult,
        HealthCheck,
        HealthRequest,
        Maintenance,
        MaintenanceRequest,
        MetricsRequest,
        Session,
        SessionsRequest,
    )
    from dbkeeper.plugin.restore import BackupContents, InspectRequest, RestoreRequest, RestoreResult
    from dbkeeper.plugin.schema import SchemaDialect
    from dbkeeper.plugin.storage import StorageInfo
    from dbkeeper.plugin.streams import Stage

DISABLE_ENV = "DBKEEPER_DISABLE_PLUGINS"
"""Comma-separated entry-point or distribution names that are not loaded."""

BUILTIN = "dbkeeper"

INSTALL_HINTS = {
    "sqlite": "dbkeeper-sqlite",
    "postgresql": "dbkeeper-postgresql",
    "postgres": "dbkeeper-postgresql",
    "mysql": "dbkeeper-mysql",
    "mariadb": "dbkeeper-mysql",
    "s3": "dbkeeper-s3",
    "age": "dbkeeper-age",
}
"""First-party distributions by URL scheme (or stage name), for the install hint of a missing one."""

LOCAL_STORAGE_SCHEMES = ("file",)
"""Schemes of the built-in local directory storage (a plain path needs none)."""

_LAZY = LazyNames(__name__, {"dbkeeper.plugin.failures": ("PluginFailure",)})


def __getattr__(name: str) -> object:
    """``PluginFailure`` (:mod:`dbkeeper.plugin.failures`), imported on first use: most commands have none."""
    return _LAZY.attribute(name)


def __dir__() -> list[str]:
    """Every name of the module, those imported on first use included."""
    return _LAZY.names()


@dataclass(frozen=True)
class PluginRecord:
    """A loaded plugin: its entry-point name, distribution and version."""

    name: str
    distribution: str
    version: str
    plugin: object = field(repr=False, compare=False)


class RegisteredStage(NamedTuple):
    """A pipeline stage and the plugin that registered it."""

    stage: Stage
    provider: PluginRecord


class RegisteredStorage(NamedTuple):
    """A storage backend and the plugin that registered it."""

    info: StorageInfo
    provider: PluginRecord


DRIVER_OPERATIONS = (
    "connect",
    "dump",
    "restore",
    "inspect_backup",
    "migrate",
    "collect_metrics",
    "check_health",
    "sessions",
    "plan_maintenance",
    "schema_dialect",
    "drill",
)
"""The driver hooks, without their ``dbkeeper_`` prefix: answered only by the selected driver."""


def _hook_name(operation: str) -> str:
    return f"dbkeeper_{operation}"


class Driver:
    """One registered driver; its methods call the owning plugin's hooks."""

    def __init__(
        self, info: DriverInfo, provider: PluginRecord, pm: pluggy.PluginManager, others: list[object]
    ) -> None:
        self.info = info
        self.provider = provider
        self._pm = pm
        self._others = others

    @property
    def name(self) -> str:
        """The driver's name (``sqlite``)."""
        return self.info.name

    def options(self, operation: Operation) -> tuple[Option, ...]:
        """The options the driver declares for *operation* (``backup``, ``restore``)."""
        return tuple(opt for opt in self.info.options.declared() if operation in opt.operations)

    def options_for(self, operation: Operation, given: Mapping[str, object]) -> DriverOptions:
        """The driver's options object for *operation*: *given* values, environment fallbacks, defaults.

        An option the driver does not declare for *operation* is a ConfigError naming those it does.
        """
        declared = {opt.name: opt for opt in self.options(operation)}
        if unknown := sorted(set(given) - set(declared)):
            offered = ", ".join(declared) or "none"
            raise ConfigError(
                f"the {self.name} driver does not support the {unknown[0]!r} option for {operation}s "
                f"(options it supports: {offered})"
            )
        fallbacks = {
            name: value
            for name, opt in declared.items()
            if name not in given and (value := opt.from_environment()) is not None
        }
        return self.info.options.build(operation, {**fallbacks, **given}, f"the {self.name} driver's options")

    def implements(self, operation: str) -> bool:
        """Whether the driver's plugin answers *operation* (``dump``, ``inspect_backup``, ``migrate`` …)."""
        hook = getattr(self._pm.hook, _hook_name(operation))
        return any(
            impl.plugin is self.provider.plugin and not (impl.wrapper or impl.hookwrapper)
            for impl in hook.get_hookimpls()
        )

    def _call(self, operation: str, request: object) -> Any:
        caller = self._pm.subset_hook_caller(_hook_name(operation), remove_plugins=self._others)
        result = caller(request=request)
        if result is None:
            raise UnsupportedOperationError(
                f"the {self.name} driver ({self.provider.distribution} {self.provider.version}) "
                f"does not support {operation.replace('_', ' ')}; upgrade it or use another driver"
            )
        return result

    def connect(self, url: DatabaseURL, *, create: bool = False) -> Engine:
        """Return a SQLAlchemy engine for *url* (no connection is opened yet)."""
        from dbkeeper.plugin.engines import ConnectRequest  # a backup never connects through SQLAlchemy

        engine: Engine = self._call("connect", ConnectRequest(driver=self.name, url=url, create=create))
        return engine

    def backup_format(self, chosen: str | None) -> str:
        """The dump format *chosen* (the driver's first when None); a ConfigError for one it does not write."""
        formats = self.info.formats
        chosen = chosen or formats[0]
        if chosen not in formats:
            raise ConfigError(f"the {self.name} driver writes formats {', '.join(formats)}, not {chosen!r}")
        return chosen

    def prepare_backup(self, url: DatabaseURL, format: str, options: DriverOptions) -> AbstractContextManager[object]:
        """The driver's head start on a backup (``DriverInfo.prepare_backup``); a context yielding None without one."""
        if self.info.prepare_backup is None:
            return contextlib.nullcontext()
        return self.info.prepare_backup(PrepareRequest(self.name, url, format, options))

    def dump(self, request: DumpRequest[DriverOptions]) -> DumpResult:
        """Write a snapshot into the request's artifacts."""
        result: DumpResult = self._call("dump", request)
        return result

    def restore(self, request: RestoreRequest[DriverOptions]) -> RestoreResult:
        """Restore a backup into the request's URL."""
        result: RestoreResult = self._call("restore", request)
        return result

    def inspect_backup(self, request: InspectRequest) -> BackupContents:
        """Read a whole backup and report what is inside."""
        contents: BackupContents = self._call("inspect_backup", request)
        return contents

    def migration_dialect(self, url: DatabaseURL) -> MigrationDialect:
        """The engine-specific half of migrations for *url*."""
        from dbkeeper.plugin.engines import MigrateRequest

        dialect: MigrationDialect = self._call("migrate", MigrateRequest(driver=self.name, url=url))
        return dialect

    def collect_metrics(self, request: MetricsRequest) -> list[CollectorResult]:
        """One scrape: every collector's result (raises DatabaseError when the database is down)."""
        results: list[CollectorResult] = self._call("collect_metrics", request)
        return results

    def check_health(self, request: HealthRequest) -> list[HealthCheck]:
        """Every health check's verdict."""
        checks: list[HealthCheck] = self._call("check_health", request)
        return checks

    def sessions(self, request: SessionsRequest) -> list[Session]:
        """The server's sessions, for ``dbkeeper top``."""
        sessions: list[Session] = self._call("sessions", request)
        return sessions

    def maintenance(self, request: MaintenanceRequest) -> Maintenance:
        """The driver's maintenance of the request's database (plan, then apply)."""
        maintenance: Maintenance = self._call("plan_maintenance", request)
        return maintenance

    def drill(self, request: DrillRequest) -> DrillDialect:
        """The engine-specific half of a restore drill: its target and its integrity check."""
        dialect: DrillDialect = self._call("drill", request)
        return dialect

    def schema_dialect(self) -> SchemaDialect:
        """The engine-specific half of ``dbkeeper schema`` (generate, inspect, diff)."""
        from dbkeeper.plugin.schema import SchemaRequest

        dialect: SchemaDialect = self._call("schema_dialect", SchemaRequest(driver=self.name))
        return dialect


class Plugins:
    """The loaded plugins: drivers by name and scheme, stages by name, and failures."""

    def __init__(self, pm: pluggy.PluginManager, records: list[PluginRecord], failures: list[PluginFailure]) -> None:
        self._pm = pm
        self.records = records
        self.failures = failures
        self.drivers: dict[str, Driver] = {}
        self.stages: dict[str, RegisteredStage] = {}
        self.storages: dict[str, RegisteredStorage] = {}
        self._schemes: dict[str, Driver] = {}
        self._storage_schemes: dict[str, RegisteredStorage] = {}
        registered: dict[str, tuple[list[DriverInfo], list[Stage], list[StorageInfo]]] = {}
        for record in list(records):
            try:
                registered[record.name] = (
                    self._collect(record, "register_drivers"),
                    self._collect(record, "register_stages"),
                    self._collect(record, "register_storages"),
                )
                if not registered[record.name][0]:
                    self._require_observer(record)
                for info in registered[record.name][0]:
                    info.options.declared()  # a badly declared option fails its plugin, not every command
            except Exception as exc:  # a broken plugin must not take the others down
                self._drop(record, exc)
        driver_plugins = [record.plugin for record in self.records if registered[record.name][0]]
        for record in self.records:
            drivers, stages, storages = registered[record.name]
            others = [plugin for plugin in driver_plugins if plugin is not record.plugin]
            for info in drivers:
                self._add_driver(Driver(info, record, pm, others))
            for stage in stages:
                self._add_stage(RegisteredStage(stage, record))
            for storage in storages:
                self._add_storage(RegisteredStorage(storage, record))

    @property
    def core_version(self) -> str:
        """The installed dbkeeper's version, as read when the plugins were loaded."""
        return next((record.version for record in self.records if record.name == BUILTIN), "unknown")

    def _require_observer(self, record: PluginRecord) -> None:
        """A plugin without a driver may only wrap driver hooks, never answer them."""
        for operation in DRIVER_OPERATIONS:
            for impl in getattr(self._pm.hook, _hook_name(operation)).get_hookimpls():
                if impl.plugin is record.plugin and not (impl.wrapper or impl.hookwrapper):
                    raise PluginError(
                        f"it implements {_hook_name(operation)} but registers no driver; a plugin that "
                        "only observes must use @hookimpl(wrapper=True)"
                    )

    def _drop(self, record: PluginRecord, exc: Exception) -> None:
        """Unload a plugin that failed while registering, and record why."""
        self._pm.unregister(record.plugin)
        self.records.remove(record)
        from dbkeeper.plugin.failures import PluginFailure

        self.failures.append(PluginFailure.of(record.name, record.distribution, exc))

    def _collect(self, record: PluginRecord, hook: str) -> list[Any]:
        """Call a registration hook on one plugin and return what it registered."""
        registered: list[Any] = []
        others = [other.plugin for other in self.records if other is not record]
        self._pm.subset_hook_caller(_hook_name(hook), remove_plugins=others)(register=registered.append)
        return registered

    def _add_driver(self, driver: Driver) -> None:
        _claim(self.drivers, driver.name, driver, "driver", lambda d: d.provider)
        for scheme in driver.info.schemes:
            _claim(self._schemes, scheme.lower(), driver, "URL scheme", lambda d: d.provider)

    def _add_stage(self, registered: RegisteredStage) -> None:
        _claim(self.stages, registered.stage.name, registered, "pipeline stage", lambda s: s.provider)

    def _add_storage(self, registered: RegisteredStorage) -> None:
        _claim(self.storages, registered.info.name, registered, "storage", lambda s: s.provider)
        for scheme in registered.info.schemes:
            if scheme.lower() in LOCAL_STORAGE_SCHEMES:
                raise PluginConflictError(
                    f"storage scheme {scheme!r} is the built-in local directory's; plugin {registered.provider.name!r} "
                    f"from {registered.provider.distribution} cannot take it"
                )
            _claim(self._storage_schemes, scheme.lower(), registered, "storage scheme", lambda s: s.provider)

    def storage_for(self, scheme: str) -> RegisteredStorage:
        """The storage backend serving ``scheme://`` URLs, or an error saying what to install."""
        registered = self._storage_schemes.get(scheme.lower())
        if registered is None:
            raise PluginError(self._missing(f"no storage for '{scheme}://' URLs", scheme.lower()))
        return registered

    def driver_for(self, url: DatabaseURL) -> Driver:
        """The driver that serves *url*'s scheme, or an error saying what to install."""
        driver = self._schemes.get(url.backend)
        if driver is None:
            raise DriverNotFoundError(self._missing(f"no driver for '{url.backend}://' URLs", url.backend))
        return driver

    def driver_for_dialect(self, name: str) -> Driver:
        """The driver of the schema dialect *name*: the driver of that name, else the one serving that scheme."""
        driver = self.drivers.get(name) or self._schemes.get(name.lower())
        if driver is None:
            raise DriverNotFoundError(self._missing(f"no driver for dialect {name!r}", name))
        return driver

    def driver_named(self, name: str, distribution: str | None = None) -> Driver:
        """The driver registered as *name* (as recorded in a manifest)."""
        driver = self.drivers.get(name)
        if driver is None:
            raise DriverNotFoundError(self._missing(f"the {name} driver is not installed", name, distribution))
        return driver

    def stage(self, name: str, distribution: str | None = None) -> RegisteredStage:
        """The stage registered as *name*, or an error naming the distribution to install."""
        registered = self.stages.get(name)
        if registered is None:
            raise StageNotFoundError(self._missing(f"pipeline stage {name!r} is not installed", name, distribution))
        return registered

    def _missing(self, problem: str, key: str, distribution: str | None = None) -> str:
        """*problem*, and what to do: fix a plugin that failed to load, or install one."""
        distribution = distribution or INSTALL_HINTS.get(key)
        for failure in self.failures:
            if failure.distribution == distribution or failure.name == key:
                return (
                    f"{problem}: plugin {failure.name!r} from {failure.distribution} failed to load "
                    f"({failure.error}); run 'dbkeeper plugins' for details"
                )
        if distribution:
            return f"{problem} — pip install {distribution}"
        return (
            f"{problem}: no installed plugin provides it — install the plugin that does "
            "(third-party plugins are named dbkeeper-<name>; 'dbkeeper plugins' lists what is installed)"
        )

    def describe(self) -> list[dict[str, Any]]:
        """One JSON-ready entry per loaded plugin, for ``dbkeeper plugins``.

        ``driver_options`` holds, per driver of the plugin, its declared options (:meth:`Option.describe`).
        """
        return [
            {
                "name": record.name,
                "distribution": record.distribution,
                "version": record.version,
                "hooks": sorted(caller.name for caller in self._pm.get_hookcallers(record.plugin) or []),
                "drivers": [
                    {"name": d.name, "schemes": list(d.info.schemes), "formats": list(d.info.formats)}
                    for d in self.drivers.values()
                    if d.provider is record
                ],
                "driver_options": {
                    d.name: [opt.describe() for opt in d.info.options.declared()]
                    for d in self.drivers.values()
                    if d.provider is record
                },
                "stages": [
                    {"name": s.stage.name, "kind": s.stage.kind} for s in self.stages.values() if s.provider is record
                ],
                "storages": [
                    {"name": s.info.name, "schemes": list(s.info.schemes)}
                    for s in self.storages.values()
                    if s.provider is record
                ],
            }
            for record in self.records
        ]


def _claim(table: dict[str, Any], key: str, value: Any, what: str, provider: Callable[[Any], PluginRecord]) -> None:
    """Add *value* under *key*, or raise naming both distributions if the key is taken."""
    if key in table:
        first, second = provider(table[key]), provider(value)
        raise PluginConflictError(
            f"{what} {key!r} is provided by both {first.distribution} (plugin {first.name!r}) and "
            f"{second.distribution} (plugin {second.name!r}); uninstall one, or disable one with "
            f"{DISABLE_ENV}={first.name} or {DISABLE_ENV}={second.name}"
        )
    table[key] = value


def _disabled() -> set[str]:
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def _loaded(plugin: object) -> Callable[[], object]:
    """A loader for a plugin that is already loaded: it returns *plugin*."""
    return lambda: plugin


def load_plugins(
    *, entry_points_group: str | None = hookspecs.PROJECT, extra: Iterable[tuple[str, object]] = ()
) -> Plugins:
    """Build the plugin manager: built-ins, then entry points, then *extra* ``(name, plugin)`` pairs.

    Pass ``entry_points_group=None`` to skip discovery (tests, embedding); *extra* plugins
    are registered as if they came from an entry point named *name*.
    """
    from dbkeeper.backups import stages

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    records = [PluginRecord(BUILTIN, BUILTIN, distribution_version(BUILTIN), stages)]
    pm.register(stages, name=BUILTIN)
    failures: list[PluginFailure] = []
    disabled = _disabled()

    candidates: list[tuple[str, str, str, Callable[[], object]]] = []
    if entry_points_group:
        for ep in entry_points(entry_points_group):
            if ep.name in disabled or ep.distribution in disabled:
                continue
            candidates.append((ep.name, ep.distribution, ep.version, ep.load))
    candidates.extend((name, name, "unknown", _loaded(module)) for name, module in extra)

    for name, dist, ver, load in candidates:
        plugin: object | None = None
        try:
            plugin = load()
            pm.register(plugin, name=name)
            pm.check_pending()
        except Exception as exc:  # a broken plugin must not take the others down
            if plugin is not None and pm.is_registered(plugin):
                pm.unregister(plugin)
            from dbkeeper.plugin.failures import PluginFailure

            failures.append(PluginFailure.of(name, dist, exc))
            continue
        records.append(PluginRecord(name, dist, ver, plugin))
    return Plugins(pm, records, failures)
