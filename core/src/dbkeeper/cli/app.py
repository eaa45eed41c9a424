"""State shared by every command: configuration, plugins and output settings."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dbkeeper.backups.progress import Reporter, reporter_for
from dbkeeper.connections.config import Config, load_config, storage_scheme
from dbkeeper.system.collector import collector_paused

IDENTITY_ENV = "DBKEEPER_IDENTITY_FILE"
"""The environment variable naming the identity file(s) that decrypt backups, when no --identity is given."""

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from dbkeeper.backups.manager import BackupManager
    from dbkeeper.cli.early import EarlyBackup
    from dbkeeper.connections.urls import DatabaseURL
    from dbkeeper.plugin.manager import Driver, Plugins
    from dbkeeper.plugin.options import DriverOptions


@dataclass
class App:
    """What the root command parsed, and what commands build from it on demand."""

    config_path: Path | None
    quiet: bool
    debug: bool
    early: EarlyBackup | None = None
    """What the arguments began before the commands were imported: the plugins, a backup's head start."""

    @cached_property
    def config(self) -> Config:
        """The configuration, loaded on first use."""
        return load_config(self.config_path)

    @cached_property
    def plugins(self) -> Plugins:
        """Every installed plugin, loaded on first use (or already, by :mod:`dbkeeper.cli.early`)."""
        if self.early is not None:
            return self.early.plugins
        with collector_paused(keep=True):
            from dbkeeper.plugin.manager import load_plugins

            return load_plugins()

    def head_start(
        self, driver: Driver, url: str, source: DatabaseURL, format: str, options: DriverOptions
    ) -> AbstractContextManager[object]:
        """The driver's head start on a backup of *url*: the one the arguments began when it is the same, else new."""
        if self.early is not None and (begun := self.early.claim(url, format, options)) is not None:
            return contextlib.nullcontext(begun)  # closed by the command line's end, when the backup is done
        return driver.prepare_backup(source, format, options)

    def reporter(self, *, json_output: bool = False) -> Reporter:
        """Progress on stderr, unless quiet, JSON output, or stderr is not a terminal."""
        return reporter_for(quiet=self.quiet or json_output)

    def backups(
        self, directory: Path | str | None, *, json_output: bool = False, identities: Sequence[Path] = ()
    ) -> BackupManager:
        """A backup manager for ``--dir``, else the configured ``backup_dir``, else ``./backups``.

        A storage URL gets the settings of the ``[storage.NAME]`` section that covers it.
        """
        with collector_paused(keep=True):
            from dbkeeper.backups.manager import BackupManager

        location = self.config.backup_directory(directory)
        return BackupManager(
            location,
            plugins=self.plugins,
            reporter=self.reporter(json_output=json_output),
            settings=self.config.storage_settings(location),
            identities=identities or identity_files_from_environment(),
        )


pass_app = click.make_pass_decorator(App)


def _set_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    app = ctx.find_object(App)
    if value and app is not None:
        setattr(app, param.name or "", True)


def global_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """Accept ``--quiet`` and ``--debug`` after the command name too (``dbkeeper backup -q``)."""
    quiet = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_flag,
        help="No progress bars or notes, only results.",
    )
    debug = click.option(
        "--debug", is_flag=True, expose_value=False, callback=_set_flag, help="Show the traceback of an error."
    )
    return quiet(debug(command))


class BackupDirectory(click.Path):
    """A local backup directory, or a storage URL (``s3://bucket/prefix``) kept as the text typed.

    The check runs on the text as typed: as a ``Path``, ``s3://bucket/x`` would already be
    the local folder ``s3:/bucket/x``.
    """

    def __init__(self) -> None:
        super().__init__(path_type=Path, file_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """A URL as it is; a path checked as ``click.Path`` does."""
        if isinstance(value, str) and storage_scheme(value):
            return value
        return super().convert(value, param, ctx)


def identity_files_from_environment() -> tuple[Path, ...]:
    """The identity files named by :data:`IDENTITY_ENV` (several separated by ``:``), or none."""
    value = os.environ.get(IDENTITY_ENV, "")
    return tuple(Path(part) for part in value.split(os.pathsep) if part)


json_option = click.option("--json", "json_output", is_flag=True, help="Print machine-readable JSON.")
identity_option = click.option(
    "--identity",
    "identities",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help=f"An age identity file that decrypts encrypted backups (repeatable; default: ${{{IDENTITY_ENV}}}).",
)
dir_option = click.option(
    "--dir",
    "directory",
    type=BackupDirectory(),
    metavar="DIR|URL",
    help="Backup directory or storage URL, e.g. s3://bucket/prefix (default: backup_dir in dbkeeper.toml, "
    "else ./backups).",
)
