"""Pristine data directories for drills: made once per server build, copied by every later drill.

A drill without ``--into`` needs a fresh data directory for its throwaway server. Making one
(``initdb``, ``mariadb-install-db``) takes about half a second; copying the result takes a
tenth of that. :func:`pristine_data_directory` makes *target* a fresh data directory: a copy
of the cached one of its :class:`PristineKey`, or — the first time, or when the cache is off
or unusable — the driver's own *build*, whose result it then stores for the next drills.

The cache is ``$XDG_CACHE_HOME/dbkeeper/drill-templates`` (``~/.cache/…`` by default), its
directories 0700, one entry per key: ``ENTRY/data`` (the data directory, copied with ``cp``,
or :func:`shutil.copytree` where it cannot be used: modes and times kept) and
``ENTRY/complete.json`` (the key, written last). An entry is built in a hidden sibling and
renamed into place, so a drill killed half way leaves no entry that looks whole; one
without its marker is rebuilt. Two drills that build the same entry at once both succeed:
the loser of the rename uses its own copy.
Entries of server binaries that changed or are gone are removed, and at most
:data:`MAX_ENTRIES` are kept (the least recently used go first). ``DBKEEPER_DRILL_CACHE=0``
turns the cache off. A cache that cannot be written costs one note, never the drill.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dbkeeper.system.notes import note

CACHE_ENV = "DBKEEPER_DRILL_CACHE"
"""``0`` turns the cache off: every drill builds its data directory."""
MAX_ENTRIES = 4
"""Entries kept at most (each a data directory: about 40 MB for PostgreSQL, 80 MB for MariaDB)."""
MARKER = "complete.json"
"""Written last into an entry: an entry without it is half written."""
BUILDING = ".building-"
"""Prefix of an entry being built (``.building-PID-…``), removed by later drills once PID is gone."""
REMOVING = ".removing-"
"""Prefix of an entry renamed away to be removed (a drill still copying it then fails, and builds instead)."""


@dataclass(frozen=True)
class PristineKey:
    """What shapes a pristine data directory: the engine, its server binaries and the options it was made with."""

    engine: str
    programs: tuple[Path, ...]
    """The server binaries (path, size and modification time of each are part of the key)."""
    version: str
    """The version the server binaries report."""
    options: tuple[str, ...]
    """Every option that shapes the result (encoding, locale, user, settings), not the paths that vary per drill."""

    def description(self) -> dict[str, object]:
        """The key as recorded in an entry's marker: no secret, only binaries, a version and options."""
        return {
            "engine": self.engine,
            "programs": [_identity(path) for path in self.programs],
            "version": self.version,
            "options": list(self.options),
        }

    def name(self) -> str:
        """The entry's directory name: the engine and a digest of the whole key."""
        import hashlib

        digest = hashlib.sha256(json.dumps(self.description(), sort_keys=True).encode()).hexdigest()
        return f"{self.engine}-{digest[:24]}"


def _identity(path: Path) -> list[object]:
    """``[path, size, mtime_ns]`` of *path* as it is now (``[path]`` when it is gone)."""
    try:
        status = path.stat()
    except OSError:
        return [str(path)]
    return [str(path), status.st_size, status.st_mtime_ns]


