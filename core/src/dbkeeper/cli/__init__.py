"""The ``dbkeeper`` command line: a thin layer over the Python API.

Data goes to stdout, notes and progress to stderr. Exit status: 0 success, 1 error,
2 usage error, 130 interrupted. Errors are one line; ``--debug`` adds the traceback.

:func:`main` is the ``dbkeeper`` command. It lets :mod:`dbkeeper.cli.early` begin a backup's
head start from the arguments first, then runs the commands of :mod:`dbkeeper.cli.root`, which
are imported only then: this module itself imports nothing else (the root command ``cli`` and the
table of commands ``COMMANDS`` are imported from :mod:`dbkeeper.cli.root` on first use). Python's
cyclic garbage collector is paused until the commands run.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

from dbkeeper.system.lazy import LazyNames

if TYPE_CHECKING:
    from dbkeeper.cli.early import EarlyBackup
    from dbkeeper.cli.root import COMMANDS, cli

_LAZY = LazyNames(__name__, {"dbkeeper.cli.root": ("COMMANDS", "cli")})


def __getattr__(name: str) -> object:
    return _LAZY.attribute(name)


def __dir__() -> list[str]:
    return _LAZY.names()


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the ``dbkeeper`` command with *argv* (default: the process's arguments) and end the process."""
    args = sys.argv[1:] if argv is None else argv
    from dbkeeper.system.collector import collector_paused

    early = None
    # The start-up only makes objects that live as long as the process (modules, plugins, the
    # head start): no collection need scan them, then or later (see dbkeeper.system.collector).
    with collector_paused(keep=True):
        from dbkeeper.system import interrupts

        interrupts.install()  # SIGTERM unwinds like Ctrl-C (partial files are cleaned up), held while a restore commits
        try:
            from dbkeeper.cli.early import begin

            early = begin(args)
            from dbkeeper.cli.root import run
        except KeyboardInterrupt as exc:
            _interrupted(exc, early)
    run(args, early)


def _interrupted(exc: KeyboardInterrupt, early: EarlyBackup | None) -> NoReturn:
    """Interrupted before the commands could run: stop what was begun, say so, exit 130 (as the commands do)."""
    import contextlib
    import os

    from dbkeeper.system import interrupts

    if early is not None:
        with contextlib.suppress(KeyboardInterrupt):  # a second interrupt: its processes are being stopped anyway
            early.close()
    print(interrupts.message(exc), file=sys.stderr, flush=True)
    os._exit(130)


__all__ = ["COMMANDS", "cli", "main"]
