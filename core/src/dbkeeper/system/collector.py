"""Python's cyclic garbage collector paused around work that makes many objects and no cycles."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, then as it was.

    The collector, triggered every 700 allocations, scans every live container again and
    again; where a block only makes objects that hold no cycles, that is time for nothing:
    importing modules and loading plugins (about 5 ms of a command's start-up), reading or
    writing a schema definition (some 100,000 containers: a quarter of a 1,000-table load).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
