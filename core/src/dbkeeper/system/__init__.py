"""What dbkeeper asks of the operating system, for the core and the drivers alike.

``filesystem``: a local file system's refusals (full, read-only, permission denied) as
one-line errors; ``interrupts``: Ctrl-C and SIGTERM held while a restore commits.
"""
