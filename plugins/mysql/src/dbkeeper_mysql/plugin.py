"""The MySQL/MariaDB driver's hook implementations (work in progress: registers nothing yet)."""
