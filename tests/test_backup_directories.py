"""Backup directories that cannot be used (issue 9 items 6, 13, 14).

Item 6: ``--dir somefile/sub`` and read-only file systems (real tmpfs mounts remounted
read-only) for backups, restore targets and deep-verify scratch — before, ``unexpected
NotADirectoryError/OSError … bug``. Item 13: ``--dir s3://bucket/x`` made a local folder
``s3:/bucket/x``. Item 14: a backup that failed before writing anything left an empty
``./backups/`` behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from small_fs import compressible_db, everything_in, read_only, small_file_system

from helpers import BIN, Run, assert_one_line_error, dbkeeper


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A small SQLite database."""
    return compressible_db(tmp_path / "app.db", 1)


@pytest.fixture
def frozen(tmp_path: Path, db: Path) -> Iterator[Path]:
    """A file system holding a backup directory with one backup of *db*, then remounted read-only."""
    with small_file_system(tmp_path / "ro", "8m") as mount:
        dbkeeper("backup", f"sqlite:///{db}", "--dir", str(mount / "bk"))
        read_only(mount)
        yield mount


# item 6 -------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["sub", "sub/deeper"])
def test_backup_dir_through_a_file(tmp_path: Path, db: Path, sub: str) -> None:
    (tmp_path / "afile").write_text("not a directory")
    run = dbkeeper("backup", f"sqlite:///{db}", "--dir", f"afile/{sub}", cwd=tmp_path, check=False)
    assert_one_line_error(
        run, f"cannot use afile/{sub} as a directory: afile is a file", "choose another backup directory"
    )
    assert (tmp_path / "afile").read_text() == "not a directory"


@pytest.mark.parametrize("sub", ["", "/sub"])
def test_backup_dir_through_a_symbolic_link_to_nothing(tmp_path: Path, db: Path, sub: str) -> None:
    (tmp_path / "bk").symlink_to(tmp_path / "unmounted")
    run = dbkeeper("backup", f"sqlite:///{db}", "--dir", f"bk{sub}", cwd=tmp_path, check=False)
    assert_one_line_error(
        run, f"bk is a symbolic link to {tmp_path / 'unmounted'}, which does not exist", "create that directory"
    )
    assert not (tmp_path / "unmounted").exists()


