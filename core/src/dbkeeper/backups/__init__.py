"""Backups: taking, listing, verifying, restoring and pruning them.

``manager`` (:class:`~dbkeeper.backups.manager.BackupManager`) drives a driver through the
``pipeline`` of ``stages`` into the ``repository`` on disk, and writes the ``manifest``
last; ``retention`` decides what ``prune`` keeps; ``progress`` shows it on a terminal.
Nothing is imported here, so importing one module does not load the others.
"""
