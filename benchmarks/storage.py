"""Time dbkeeper's backups to S3 against the native pipeline to S3, and against dbkeeper's local backups.

    .venv/bin/python benchmarks/storage.py [--size-mib 100,1024] [--runs 3] [--workdir .bench] [--no-restore]

It starts moto's S3 server on loopback (tests/s3_server.py) and, per size, builds or reuses
the SQLite sample database of benchmarks/sqlite_backup.py in a fresh bucket B, then times
in turn, in one run:

    native to S3       sqlite3 DB ".backup snap.db" && zstd -q -3 -T2 -c snap.db
                           | aws s3 cp - s3://B/native/x.zst
    dbkeeper to S3     dbkeeper -q backup sqlite:///DB --dir s3://B/dbkeeper
    dbkeeper to local  dbkeeper -q backup sqlite:///DB --dir backups

and the same three encrypted for one new age key: ``… | age -r PUB | aws s3 cp - …``
against ``--recipient PUB``. Then, unless --no-restore, the restores of the backups the
last runs left:

    native from S3     aws s3 cp s3://B/native/x.zst - | zstd -q -dc > restored.db
                           (``| age -d -i key.txt |`` before zstd when encrypted)
    dbkeeper from S3   dbkeeper -q restore ID sqlite:///restored.db --dir s3://B/dbkeeper
    dbkeeper from local, and --identity key.txt when encrypted

``aws`` is the AWS CLI from PyPI in this environment, pointed at the same server by
AWS_ENDPOINT_URL; ``-T`` is the number of cores, dbkeeper's default. Every command is
timed as benchmarks/harness.py describes: once untimed, then in turn --runs times, the
previous run's objects or files deleted first. Per size it prints the best-of table, then
the medians with the ratios of the issue-13 goals (dbkeeper to S3 / native, dbkeeper to
S3 / dbkeeper to local) and dbkeeper's peak RSS, and the CPU seconds with the ratios again,
moto's own CPU added to the S3 sides (read from /proc in one more, untimed run of each: the
server is not a child of the command, and on a small machine it takes cores from it); at
the end, each goal's verdict. A pipeline's tree RSS is its biggest process (GNU time's
``%M``). dbkeeper fsyncs what it restores and checks it, the native restore does neither.
This is a measurement, not a test: it never fails on slow numbers.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import (
    CORES,
    REPO,
    Side,
    compare,
    dbkeeper,
    measure,
    print_columns,
    print_end,
    print_start,
    print_table,
    remove,
    require,
)
from sqlite_backup import human, sample_database

sys.path.insert(0, str(REPO / "tests"))
from s3_server import S3Server, s3_server

AWS = Path(sys.executable).parent / "aws"
NATIVE_GOAL = 1.0
"""Issue 13: dbkeeper to S3 no slower than the native pipeline to S3 (median / median)."""
LOCAL_GOAL = 1.15
"""Issue 13: dbkeeper to S3 within this factor of dbkeeper to a local directory."""
RSS_GOAL_MIB = 100e6 / 2**20
"""Issue 13: peak RSS under 100 MB (95.4 MiB)."""
FLAT_GOAL = 0.10
"""What "flat" is taken to mean here: the peak at the largest size at most 10% above the one at the smallest."""


@dataclass
class Key:
    """An age identity file and its public key."""

    identity: Path
    recipient: str


@dataclass
class Store:
    """A bucket of the S3 server, for one database size."""

    server: S3Server
    bucket: str

    def url(self, prefix: str) -> str:
        """The ``s3://`` URL of *prefix* in the bucket."""
        return f"s3://{self.bucket}/{prefix}"

    def clear(self, prefix: str) -> Callable[[], None]:
        """A cleanup that deletes the objects and pending multipart uploads under *prefix*."""

        def cleanup() -> None:
            client = self.server.client()
            for item in client.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", []):
                client.delete_object(Bucket=self.bucket, Key=item["Key"])
            uploads = client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix).get("Uploads", [])
            for upload in uploads:
                client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])

        return cleanup

    def stored(self, prefix: str) -> int:
        """The bytes of the objects under *prefix*."""
        contents = self.server.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return sum(item["Size"] for item in contents)


