"""State shared by every command: configuration, plugins and output settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dbkeeper.config import Config, load_config
from dbkeeper.progress import Reporter, reporter_for

if TYPE_CHECKING:
    from dbkeeper.backup import BackupManager
    from dbkeeper.plugins import Plugins


@dataclass
class App:
    """What the root command parsed, and what commands build from it on demand."""

    config_path: Path | None
    quiet: bool
    debug: bool

    @cached_property
    def config(self) -> Config:
        """The configuration, loaded on first use."""
        return load_config(self.config_path)

    @cached_property
    def plugins(self) -> Plugins:
        """Every installed plugin, loaded on first use."""
        from dbkeeper.plugins import load_plugins

        return load_plugins()

    def reporter(self, *, json_output: bool = False) -> Reporter:
        """Progress on stderr, unless quiet, JSON output, or stderr is not a terminal."""
        return reporter_for(quiet=self.quiet or json_output)

    def backups(self, directory: Path | None, *, json_output: bool = False) -> BackupManager:
        """A backup manager for ``--dir``, else the configured directory, else ``./backups``."""
        from dbkeeper.backup import BackupManager

        return BackupManager(
            self.config.backup_directory(directory),
            plugins=self.plugins,
            reporter=self.reporter(json_output=json_output),
        )


pass_app = click.make_pass_decorator(App)

json_option = click.option("--json", "json_output", is_flag=True, help="Print machine-readable JSON.")
dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Backup directory (default: backup_dir in dbkeeper.toml, else ./backups).",
)
