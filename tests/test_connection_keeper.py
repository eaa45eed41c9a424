"""ConnectionKeeper: what a driver keeps between scrapes, handed back to the right driver, closed once."""

from __future__ import annotations

from dbkeeper.plugin import ConnectionKeeper


class Handle:
    """Something a driver keeps: it remembers being closed."""

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        """Count the close."""
        self.closed += 1


class OtherHandle(Handle):
    """Another driver's kind of connection."""


def test_what_is_kept_is_taken_once_by_its_own_kind() -> None:
    keeper, handle = ConnectionKeeper(), Handle()
    keeper.keep(handle)
    assert keeper.take(Handle) is handle
    assert keeper.take(Handle) is None, "taken: no longer kept, so two scrapes never share it"
    assert handle.closed == 0


def test_another_kind_is_closed_instead_of_handed_over() -> None:
    keeper, handle = ConnectionKeeper(), Handle()
    keeper.keep(handle)
    assert keeper.take(OtherHandle) is None
    assert handle.closed == 1


def test_keeping_a_second_closes_the_first() -> None:
    keeper, first, second = ConnectionKeeper(), Handle(), Handle()
    keeper.keep(first)
    keeper.keep(second)
    assert (first.closed, second.closed) == (1, 0)
    assert keeper.take(Handle) is second


def test_close_closes_what_is_kept_and_what_comes_back_later() -> None:
    keeper, kept, late = ConnectionKeeper(), Handle(), Handle()
    keeper.keep(kept)
    keeper.close()
    assert kept.closed == 1
    keeper.keep(late)  # a scrape that overran its deadline returns after the server stopped
    assert late.closed == 1
    assert keeper.take(Handle) is None
