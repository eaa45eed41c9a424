"""How dbkeeper opens and creates files in a local backup directory: one set of rules for every module.

Nothing below a backup directory is opened through a symbolic link (``O_NOFOLLOW``), a FIFO
never hangs a reader (``O_NONBLOCK``), what dbkeeper creates is readable by its owner only,
and a file being written carries the ``.partial`` suffix until it is renamed into place.
"""

from __future__ import annotations

import os

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO must not hang us
PARTIAL = ".partial"
FILE_MODE = 0o600
DIR_MODE = 0o700
