"""TLS to a real MariaDB that requires it: ssl_* URL parameters for PyMySQL and the client tools alike.

A second throwaway server runs with a certificate signed by a test CA (issued to
127.0.0.1); its users require TLS (``REQUIRE SSL``) or a client certificate
(``REQUIRE X509``), so every success below proves the connection was encrypted.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from mariadb_server import MariaDBServer

from dbkeeper.connections.urls import DatabaseURL
from dbkeeper_mysql.server import ServerTarget
from helpers import assert_one_line_error, dbkeeper

PASSWORD = "tls s3cret;#"
QUERY = "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_version'"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(directory: Path, name: str, subject: str, ca: str, extensions: str = "") -> None:
    """A key and a certificate for *subject*, signed by the CA named *ca*."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={subject}", cwd=directory)  # fmt: skip
    (directory / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=directory)  # fmt: skip


@pytest.fixture(scope="module")
def certs() -> Iterator[Path]:
    """A test CA, the server's certificate (for 127.0.0.1), a client certificate, and an unrelated CA."""
    with tempfile.TemporaryDirectory(prefix="dbkeeper-tls-") as name:
        directory = Path(name)
        directory.chmod(0o755)  # mariadbd runs as the mysql user
        for ca in ("ca", "other-ca"):
            _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                     "-days", "2", "-subj", f"/CN=dbkeeper {ca}", cwd=directory)  # fmt: skip
        _issue(directory, "server", "127.0.0.1", "ca", "subjectAltName=IP:127.0.0.1\n")
        _issue(directory, "client", "x509_user", "ca")
        for path in directory.iterdir():
            path.chmod(0o644)  # test keys only: the server reads its key as another user
        yield directory


@pytest.fixture(scope="module")
def tls_server(certs: Path) -> Iterator[MariaDBServer]:
    """A MariaDB with TLS, and two users: one that requires TLS, one that requires a client certificate."""
    files = {"ca": "ca.pem", "cert": "server.pem", "key": "server.key"}
    options = [f"--ssl-{kind}={certs / name}" for kind, name in files.items()]
    with MariaDBServer.started(options) as server:
        secret = PASSWORD.replace("'", "''")
        server.execute(
            "CREATE DATABASE shop CHARACTER SET utf8mb4",
            "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40))",
            "INSERT INTO shop.items VALUES (1, 'über'), (2, '🎉')",
            f"CREATE USER 'tls_user'@'%' IDENTIFIED BY '{secret}' REQUIRE SSL",
            f"CREATE USER 'x509_user'@'%' IDENTIFIED BY '{secret}' REQUIRE X509",
            "GRANT ALL PRIVILEGES ON *.* TO 'tls_user'@'%', 'x509_user'@'%'",
        )
        yield server


def url(server: MariaDBServer, database: str, query: str, *, user: str = "tls_user", host: str = "127.0.0.1") -> str:
    return f"mysql://{user}:{quote(PASSWORD, safe='')}@{host}:{server.port}/{database}?{query}"


def test_queries_are_encrypted_and_the_server_is_verified(tls_server: MariaDBServer, certs: Path) -> None:
    for mode in ("required", "verify_ca", "verify_identity"):
        run = dbkeeper("query", url(tls_server, "shop", f"ssl_mode={mode}&ssl_ca={certs / 'ca.pem'}"), QUERY, "--json")
        assert run.json()["rows"][0][0].startswith("TLS"), mode  # type: ignore[index]
    wrong_ca = dbkeeper("query", url(tls_server, "shop", f"ssl_ca={certs / 'other-ca.pem'}"), QUERY, check=False)
    assert_one_line_error(wrong_ca, "certificate verify failed")
    wrong_host = url(tls_server, "shop", f"ssl_mode=verify_identity&ssl_ca={certs / 'ca.pem'}", host="localhost")
    assert_one_line_error(dbkeeper("query", wrong_host, QUERY, check=False), "Hostname mismatch", "'localhost'")
    no_tls = dbkeeper("query", url(tls_server, "shop", "ssl_mode=disabled"), QUERY, check=False)
    assert_one_line_error(no_tls, "Access denied for user 'tls_user'")
    assert PASSWORD not in no_tls.err


