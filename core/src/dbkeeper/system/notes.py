"""Notes: one-line remarks a driver or the core makes while it works, for the user to read.

A note is a :mod:`logging` record on the ``dbkeeper`` logger: INFO, or WARNING for one the
user must see even with ``--quiet`` (work done on something the command did not name, such
as settling an earlier interrupted restore). The CLI prints each as ``note: …`` on stderr;
library code sees them like any other log record, and nothing unless it configures logging
(Python's last-resort handler still shows the WARNING ones).
"""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("dbkeeper")


def note(message: str, *, always: bool = False) -> None:
    """Tell the user *message* (one line, no password) on stderr; *always* shows it even with ``--quiet``."""
    LOGGER.log(logging.WARNING if always else logging.INFO, message)


def plural(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