@dataclass
class Trio:
    """One operation on three sides: the native pipeline with S3, dbkeeper with S3, dbkeeper with a local directory."""

    operation: str
    native: Side
    s3: Side
    local: Side

    @property
    def sides(self) -> list[Side]:
        """The three sides, native first."""
        return [self.native, self.s3, self.local]

    @property
    def references(self) -> dict[str, str]:
        """For the best-of table: both dbkeeper sides against the native one."""
        return {self.s3.label: self.native.label, self.local.label: self.native.label}


@dataclass
class Result:
    """Everything measured for one database size."""

    db_bytes: int
    trios: list[Trio]
    stored: dict[str, int]
    server: dict[str, float]
    """The S3 server's CPU seconds in one more run of each S3 side, by label."""


def make_key(directory: Path) -> Key:
    """A new age key in *directory* (``key.txt``, mode 0600)."""
    identity = directory / "key.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    identity.chmod(0o600)
    recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True)
    return Key(identity, recipient.stdout.strip())


def server_seconds(server: S3Server) -> float:
    """The CPU time (user + system) the S3 server process has used so far."""
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(server: S3Server, trios: Sequence[Trio], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """The server's CPU seconds in one more run of each S3 side of *trios* (not a child, so not in the CPU column)."""
    spent = {}
    for side in (side for trio in trios for side in (trio.native, trio.s3)):
        side.cleanup()
        os.sync()
        before = server_seconds(server)
        measure(side.argv, cwd, env)
        spent[side.label] = server_seconds(server) - before
        print(f"  server CPU: {side.label}: {spent[side.label]:.2f}s", flush=True)
    return spent


def bash(command: str) -> list[str]:
    """*command* run by bash, failing when any part of a pipeline fails."""
    return ["bash", "-c", f"set -o pipefail; {command}"]


def backup_trio(db: Path, store: Store, run_dir: Path, key: Key | None) -> Trio:
    """The three backups of *db*, encrypted for *key* when given."""
    encrypt = f" | age -r {shlex.quote(key.recipient)}" if key else ""
    suffix = "-age" if key else ""
    native_url = store.url(f"native{suffix}/x.zst{'.age' if key else ''}")
    snapshot = f"sqlite3 {shlex.quote(str(db))} '.backup snap.db' && zstd -q -3 -T{CORES} -c snap.db"
    upload = f"{shlex.quote(str(AWS))} s3 cp --only-show-errors - {shlex.quote(native_url)}"
    option = ["--recipient", key.recipient] if key else []
    flag = " --recipient" if key else ""
    local = run_dir / f"backups{suffix}"
    return Trio(
        "backup" + (" encrypted" if key else ""),
        Side(
            f"native{'+age' if key else ''} to S3",
            bash(f"{snapshot}{encrypt} | {upload}"),
            _both(remove(run_dir / "snap.db"), store.clear(f"native{suffix}/")),
        ),
        Side(
            f"dbkeeper{flag} to S3",
            dbkeeper("backup", f"sqlite:///{db}", "--dir", store.url(f"dbkeeper{suffix}"), *option),
            store.clear(f"dbkeeper{suffix}/"),
        ),
        Side(
            f"dbkeeper{flag} to local",
            dbkeeper("backup", f"sqlite:///{db}", "--dir", str(local), *option),
            remove(local),
        ),
    )


def restore_trio(backups: Trio, store: Store, run_dir: Path, key: Key | None) -> Trio:
    """The three restores of what *backups* left, decrypting with *key* when given."""
    suffix = "-age" if key else ""
    native_url = store.url(f"native{suffix}/x.zst{'.age' if key else ''}")
    decrypt = f" | age -d -i {shlex.quote(str(key.identity))}" if key else ""
    option = ["--identity", str(key.identity)] if key else []
    flag = " --identity" if key else ""
    targets = [run_dir / f"restored-{side}{suffix}.db" for side in ("native", "s3", "local")]
    download = f"{shlex.quote(str(AWS))} s3 cp --only-show-errors {shlex.quote(native_url)} -"
    return Trio(
        "restore" + (" encrypted" if key else ""),
        Side(
            f"native{'+age' if key else ''} from S3",
            bash(f"{download}{decrypt} | zstd -q -dc > {shlex.quote(str(targets[0]))}"),
            remove(targets[0]),
        ),
        Side(
            f"dbkeeper{flag} from S3",
            dbkeeper(
                "restore",
                backups.s3.last_line,
                f"sqlite:///{targets[1]}",
                "--dir",
                store.url(f"dbkeeper{suffix}"),
                *option,
            ),
            remove(targets[1]),
        ),
        Side(
            f"dbkeeper{flag} from local",
            dbkeeper(
                "restore",
                backups.local.last_line,
                f"sqlite:///{targets[2]}",
                "--dir",
                str(run_dir / f"backups{suffix}"),
                *option,
            ),
            remove(targets[2]),
        ),
    )


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def cleanup() -> None:
        first()
        second()

    return cleanup


def bench_size(server: S3Server, db: Path, runs: int, workdir: Path, *, restore: bool, keep: bool) -> Result:
    """Measure the backups (and restores) of *db* with the sides of :func:`backup_trio`."""
    run_dir = workdir / f"storage-{db.stat().st_size}"
    remove(run_dir)()
    run_dir.mkdir(parents=True)
    key = make_key(run_dir)
    store = Store(server, server.bucket("bench"))
    env = {**os.environ, **server.env}
    backups = [backup_trio(db, store, run_dir, k) for k in (None, key)]
    print(f"backups of {human(db.stat().st_size)} to s3://{store.bucket}, {runs} runs each:", flush=True)
    print("the S3 server's CPU in one run of each S3 side, then the timed runs:", flush=True)
    spent = server_cpu(server, backups, run_dir, env)
    compare([side for trio in backups for side in trio.sides], runs, run_dir, env)
    stored = {prefix: store.stored(prefix + "/") for prefix in ("native", "dbkeeper", "native-age", "dbkeeper-age")}
    trios = list(backups)
    if restore:
        restores = [restore_trio(trio, store, run_dir, k) for trio, k in zip(backups, (None, key), strict=True)]
        print("restores of the backups the last runs made:", flush=True)
        spent |= server_cpu(server, restores, run_dir, env)
        compare([side for trio in restores for side in trio.sides], runs, run_dir, env)
        trios += restores
    store.clear("")()
    if not keep:
        remove(run_dir)()
    return Result(db.stat().st_size, trios, stored, spent)


def print_result(result: Result, runs: int) -> None:
    """One size: the best-of table, what each side stored, then the medians and the goals' ratios."""
    print(f"\n{human(result.db_bytes)} database: best of {runs} runs")
    references = {label: other for trio in result.trios for label, other in trio.references.items()}
    print_table([side for trio in result.trios for side in trio.sides], references)
    print(
        "stored in S3: "
        + ", ".join(f"{prefix} {human(size)} ({result.db_bytes / size:.2f}x)" for prefix, size in result.stored.items())
    )
    print(f"\n{human(result.db_bytes)} database: medians of {runs} runs, dbkeeper's peak RSS (highest run, tree)")
    headers = ["operation", "native s", "S3 s", "local s", "S3/native", "S3/local", "RSS S3 MiB", "RSS local MiB"]
    rows = [
        [
            trio.operation,
            f"{trio.native.median:.2f}",
            f"{trio.s3.median:.2f}",
            f"{trio.local.median:.2f}",
            f"{trio.s3.median / trio.native.median:.3f}",
            f"{trio.s3.median / trio.local.median:.3f}",
            f"{trio.s3.tree_rss_mib:.0f}",
            f"{trio.local.tree_rss_mib:.0f}",
        ]
        for trio in result.trios
    ]
    print_columns(headers, rows)
    print_cpu(result, runs)


def print_cpu(result: Result, runs: int) -> None:
    """CPU seconds per operation, the S3 server's added to the S3 sides: steadier than wall time on a busy machine."""
    print(f"\n{human(result.db_bytes)} database: CPU s (least of {runs} runs; server: moto's, in one more run)")
    headers = ["operation", "native", "native+server", "S3", "S3+server", "local", "S3/native", "S3/local"]
    rows = []
    for trio in result.trios:
        native = trio.native.cpu + result.server[trio.native.label]
        s3 = trio.s3.cpu + result.server[trio.s3.label]
        rows.append(
            [trio.operation, f"{trio.native.cpu:.2f}", f"{native:.2f}", f"{trio.s3.cpu:.2f}", f"{s3:.2f}",
             f"{trio.local.cpu:.2f}", f"{s3 / native:.3f}", f"{s3 / trio.local.cpu:.3f}"]
        )  # fmt: skip
    print_columns(headers, rows)
    print("ratios with the server's CPU: S3+server / native+server, S3+server / local")


def dbkeeper_rss(result: Result) -> float:
    """The highest peak RSS (tree) of any dbkeeper backup in *result*, in MiB."""
    return max(
        side.tree_rss_mib for trio in result.trios if trio.operation.startswith("backup") for side in trio.sides[1:]
    )


def print_verdicts(results: Sequence[Result]) -> None:
    """Each issue-13 goal, met or missed, on one line each."""
    print("\nissue-13 goals (backups, medians):")
    for result in results:
        for trio in result.trios:
            if not trio.operation.startswith("backup"):
                continue
            for name, other, goal in (("native", trio.native, NATIVE_GOAL), ("local", trio.local, LOCAL_GOAL)):
                ratio = trio.s3.median / other.median
                verdict = "met" if ratio <= goal else f"MISSED by {(ratio / goal - 1) * 100:.0f}%"
                print(
                    f"  {human(result.db_bytes)} {trio.operation}: S3 / {name} {ratio:.3f} (goal <= {goal}): {verdict}"
                )
    peaks = [dbkeeper_rss(result) for result in results]
    verdict = "met" if max(peaks) < RSS_GOAL_MIB else "MISSED"
    print(f"  peak RSS of dbkeeper's backups {max(peaks):.0f} MiB (goal < {RSS_GOAL_MIB:.1f} MiB = 100 MB): {verdict}")
    if len(results) > 1:
        growth = peaks[-1] / peaks[0] - 1
        verdict = "met" if growth <= FLAT_GOAL else "MISSED"
        print(
            f"  flat: {peaks[0]:.0f} MiB at {human(results[0].db_bytes)}, {peaks[-1]:.0f} MiB at "
            f"{human(results[-1].db_bytes)}, {growth * 100:+.0f}% (taken as flat within {FLAT_GOAL:.0%}): {verdict}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, start the S3 server, run every size, print the tables and the verdicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size-mib", default="100,1024", help="database sizes in MiB, comma-separated (default 100,1024)"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per side (default 3; medians and best shown)")
    parser.add_argument("--seed", type=int, default=42, help="sample database seed (default 42)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench", help="where databases and runs go")
    parser.add_argument("--no-restore", action="store_true", help="time the backups only")
    parser.add_argument("--keep", action="store_true", help="keep the local backups and restored files")
    args = parser.parse_args(argv)
    try:
        sizes = sorted(int(text) * 2**20 for text in args.size_mib.split(","))
    except ValueError:
        parser.error(f"--size-mib takes whole MiB, comma-separated (e.g. 100,1024), not {args.size_mib!r}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if problem := require(["sqlite3", "zstd", "age", "age-keygen", str(AWS)], "dbkeeper: run bash scripts/setup.sh"):
        parser.error(problem)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print_start(args.workdir)
    results = []
    with s3_server() as server:
        for size in sizes:
            print(f"\n== {human(size)} ==")
            db = sample_database(size, args.seed, args.workdir)
            results.append(bench_size(server, db, args.runs, args.workdir, restore=not args.no_restore, keep=args.keep))
    for result in results:
        print_result(result, args.runs)
    print_verdicts(results)
    print_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
