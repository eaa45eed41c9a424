"""dbkeeper-postgresql: the PostgreSQL driver for dbkeeper (entry point ``postgresql``)."""
