"""Named connections, DATABASE_URL, queries and transactions on real SQLite files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbkeeper.connections.config import Config, load_config
from dbkeeper.connections.database import DatabaseManager
from dbkeeper.errors import ConfigError, DatabaseError, DatabaseNotFoundError
from helpers import assert_one_line_error, dbkeeper


@pytest.fixture
def project(tmp_path: Path, chinook: Path) -> Path:
    (tmp_path / "dbkeeper.toml").write_text(
        f"""
backup_dir = "bk"

[backup]
compress = "gzip"

[backup.gzip]
level = 1

[backup.zstd]
threads = 1

[connections.music]
url = "sqlite:///{chinook}"

[connections.prod]
url = "postgresql://app:${{PROD_PW}}@db.internal:5432/app"
"""
    )
    return tmp_path


def test_query_by_name_with_json(project: Path) -> None:
    result = dbkeeper(
        "query", "music", "SELECT ArtistId, Name FROM Artist ORDER BY ArtistId LIMIT 2", "--json", cwd=project
    ).json()
    assert result["columns"] == ["ArtistId", "Name"]
    assert result["rows"] == [[1, "AC/DC"], [2, "Accept"]]
    text = dbkeeper("query", "music", "SELECT Name FROM Genre WHERE GenreId = 1", cwd=project)
    assert text.out.splitlines() == ["Name", "Rock"]


def test_query_errors_are_one_line(project: Path) -> None:
    assert_one_line_error(
        dbkeeper("query", "music", "SELECT * FROM nope", cwd=project, check=False), "no such table: nope"
    )
    assert_one_line_error(
        dbkeeper("query", "nosuch", "SELECT 1", cwd=project, check=False), "no connection named 'nosuch'", "music, prod"
    )


def test_connections_list_masks_passwords(project: Path) -> None:
    run = dbkeeper(
        "connections",
        "list",
        "--json",
        cwd=project,
        env={"PROD_PW": "s3cret-pw", "DATABASE_URL": "mysql://u:envpass@h/db"},
    )
    listed = {c["name"]: c for c in run.json()}
    assert listed["prod"]["url"] == "postgresql://app:***@db.internal:5432/app"
    assert listed["DATABASE_URL"] == {"name": "DATABASE_URL", "url": "mysql://u:***@h/db", "source": "environment"}
    text = dbkeeper("connections", "list", cwd=project, env={"DATABASE_URL": "mysql://u:envpass@h/db"})
    assert "envpass" not in text.out + text.err and "***" in text.out


def test_missing_environment_variable_is_named(project: Path) -> None:
    run = dbkeeper("backup", "prod", cwd=project, check=False)
    assert_one_line_error(run, "${PROD_PW}", "not set")


def test_connections_test(project: Path) -> None:
    run = dbkeeper("connections", "test", "music", "--json", cwd=project).json()
    assert run["ok"] is True and run["server_version"].startswith("3.")
    assert_one_line_error(dbkeeper("connections", "test", "sqlite:///nowhere/x.db", check=False), "does not exist")


def test_config_backup_defaults_apply(project: Path) -> None:
    manifest = dbkeeper("backup", "music", "--json", cwd=project).json()
    assert [s["name"] for s in manifest["artifacts"][0]["stages"]] == ["gzip", "sha256"]
    assert manifest["artifacts"][0]["stages"][0]["level"] == 1
    assert (project / "bk" / manifest["id"]).is_dir()


def test_database_url_is_the_default_connection(chinook: Path, tmp_path: Path) -> None:
    run = dbkeeper("query", "sqlite:///" + str(chinook), "SELECT count(*) AS n FROM Track", "--json")
    assert run.json()["rows"] == [[3503]]
    backup_id = dbkeeper("backup", "--dir", str(tmp_path / "b"), env={"DATABASE_URL": f"sqlite:///{chinook}"})
    assert backup_id.out.strip()
    assert_one_line_error(dbkeeper("backup", "--dir", str(tmp_path / "b"), cwd=tmp_path, check=False), "DATABASE_URL")


def test_stage_options_apply_only_to_their_stage(project: Path) -> None:
    zstd = dbkeeper("backup", "music", "--compress", "zstd", "--level", "5", "--json", cwd=project).json()
    assert zstd["artifacts"][0]["stages"][0] == {"name": "zstd", "distribution": "dbkeeper", "level": 5}
    none = dbkeeper("backup", "music", "--compress", "none", "--json", cwd=project).json()
    assert none["artifacts"][0]["stages"][0]["name"] == "none"


def test_stage_tables_are_checked(project: Path) -> None:
    config = project / "dbkeeper.toml"
    config.write_text(config.read_text() + "\n[backup.zstf]\nlevel = 3\n")
    assert_one_line_error(dbkeeper("backup", "music", cwd=project, check=False), "[backup.zstf]", "'zstf'")
    config.write_text(config.read_text().replace("[backup.zstf]\nlevel = 3", "[backup.none]\nlevle = 3"))
    run = dbkeeper("backup", "music", cwd=project, check=False)
    assert_one_line_error(run, "dbkeeper.toml [backup.none]", "no option 'levle'")


def test_unknown_settings_are_errors(tmp_path: Path) -> None:
    (tmp_path / "dbkeeper.toml").write_text("[backup]\nlevel = 3\n")
    assert_one_line_error(dbkeeper("backups", "list", cwd=tmp_path, check=False), "unknown setting 'level'")
    (tmp_path / "dbkeeper.toml").write_text('[connections.x]\nurl = "sqlite:///x.db"\npasword = "oops"\n')
    assert_one_line_error(dbkeeper("connections", "list", cwd=tmp_path, check=False), "unknown setting 'pasword'")


def test_bad_config_file(tmp_path: Path) -> None:
    (tmp_path / "dbkeeper.toml").write_text("backup_dir = [\n")
    assert_one_line_error(dbkeeper("backups", "list", cwd=tmp_path, check=False), "not valid TOML")
    (tmp_path / "dbkeeper.toml").write_text("[connections.x]\nurl = 5\n")
    assert_one_line_error(dbkeeper("query", "x", "SELECT 1", cwd=tmp_path, check=False), "[connections.x] needs url")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_execute_and_transactions_through_the_api(chinook: Path) -> None:
    with DatabaseManager() as dbs:
        music = dbs.add("music", f"sqlite:///{chinook}")
        result = music.execute("SELECT Name FROM Artist WHERE ArtistId = :id", {"id": 1})
        assert (result.columns, result.rows, result.duration > 0) == (["Name"], [("AC/DC",)], True)
        assert result.as_dicts() == [{"Name": "AC/DC"}]
        updated = music.execute("UPDATE Artist SET Name = 'x' WHERE ArtistId <= 3")
        assert updated.rowcount == 3 and updated.columns == []
        with music.transaction() as tx:
            tx.execute("UPDATE Artist SET Name = :n WHERE ArtistId = 1", {"n": "committed"})
        with pytest.raises(DatabaseError), music.transaction() as tx:
            tx.execute("UPDATE Artist SET Name = 'rolled back' WHERE ArtistId = 2")
            tx.execute("INSERT INTO Artist (ArtistId, Name) VALUES (1, 'duplicate key')")
        names = music.execute("SELECT Name FROM Artist WHERE ArtistId IN (1, 2) ORDER BY ArtistId").rows
        assert names == [("committed",), ("x",)]
        assert music.execute("SELECT '10:30' AS t").rows == [("10:30",)], "no bind parsing without params"
        assert dbs.get("music") is music


def test_manager_reads_named_connections_from_config(chinook: Path, tmp_path: Path) -> None:
    config = Config(connections={"a": f"sqlite:///{chinook}", "b": f"sqlite:///{tmp_path}/missing.db"})
    with DatabaseManager(config) as dbs:
        assert dbs.get("a").execute("SELECT count(*) FROM Genre").rows == [(25,)]
        with pytest.raises(DatabaseNotFoundError):
            dbs.get("b").execute("SELECT 1")