def cache_directory() -> Path:
    """``$XDG_CACHE_HOME/dbkeeper/drill-templates``, ``~/.cache/dbkeeper/drill-templates`` by default."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dbkeeper" / "drill-templates"


def pristine_data_directory(
    target: Path,
    key: PristineKey,
    build: Callable[[Path], None],
    *,
    owner: pwd.struct_passwd | None = None,
    what: str = "the data directory",
) -> bool:
    """Make *target* (not existing yet) a fresh data directory of *key*; True when it was copied from the cache.

    *build(target)* makes it the driver's way (``initdb``); its errors propagate. *owner*:
    the user the copy is given to (the server's, when dbkeeper runs as root). *what* names
    the result in notes (``initdb's data directory``).
    """
    if os.environ.get(CACHE_ENV, "1").strip() == "0":
        build(target)
        return False
    entry = cache_directory() / key.name()
    if _copied(entry, target, owner):
        note(f"the drill's server starts on a copy of {what} cached in {entry} ({CACHE_ENV}=0 makes a new one)")
        return True
    build(target)
    try:
        _store(target, entry, key)
    except OSError as exc:
        note(f"cannot cache {what} for the next drills in {entry.parent} ({_reason(exc)}): each drill makes its own")
    return False


def _reason(exc: OSError) -> str:
    """Why the cache could not be written, in a few words (``No space left on device: PATH``)."""
    if isinstance(exc, shutil.Error) and exc.args and exc.args[0]:
        return str(exc.args[0][0][2])  # copytree's first failure: (source, target, why)
    if exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)


def _copied(entry: Path, target: Path, owner: pwd.struct_passwd | None) -> bool:
    """Copy *entry*'s data directory to *target* if the entry is whole; False (and nothing at *target*) if not."""
    marker = entry / MARKER
    if not marker.is_file():
        return False
    try:
        _copy(entry / "data", target)
        if not marker.is_file():  # the entry was renamed away to be removed while we copied it
            raise FileNotFoundError(marker)
        if owner is not None:
            _give(target, owner)
        with contextlib.suppress(OSError):
            os.utime(marker)  # recently used: kept longest
    except OSError:
        shutil.rmtree(target, ignore_errors=True)
        return False
    return True


def _copy(source: Path, target: Path) -> None:
    """Copy the directory *source* to *target* (modes and times kept, symbolic links as links).

    With ``cp`` (see :func:`_tied`), else ``shutil.copytree``: a copytree took twice as long
    beside the drill's other thread (PostgreSQL's warm-up), waiting for the interpreter between
    the thousand files.
    """
    if _tied("cp", "--recursive", "--no-dereference", "--preserve=mode,timestamps", "--", str(source), str(target)):
        return
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True)


def _give(directory: Path, owner: pwd.struct_passwd) -> None:
    """Make *owner* the owner of *directory* and everything in it (symbolic links themselves, not their targets)."""
    owners = f"{owner.pw_uid}:{owner.pw_gid}"
    if _tied("chown", "--recursive", "--no-dereference", owners, "--", str(directory)):
        return
    for parent, _dirs, files in os.walk(directory):  # each directory is a parent once
        os.chown(parent, owner.pw_uid, owner.pw_gid)
        for name in files:
            os.chown(os.path.join(parent, name), owner.pw_uid, owner.pw_gid, follow_symlinks=False)


def _tied(program: str, *args: str) -> bool:
    """Run *program* killed with this thread (``setpriv --pdeathsig KILL``); False when that cannot be done or fails.

    A file tool running on after a drill was killed with ``kill -9`` would write on into the
    directory the drill's watchdog is removing, which then stays. Without ``setpriv`` (or
    one older than util-linux 2.33) the caller does the work in Python instead.
    """
    setpriv, path = shutil.which("setpriv"), shutil.which(program)
    if setpriv is None or path is None:
        return False
    argv = [setpriv, "--pdeathsig", "KILL", path, *args]
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False).returncode == 0


def _store(data: Path, entry: Path, key: PristineKey) -> None:
    """Store a copy of *data* as *entry*: built in a hidden sibling, made durable, marked, renamed into place."""
    import tempfile

    cache = entry.parent
    cache.parent.parent.mkdir(parents=True, exist_ok=True)
    for directory in (cache.parent, cache):  # dbkeeper/ and drill-templates/: ours, owner only
        directory.mkdir(mode=0o700, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"{BUILDING}{os.getpid()}-", dir=cache))  # 0700
    try:
        _copy(data, building / "data")
        _sync(building)
        marker = os.open(building / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(marker, "w") as file:
            json.dump(key.description(), file, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        if entry.exists() and not (entry / MARKER).is_file():
            _remove(entry)  # half written (or damaged): replaced by ours
        with contextlib.suppress(OSError):  # an entry already there: another drill's, as good as ours
            os.rename(building, entry)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    _prune(cache, keep=entry)


def _sync(directory: Path) -> None:
    """Flush every file and directory under *directory* to disk: a marked entry must survive a crash whole."""
    for parent, _dirs, files in os.walk(directory):
        for path in (*(os.path.join(parent, name) for name in files), parent):
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _prune(cache: Path, *, keep: Path) -> None:
    """Remove leftovers of dead drills, entries of binaries that changed or are gone, then all but MAX_ENTRIES."""
    whole: list[tuple[float, Path]] = []
    for path in _entries(cache):
        if path.name.startswith((BUILDING, REMOVING)):
            if path.name.startswith(REMOVING) or not _alive(path.name.removeprefix(BUILDING)):
                _remove(path)
            continue
        used = _last_used(path)
        if path != keep and (used is None or not _current(path)):
            _remove(path)
        elif used is not None:
            whole.append((used, path))
    for _used, path in sorted(whole, reverse=True)[MAX_ENTRIES:]:
        if path != keep:
            _remove(path)


def _entries(cache: Path) -> Iterator[Path]:
    with contextlib.suppress(OSError):
        yield from (path for path in cache.iterdir() if path.is_dir() and not path.is_symlink())


def _last_used(entry: Path) -> float | None:
    """When *entry* was last used (its marker's time), None for an entry without a marker."""
    try:
        return (entry / MARKER).stat().st_mtime
    except OSError:
        return None


def _current(entry: Path) -> bool:
    """Whether *entry*'s server binaries are still there, unchanged (path, size, modification time)."""
    try:
        recorded = json.loads((entry / MARKER).read_text())
        programs: Sequence[list[object]] = recorded["programs"]
        return all(program == _identity(Path(str(program[0]))) for program in programs)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False


def _alive(name: str) -> bool:
    """Whether the process whose id starts *name* (``PID-…``) still runs."""
    pid = name.partition("-")[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's: alive
    return True


def _remove(entry: Path) -> None:
    """Rename *entry* away (a drill copying it then fails instead of copying half), then delete it."""
    gone = entry.with_name(f"{REMOVING}{os.getpid()}-{entry.name}")
    try:
        os.rename(entry, gone)
    except OSError:
        return
    shutil.rmtree(gone, ignore_errors=True)
