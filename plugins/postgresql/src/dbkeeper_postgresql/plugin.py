"""The PostgreSQL driver's hook implementations (work in progress: registers nothing yet)."""
