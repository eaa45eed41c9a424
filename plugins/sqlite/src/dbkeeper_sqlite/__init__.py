"""dbkeeper-sqlite: the SQLite driver for dbkeeper (registered as the ``sqlite`` entry point)."""
