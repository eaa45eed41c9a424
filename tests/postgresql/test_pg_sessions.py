"""The PostgreSQL driver's sessions (dbkeeper_sessions, what ``dbkeeper top`` shows) on a real server."""

from __future__ import annotations

from pg_monitoring import app_url, driver, running, session, superuser_url
from pg_server import Server

from dbkeeper.plugin import DatabaseURL, Deadline, Session, SessionsRequest
from helpers import eventually

PADDING = "x" * 300


def sessions(url: DatabaseURL) -> dict[str, Session]:
    """The server's sessions by id, through the core's Driver facade."""
    return {found.id: found for found in driver().sessions(SessionsRequest("postgresql", url, Deadline(10)))}


def test_a_blocked_session_shows_its_wait_its_blocker_and_its_query_cut_to_200_characters(pg: Server) -> None:
    name = pg.app_database("sessions_blocked", "CREATE TABLE account (id int)")
    with session(pg, name, autocommit=False) as locker:
        locker.execute("LOCK TABLE account IN ACCESS EXCLUSIVE MODE")
        with running(pg, name, f"SELECT count(*) FROM account WHERE '{PADDING}' <> ''") as waiter:
            blocker, waiting = str(locker.info.backend_pid), str(waiter.info.backend_pid)

            def blocked() -> dict[str, Session] | None:
                seen = sessions(superuser_url(pg, name))
                return seen if waiting in seen and seen[waiting].blocked_by else None

            found = eventually(blocked, "the waiting session showing its blocker")
            assert found[waiting].blocked_by == (blocker,)
            assert (found[waiting].state, found[waiting].wait) == ("active", "Lock: relation")
            assert found[waiting].query.startswith("SELECT count(*) FROM account WHERE 'xxx")
            assert len(found[waiting].query) == 200
            assert (found[waiting].user, found[waiting].database) == ("postgres", name)
            assert found[blocker].state == "idle in transaction"
            assert found[blocker].query == "LOCK TABLE account IN ACCESS EXCLUSIVE MODE"
            held = found[blocker].seconds
            assert held is not None and held >= 0
            assert not any("pg_blocking_pids" in other.query for other in found.values())  # our own is left out
            locker.rollback()


def test_without_pg_read_all_stats_other_roles_sessions_show_no_details(pg: Server) -> None:
    name = pg.app_database("sessions_hidden", "")
    with session(pg, name) as other:
        other.execute("SELECT 'a superuser query'")
        hidden = sessions(app_url(pg, name))[str(other.info.backend_pid)]
    assert (hidden.state, hidden.query, hidden.wait) == ("unknown", "", "")
