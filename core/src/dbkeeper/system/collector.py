"""Python's cyclic garbage collector paused around work that makes many objects and no cycles."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused(*, keep: bool = False) -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, then as it was.

    The collector, triggered every 700 allocations, scans every live container again and
    again; where a block only makes objects that hold no cycles, that is time for nothing:
    importing modules and loading plugins (about 5 ms of a command's start-up), reading or
    writing a schema definition (some 100,000 containers: a quarter of a 1,000-table load).

    With *keep*, for blocks whose objects live as long as the process (modules, plugins),
    every object alive at the end is moved out of the collector's sight (:func:`gc.freeze`):
    otherwise the first collection after the block scans all of them (3 ms after the start-up's
    imports), and later ones again. Reference counting still frees them; only a cycle among
    them would never be collected.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if keep:
            gc.freeze()
        if enabled:
            gc.enable()