@pytest.mark.parametrize("tools", ["client", "python"])
def test_backup_and_restore_over_tls(tls_server: MariaDBServer, certs: Path, tmp_path: Path, tools: str) -> None:
    """mariadb-dump/mariadb (option file) and PyMySQL alike; the user cannot connect without TLS."""
    tls = f"ssl_mode=verify_identity&ssl_ca={certs / 'ca.pem'}"
    env = {"DBKEEPER_MYSQL_TOOLS": tools}
    manifest = dbkeeper("backup", url(tls_server, "shop", tls), "--dir", str(tmp_path), "--json", env=env).json()
    assert manifest["row_counts"] == {"items": 2}  # type: ignore[index]
    target = f"restored_{tools}"
    dbkeeper("restore", manifest["id"], url(tls_server, target, tls), "--dir", str(tmp_path), env=env)  # type: ignore[index]
    assert tls_server.execute(f"SELECT id, name FROM `{target}`.items ORDER BY id") == [(1, "über"), (2, "🎉")]


def test_client_certificates(tls_server: MariaDBServer, certs: Path, tmp_path: Path) -> None:
    tls = f"ssl_ca={certs / 'ca.pem'}&ssl_cert={certs / 'client.pem'}&ssl_key={certs / 'client.key'}"
    run = dbkeeper("query", url(tls_server, "shop", tls, user="x509_user"), QUERY, "--json")
    assert run.json()["rows"][0][0].startswith("TLS")  # type: ignore[index]
    dbkeeper("backup", url(tls_server, "shop", tls, user="x509_user"), "--dir", str(tmp_path))
    without = dbkeeper("query", url(tls_server, "shop", f"ssl_ca={certs / 'ca.pem'}", user="x509_user"), QUERY,
                       check=False)  # fmt: skip
    assert_one_line_error(without, "Access denied for user 'x509_user'")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("ssl_mode=verify_ca", "needs ssl_ca="),
        ("ssl_mode=sometimes", "use one of disabled, required, verify_ca, verify_identity"),
        ("ssl_ca=/nonexistent/ca.pem", "cannot use the TLS files of the URL"),
        ("ssl_cert=/tmp/c.pem", "ssl_cert and ssl_key go together"),
    ],
)
def test_bad_tls_parameters_are_one_line_errors(tls_server: MariaDBServer, query: str, message: str) -> None:
    assert_one_line_error(dbkeeper("query", url(tls_server, "shop", query), "SELECT 1", check=False), message)


def test_the_client_tools_verify_the_server_too(tls_server: MariaDBServer, certs: Path) -> None:
    """The option file the tools get makes the stock ``mariadb`` client check the certificate and the host name."""
    client = shutil.which("mariadb") or "mysql"

    def tool_connects(query: str, host: str = "127.0.0.1") -> subprocess.CompletedProcess[str]:
        target = ServerTarget.from_url(DatabaseURL.parse(url(tls_server, "shop", query, host=host)))
        with target.option_file() as options:  # /dev/fd/N (an in-memory file), or a private file elsewhere
            descriptors = (int(options.removeprefix("/dev/fd/")),) if options.startswith("/dev/fd/") else ()
            argv = [client, f"--defaults-file={options}", "-N", "-e", QUERY]
            return subprocess.run(argv, capture_output=True, text=True, check=False, pass_fds=descriptors)

    good = tool_connects(f"ssl_mode=verify_identity&ssl_ca={certs / 'ca.pem'}")
    assert good.returncode == 0 and "TLS" in good.stdout, good.stderr
    wrong_ca = tool_connects(f"ssl_ca={certs / 'other-ca.pem'}")
    assert wrong_ca.returncode != 0 and "certificate" in wrong_ca.stderr.lower(), wrong_ca.stderr
    wrong_host = tool_connects(f"ssl_mode=verify_identity&ssl_ca={certs / 'ca.pem'}", host="localhost")
    assert wrong_host.returncode != 0, wrong_host.stdout


def test_without_tls_parameters_tls_is_used_when_the_server_offers_it(tls_server: MariaDBServer) -> None:
    """PyMySQL's default, kept by the driver's own context: the REQUIRE SSL user gets in, encrypted."""
    run = dbkeeper("query", url(tls_server, "shop", ""), QUERY, "--json")
    assert run.json()["rows"][0][0].startswith("TLS")  # type: ignore[index]
