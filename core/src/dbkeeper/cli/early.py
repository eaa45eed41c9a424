"""A backup's head start begun from the arguments, before click and the commands are imported.

A driver's head start (``prepare_backup``: PostgreSQL's snapshot, MariaDB's ``mariadb-dump``)
runs its first server work on a thread while the core sets a backup up. Begun by the
``backup`` command, it would start only after click and every command's module were imported
and the arguments parsed — some 30 ms after the process started doing anything useful, which
a backup of a small database pays in full. So :func:`begin` reads just enough of the
arguments — ``dbkeeper [-q|--debug|--config FILE] backup URL …``, the URL right after the
command, no ``--help`` — loads the plugins and starts the URL's driver's head start with its
default format and options (what the environment says; no ``dbkeeper.toml`` is read here).

The ``backup`` command then takes it when it asks for exactly that URL, format and options
(:meth:`EarlyBackup.claim`); otherwise, or when the command never gets there (a usage error,
another failure), it is stopped, its processes killed, and the command starts its own as it
always did. Anything else — another command, an option or a connection name where the URL
would be, a URL no driver takes — and nothing is begun. Either way the plugins loaded here
are the command's (:attr:`dbkeeper.cli.app.App.plugins`): they are loaded once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbkeeper.plugin.manager import Plugins
    from dbkeeper.plugin.options import DriverOptions

GLOBAL_FLAGS = frozenset({"-q", "--quiet", "--debug"})
"""The root command's flags without a value, which may come before the command."""
HELP_FLAGS = frozenset({"-h", "--help"})


@dataclass
class EarlyBackup:
    """The plugins the arguments made load, and the backup head start begun with them (if any)."""

    plugins: Plugins
    url: str = ""
    format: str = ""
    options: DriverOptions | None = None
    prepared: object = None
    """The value of the driver's ``prepare_backup`` context (its :class:`~dbkeeper.plugin.HeadStart`)."""
    begun: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    claimed: bool = False

    def claim(self, url: str, format: str, options: DriverOptions) -> object | None:
        """The head start, when the command asks for exactly what it was begun with (once); else it is stopped.

        None means the command starts its own head start.
        """
        asked, begun = (url, format, options), (self.url, self.format, self.options)
        if self.options is not None and not self.claimed and asked == begun:
            self.claimed = True
            return self.prepared
        self.close()
        return None

    def close(self) -> None:
        """Stop the head start unless it was taken, and close it (after the command; idempotent)."""
        self.begun.close()


def backup_url(args: Sequence[str]) -> str | None:
    """The URL of ``dbkeeper [global flags] backup URL …``; None for any other command line, or with ``--help``."""
    rest = list(args)
    while rest and (rest[0] in GLOBAL_FLAGS or rest[0] == "--config" or rest[0].startswith("--config=")):
        rest = rest[2:] if rest[0] == "--config" else rest[1:]
    if len(rest) < 2 or rest[0] != "backup" or rest[1].startswith("-") or "://" not in rest[1]:
        return None
    return None if HELP_FLAGS.intersection(rest) else rest[1]


def begin(args: Sequence[str]) -> EarlyBackup | None:
    """Load the plugins and begin the backup head start that *args* ask for (see the module documentation).

    None when *args* are not a backup of a URL, or the plugins cannot be loaded (the command
    then reports why). An interrupt while it begins stops what it began and is raised.
    """
    url = backup_url(args)
    if url is None:
        return None
    from dbkeeper.errors import DbkeeperError
    from dbkeeper.plugin.manager import load_plugins

    try:
        early = EarlyBackup(load_plugins())
    except DbkeeperError:
        return None
    try:
        _start(early, url)
    except DbkeeperError:  # a URL no driver takes, an option the environment sets wrong: the command says so
        early.close()
    except BaseException:
        early.close()
        raise
    return early


def _start(early: EarlyBackup, url: str) -> None:
    """Begin the head start of *url*'s driver with its default format and options, into *early*."""
    from dbkeeper.connections.urls import DatabaseURL

    source = DatabaseURL.parse(url)
    driver = early.plugins.driver_for(source)
    if driver.info.prepare_backup is None:
        return
    format, options = driver.backup_format(None), driver.options_for("backup", {})
    early.prepared = early.begun.enter_context(driver.prepare_backup(source, format, options))
    early.url, early.format, early.options = url, format, options
