"""Connections: which database a command means, and talking to it.

``urls`` parses and redacts database URLs (the standard library only); ``config`` reads
``dbkeeper.toml``, ``DATABASE_URL`` and named connections; ``database``
(:class:`~dbkeeper.connections.database.DatabaseManager`) runs queries on the SQLAlchemy
engines the drivers make. Nothing is imported here, so a URL never loads SQLAlchemy.
"""
