"""dbkeeper-mysql: the MySQL/MariaDB driver for dbkeeper (entry point ``mysql``)."""