def test_configured_backup_dir_that_is_a_file(tmp_path: Path, db: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    (tmp_path / "dbkeeper.toml").write_text('backup_dir = "afile"\n')
    run = dbkeeper("backup", f"sqlite:///{db}", cwd=tmp_path, check=False)
    assert_one_line_error(run, "afile as a directory: it is a file")


def test_restore_target_through_a_file(tmp_path: Path, db: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    dbkeeper("backup", f"sqlite:///{db}", "--dir", "bk", cwd=tmp_path)
    run = dbkeeper("restore", "latest", "sqlite:///afile/copy.db", "--dir", "bk", cwd=tmp_path, check=False)
    assert_one_line_error(run, "cannot use afile as a directory: it is a file", "restore to another location")


def test_backup_into_a_read_only_file_system(frozen: Path, db: Path) -> None:
    before = everything_in(frozen)
    for directory in (frozen / "bk", frozen / "new" / "bk"):
        run = dbkeeper("backup", f"sqlite:///{db}", "--dir", str(directory), check=False)
        assert_one_line_error(
            run, f"the file system mounted at {frozen} is read-only", "remount it read-write, or choose another backup"
        )
    assert everything_in(frozen) == before


def test_a_read_only_backup_directory_verifies_deeply_and_restores(frozen: Path, tmp_path: Path, db: Path) -> None:
    """Backups on a read-only medium: their scratch space goes to the temporary directory instead."""
    backups = str(frozen / "bk")
    before = everything_in(frozen)
    assert dbkeeper("verify", "latest", "--dir", backups).out.startswith("ok ")
    assert len(dbkeeper("backups", "list", "--dir", backups, "--json").json()) == 1
    assert dbkeeper("verify", "latest", "--deep", "--dir", backups).out.startswith("ok ")
    dbkeeper("restore", "latest", f"sqlite:///{tmp_path / 'copy.db'}", "--dir", backups)
    assert _dump(tmp_path / "copy.db") == _dump(db)
    assert everything_in(frozen) == before


def test_restore_into_a_read_only_file_system(frozen: Path, tmp_path: Path, db: Path) -> None:
    dbkeeper("backup", f"sqlite:///{db}", "--dir", str(tmp_path / "bk"))
    before = everything_in(frozen)
    for target in (frozen / "copy.db", frozen / "sub" / "copy.db"):
        run = dbkeeper("restore", "latest", f"sqlite:///{target}", "--dir", str(tmp_path / "bk"), check=False)
        assert_one_line_error(run, f"the file system mounted at {frozen} is read-only", "restore to another location")
    assert everything_in(frozen) == before


def test_directories_this_user_may_not_write(db: Path) -> None:
    """As an unprivileged user (root writes anywhere): a locked backup directory and restore target directory."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        base.chmod(0o755)  # pytest's tmp_path is root's alone
        shutil.copyfile(db, base / "app.db")
        (base / "app.db").chmod(0o644)
        dbkeeper("backup", f"sqlite:///{base / 'app.db'}", "--dir", str(base / "bk"))
        subprocess.run(["chown", "-R", "nobody", str(base / "bk")], check=True)
        (base / "locked").mkdir(mode=0o555)
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(BIN / "dbkeeper")]
        runs = [
            _run([*as_nobody, "backup", f"sqlite:///{base / 'app.db'}", "--dir", str(base / "locked" / "bk")]),
            _run(
                [*as_nobody, "restore", "latest", f"sqlite:///{base / 'locked' / 'copy.db'}", "--dir", str(base / "bk")]
            ),
        ]
        assert_one_line_error(runs[0], f"permission denied on {base / 'locked' / 'bk'}", "choose another backup")
        assert_one_line_error(runs[1], "permission denied on", f"give this user access to {base / 'locked'}")
        assert list((base / "locked").iterdir()) == []


def _dump(path: Path) -> str:
    return subprocess.run(["sqlite3", str(path), ".dump"], capture_output=True, text=True, check=True).stdout


def _run(argv: list[str]) -> Run:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    return Run(proc.returncode, proc.stdout, proc.stderr)


# item 13 ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["backup", "sqlite:///app.db"], ["backups", "list"], ["verify", "latest"]])
def test_storage_url_without_a_storage_plugin_names_what_to_install(
    tmp_path: Path, db: Path, command: list[str]
) -> None:
    """A URL is a storage, never a local folder 's3:' in disguise; an unknown scheme says what is missing."""
    run = dbkeeper(*command, "--dir", "gs://bucket/x", cwd=tmp_path, check=False)
    assert_one_line_error(run, "no storage for 'gs://' URLs", "install the plugin that does")
    assert not (tmp_path / "gs:").exists()


def test_configured_storage_url_without_a_plugin_is_an_error(tmp_path: Path, db: Path) -> None:
    (tmp_path / "dbkeeper.toml").write_text('backup_dir = "gs://bucket/x"\n')
    run = dbkeeper("backup", "sqlite:///app.db", cwd=tmp_path, check=False)
    assert_one_line_error(run, "no storage for 'gs://' URLs")
    assert not (tmp_path / "gs:").exists()


def test_storage_url_with_credentials_is_refused(tmp_path: Path) -> None:
    from dbkeeper import BackupManager
    from dbkeeper.errors import ConfigError

    with pytest.raises(ConfigError, match="take no user or password") as caught:
        BackupManager("s3://key:hunter2@bucket/x")
    assert "hunter2" not in str(caught.value)


# item 14 ------------------------------------------------------------------------------


def _closed_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "url",
    ["sqlite:///missing.db", "sqlite:///:memory:", "mysql://app:secret@127.0.0.1:{port}/app"],
    ids=["missing-sqlite-file", "in-memory", "mysql-refused"],
)
def test_failed_backup_leaves_no_backup_directory(tmp_path: Path, url: str) -> None:
    cwd = tmp_path / "fresh"
    cwd.mkdir()
    run = dbkeeper("backup", url.format(port=_closed_port()), cwd=cwd, check=False)
    assert_one_line_error(run)
    assert everything_in(cwd) == [], "no ./backups/"


def test_failed_backup_removes_only_the_directories_it_made(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    run = dbkeeper("backup", "sqlite:///missing.db", "--dir", "keep/new/deeper/bk", cwd=tmp_path, check=False)
    assert_one_line_error(run, "does not exist")
    assert everything_in(tmp_path) == ["keep"]
    (tmp_path / "existing").mkdir()
    dbkeeper("backup", "sqlite:///missing.db", "--dir", "existing", cwd=tmp_path, check=False)
    assert everything_in(tmp_path) == ["existing", "keep"], "a directory that was there stays"


def test_failed_first_backups_beside_good_ones_into_a_new_directory(tmp_path: Path, db: Path) -> None:
    """A failing backup removes the new directory it made; a good one started at the same moment still succeeds."""
    for round_ in range(5):
        backups = tmp_path / f"round{round_}" / "bk"
        argv = [str(BIN / "dbkeeper"), "backup", "--dir", str(backups)]
        urls = [f"sqlite:///{db}", f"sqlite:///{tmp_path / 'missing.db'}"] * 4
        procs = [
            subprocess.Popen([*argv, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for url in urls
        ]
        errors = [proc.communicate(timeout=300)[1] for proc in procs]
        unexpected = [
            f"round {round_}: backup of {url} exited {proc.returncode}, its whole stderr:\n{err}"
            for url, proc, err in zip(urls, procs, errors, strict=True)
            if (proc.returncode, "does not exist" in err) != ((1, True) if url.endswith("missing.db") else (0, False))
        ]
        assert not unexpected, "\n".join(unexpected)
        assert len(dbkeeper("backups", "list", "--dir", str(backups), "--json").json()) == 4


class _Traced:
    """``dbkeeper backup ARGS`` under strace, stopped (SIGSTOP) after its system calls on *paths*.

    Every such call, or with *first_mkdir* only the first ``mkdir`` of one of them. The
    stops are counted from strace's log, so the test decides exactly what runs in between.
    """

    def __init__(self, log: Path, args: list[str], paths: list[Path], *, first_mkdir: bool = False) -> None:
        self.log = log
        self.stops = 0
        self.paused = False
        watched = [arg for path in paths for arg in ("-P", str(path))]
        inject = "mkdir:signal=SIGSTOP:when=1" if first_mkdir else "all:signal=SIGSTOP"
        env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        self.proc = subprocess.Popen(
            ["strace", "-qq", "-o", str(log), *watched, "-e", f"inject={inject}", str(BIN / "dbkeeper"), "backup",
             *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def stopped(self) -> bool:
        """Let the command go on until it stops once more (True) or exits (False)."""
        if self.paused:
            (child,) = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            os.kill(int(child), signal.SIGCONT)
        deadline = time.monotonic() + 120
        while self.proc.poll() is None:
            if self.log.exists() and self.log.read_text().count("--- stopped by SIGSTOP ---") > self.stops:
                self.stops += 1
                self.paused = True
                return True
            assert time.monotonic() < deadline, f"neither stopped nor exited: {self.log.read_text()}"
            time.sleep(0.01)
        self.paused = False
        return False

    def stopped_at(self, count: int) -> bool:
        """Let the command go on until its *count*-th stop (True), or until it exits first (False)."""
        while self.stopped():
            if self.stops == count:
                return True
        return False

    def finish(self) -> Run:
        """Let the command run to its end, through any further stops; its outcome."""
        while self.stopped():
            pass
        out, err = self.proc.communicate(timeout=300)
        return Run(self.proc.returncode, out, err)


def test_a_failing_first_backup_removes_its_new_directories_at_every_step_of_a_good_one(
    tmp_path: Path, db: Path
) -> None:
    """The race CI once lost, forced: whatever a good first backup has done with the new directories, a failing one
    that makes their parent then and removes what it made (both empty) one step later does not make it fail.

    Round N: the good backup stops after its N-th system call on ``new/`` or ``new/bk``; the failing one stops right
    after making ``new/`` (if it still makes it); the good one makes one more such call; the failing one runs to its
    end, the good one too. Until the good one ends before its N-th such call (every step tried).
    """
    from dbkeeper.backups.repository import Repository
    from dbkeeper.backups.storage import Status

    if not shutil.which("strace"):
        pytest.fail(
            "strace is needed to stop a backup between two system calls (apt-get install strace)", pytrace=False
        )
    for step in range(1, 100):
        parent = tmp_path / f"step{step}" / "new"
        parent.parent.mkdir()
        backups = parent / "bk"
        good = _Traced(tmp_path / f"good{step}.log", ["--dir", str(backups), f"sqlite:///{db}"], [parent, backups])
        if not good.stopped_at(step):
            assert good.finish().code == 0
            return
        failing = _Traced(
            tmp_path / f"failing{step}.log",
            ["--dir", str(backups), f"sqlite:///{tmp_path / 'missing.db'}"],
            [parent],
            first_mkdir=True,
        )
        failing.stopped()
        good.stopped()
        failed = failing.finish()
        assert (failed.code, "does not exist" in failed.err) == (1, True), failed.err
        ran = good.finish()
        assert ran.code == 0, f"step {step}: the good backup exited {ran.code}, its whole stderr:\n{ran.err}"
        assert [entry.status for entry in Repository(backups).entries()] == [Status.COMPLETE]
    pytest.fail("the good backup still stopped after 99 system calls on its directories")
