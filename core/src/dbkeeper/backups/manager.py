"""Backups as a Python API: create, list, show, verify, restore, delete and prune.

:class:`BackupManager` is what the CLI calls; it knows no engine. The selected driver
writes raw bytes into artifacts; this module runs them through the stage pipeline into
its :class:`~dbkeeper.backups.storage.BackupStorage` (a local directory or an object store)
and writes the manifest last.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbkeeper.backups.manifest import ArtifactRecord, Manifest, Provenance, utc_now
from dbkeeper.backups.opening import open_storage
from dbkeeper.backups.pipeline import DecodeChain, EncodeChain, StagePlan
from dbkeeper.backups.progress import Reporter, SilentReporter
from dbkeeper.backups.storage import BackupStorage, Draft, Entry, Status
from dbkeeper.connections.urls import DatabaseURL
from dbkeeper.errors import BackupError, ConfigError, DbkeeperError, IntegrityError, PruneError
from dbkeeper.plugin.contract import ArtifactReader, ArtifactWriter, BackupFacts, DumpRequest
from dbkeeper.plugin.manager import Driver, Plugins, load_plugins
from dbkeeper.plugin.streams import CHUNK_SIZE, Stage
from dbkeeper.system import interrupts
from dbkeeper.system.filesystem import SCRATCH_ELSEWHERE, human_bytes, writing
from dbkeeper.system.lazy import LazyNames

if TYPE_CHECKING:
    from dbkeeper.backups.copying import CopyOutcome
    from dbkeeper.backups.drill import DrillReport
    from dbkeeper.backups.reports import PrunePlan as PrunePlan
    from dbkeeper.backups.reports import VerifyReport as VerifyReport
    from dbkeeper.backups.retention import Policy  # only prune uses them
    from dbkeeper.plugin.drills import TableLoaded
    from dbkeeper.plugin.restore import RestoreResult

DEFAULT_COMPRESSION = "zstd"
DEFAULT_ENCRYPTION = "age"
INTEGRITY_STAGE = "sha256"

_LAZY = LazyNames(__name__, {"dbkeeper.backups.reports": ("PrunePlan", "VerifyReport")})


def __getattr__(name: str) -> object:
    """``VerifyReport`` or ``PrunePlan`` (:mod:`dbkeeper.backups.reports`), imported on first use."""
    return _LAZY.attribute(name)


def __dir__() -> list[str]:
    """Every name of the module, those imported on first use included."""
    return _LAZY.names()


class _ArtifactSink:
    """Turns a driver's artifacts into pipeline-encoded, atomically committed files."""

    def __init__(self, draft: Draft, plans: Sequence[StagePlan], reporter: Reporter) -> None:
        self._draft = draft
        self._plans = plans
        self._reporter = reporter
        self.records: list[ArtifactRecord] = []

    @contextlib.contextmanager
    def open(self, name: str, *, size_hint: int | None = None) -> Iterator[ArtifactWriter]:
        file_name = name + "".join(plan.stage.suffix for plan in self._plans)
        atomic = self._draft.create(file_name)
        try:
            with self._reporter.task(f"backup {name}", size_hint) as advance:
                chain = EncodeChain(self._plans, atomic.writer, advance)
                yield chain
                stages = chain.finish()
            atomic.commit()
        except BaseException:
            atomic.discard()
            raise
        self.records.append(ArtifactRecord(name, file_name, chain.raw.total, chain.stored.total, stages))


class _ArtifactSource:
    """Opens a backup's artifacts through their inverse chains, checked while streaming."""

    def __init__(
        self,
        entry: Entry,
        storage: BackupStorage,
        plugins: Plugins,
        reporter: Reporter,
        *,
        only_integrity: bool = False,
        identities: Sequence[Path] = (),
    ) -> None:
        assert entry.manifest is not None
        self._entry = entry
        self._storage = storage
        self._reporter = reporter
        self._identities = identities
        self._artifacts = {a.name: a for a in entry.manifest.artifacts}
        self.bytes_read = 0
        self._stages = {
            a.name: _resolve_stages(a, plugins, only_integrity=only_integrity) for a in entry.manifest.artifacts
        }

    def names(self) -> list[str]:
        return list(self._artifacts)

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[ArtifactReader]:
        artifact = self._artifacts[name]
        label = f"{self._entry.id}/{artifact.file}"
        size = artifact.stored_bytes
        stored = contextlib.closing(self._storage.open_artifact(self._entry, artifact))
        with stored as file, self._reporter.task(f"read {name}", size) as advance:
            chain = DecodeChain(
                self._stages[name], file, label, on_stored=advance, identities=self._identities,
                raw_bytes=artifact.raw_bytes,
            )  # fmt: skip
            try:
                yield chain
                while chain.read(CHUNK_SIZE):  # whatever the reader left: the checks need the end
                    pass
            finally:
                self.bytes_read += chain.stored.total


def _resolve_stages(
    artifact: ArtifactRecord, plugins: Plugins, *, only_integrity: bool
) -> list[tuple[Stage, Mapping[str, Any]]]:
    resolved: list[tuple[Stage, Mapping[str, Any]]] = [
        (plugins.stage(r["name"], r.get("distribution")).stage, r) for r in artifact.stages
    ]
    if not any(stage.kind == "integrity" for stage, _ in resolved):
        raise IntegrityError(
            f"artifact {artifact.file} records no integrity stage, so nothing can prove its bytes; use another backup"
        )
    if only_integrity:
        while resolved and resolved[0][0].kind != "integrity":
            resolved.pop(0)
    return resolved


def _scratch_writing(storage: BackupStorage, manifest: Manifest) -> contextlib.AbstractContextManager[None]:
    """Where ``restore`` and ``verify --deep`` write (scratch space, a local target): refusals as one line."""
    needed = f"the backup is {human_bytes(manifest.raw_bytes)} uncompressed"
    return writing(storage.scratch_place, elsewhere=SCRATCH_ELSEWHERE, needed=needed)


def _facts(manifest: Manifest) -> BackupFacts:
    return BackupFacts(
        id=manifest.id,
        format=manifest.format,
        engine_version=manifest.engine_version,
        database=manifest.database,
        row_counts=manifest.row_counts,
        details=manifest.details,
    )


def row_count_problems(expected: Mapping[str, int], found: Mapping[str, int]) -> list[str]:
    """Differences between recorded and found row counts, one line each."""
    problems = [
        f"table {t!r} is missing (the manifest records {n} rows)" for t, n in expected.items() if t not in found
    ]
    problems += [f"table {t!r} is not in the manifest" for t in found if t not in expected]
    problems += [
        f"table {t!r} has {found[t]} rows, the manifest records {n}"
        for t, n in expected.items()
        if t in found and found[t] != n
    ]
    return problems


class BackupManager:
    """Creates and manages the backups in one storage: a local directory or a storage URL (``s3://…``).

    ``plugins`` defaults to every installed plugin; ``reporter`` shows progress (silent by
    default, for library use); ``settings`` are those of the ``[storage.NAME]`` section
    for a storage URL (credentials, endpoint). ``identities`` are the identity files that
    decrypt encrypted backups (restore, ``verify --deep``, ``copy`` with re-encryption).
    """

    def __init__(
        self,
        directory: Path | str | BackupStorage,
        *,
        plugins: Plugins | None = None,
        reporter: Reporter | None = None,
        settings: Mapping[str, str] | None = None,
        identities: Sequence[Path] = (),
    ) -> None:
        self.plugins = plugins or load_plugins()
        self.repository = (
            directory if isinstance(directory, BackupStorage) else open_storage(directory, self.plugins, settings)
        )
        self.reporter = reporter or SilentReporter()
        self.identities = tuple(identities)

    def stage_plan(self, name: str, options: Mapping[str, Any]) -> StagePlan:
        """Stage *name* with *options*, checked now: an unknown stage or option is an error."""
        registered = self.plugins.stage(name)
        plan = StagePlan(registered.stage, registered.provider.distribution, dict(options))
        plan.record_of_nothing()
        return plan

    def _plan(
        self, compression: str, options: Mapping[str, Any], writers: int, recipients: Sequence[str]
    ) -> list[StagePlan]:
        """The backup's chain: the codec (sharing the cores among *writers* artifacts at once), the cipher, sha256."""
        codec = self.stage_plan(compression, options)
        if codec.stage.kind != "compression":
            names = sorted(n for n, s in self.plugins.stages.items() if s.stage.kind == "compression")
            raise ConfigError(f"{compression!r} is not a compression stage; choose one of {', '.join(names)}")
        return [codec.sharing_cores(writers), *self.encryption_plan(recipients), self.stage_plan(INTEGRITY_STAGE, {})]

    def encryption_plan(self, recipients: Sequence[str]) -> list[StagePlan]:
        """The encryption stage for *recipients* (public keys), or none when there are none.

        A missing encryption plugin is an error, never a backup written in the clear.
        """
        if not recipients:
            return []
        return [self.stage_plan(DEFAULT_ENCRYPTION, {"recipients": list(recipients)})]

    def backup(
        self,
        url: str | DatabaseURL,
        *,
        compression: str = DEFAULT_COMPRESSION,
        compression_options: Mapping[str, Any] | None = None,
        format: str | None = None,
        options: Mapping[str, Any] | None = None,
        recipients: Sequence[str] = (),
        prepared: object = None,
    ) -> Manifest:
        """Back up the database at *url*; return the manifest of the complete backup.

        With *recipients* (age public keys), every artifact is encrypted after compression.
        *prepared* is the value of the driver's ``prepare_backup`` for this URL, format and
        options (see :func:`dbkeeper.cli.backup_commands.backup`), handed to its dump.
        """
        url = url if isinstance(url, DatabaseURL) else DatabaseURL.parse(url)
        driver = self.plugins.driver_for(url)
        chosen = driver.backup_format(format)
        typed = driver.options_for("backup", options or {})
        plans = self._plan(compression, compression_options or {}, typed.artifacts_at_once, recipients)
        started = utc_now()
        with (
            self.repository.preparing(),  # locally: a failed first backup leaves no empty directory
            self.repository.draft() as draft,
            self.repository.scratch() as scratch,
        ):
            sink = _ArtifactSink(draft, plans, self.reporter)
            result = driver.dump(DumpRequest(driver.name, url, chosen, sink, scratch, typed, prepared))
            if not sink.records:
                raise BackupError(f"the {driver.name} driver wrote no artifact (a driver bug)")
            manifest = Manifest(
                id=draft.id,
                dbkeeper_version=self.plugins.core_version,
                driver=Provenance(driver.name, driver.provider.distribution, driver.provider.version),
                engine=result.engine,
                engine_version=result.engine_version,
                database=result.database,
                source_url=url.safe(),
                format=chosen,
                started_at=started,
                finished_at=utc_now(),
                artifacts=sink.records,
                row_counts=result.row_counts,
                details=result.details,
            )
            draft.commit(manifest)
        return manifest

    def list(self) -> list[Entry]:
        """Every backup directory, oldest first, complete or not."""
        return self.repository.entries()

    def get(self, ref: str) -> Manifest:
        """The manifest of the complete backup *ref* (id, unique prefix, or ``latest``)."""
        manifest = self.repository.complete(ref).manifest
        assert manifest is not None
        return manifest

    def delete(self, ref: str) -> str:
        """Delete backup *ref*, complete or not; return its id."""
        entry = self.repository.find(ref)
        self.repository.delete(entry)
        return entry.id

    def _source(self, entry: Entry, *, only_integrity: bool = False) -> _ArtifactSource:
        return _ArtifactSource(
            entry,
            self.repository,
            self.plugins,
            self.reporter,
            only_integrity=only_integrity,
            identities=self.identities,
        )

    def _driver_for_backup(self, manifest: Manifest) -> Driver:
        return self.plugins.driver_named(manifest.driver.name, manifest.driver.distribution)

    def verify(self, ref: str, *, deep: bool = False) -> VerifyReport:
        """Check stored bytes against the manifest; *deep* also reads the database inside.

        A backup whose manifest is sound but whose stored files are missing or of the wrong
        size is reported without reading anything. The result is recorded beside the backup
        (:meth:`~dbkeeper.backups.storage.BackupStorage.keep_record`), for ``dbkeeper metrics``.
        Without *deep*, no key is needed: the stored (encrypted) bytes are checked.
        """
        from dbkeeper.backups.record_types import VerifyRecord
        from dbkeeper.backups.reports import VerifyReport

        with self.repository.reading(ref) as entry:
            if entry.status is Status.DAMAGED and entry.manifest is not None and entry.problem:
                report = VerifyReport(entry.id, deep, 0, [entry.problem])
            else:
                report = self._verify(self.repository.usable(entry), deep)
            record = VerifyRecord(report.ok, deep, utc_now(), report.checked_bytes, tuple(report.problems))
            self.repository.keep_record(entry.id, "verify", record.to_data())
            return report

    def _verify(self, entry: Entry, deep: bool) -> VerifyReport:
        from dbkeeper.backups.reports import VerifyReport
        from dbkeeper.plugin.restore import InspectRequest

        manifest = entry.manifest
        assert manifest is not None
        problems: list[str] = []
        source = self._source(entry, only_integrity=not deep)
        try:
            if deep:
                driver = self._driver_for_backup(manifest)
                with _scratch_writing(self.repository, manifest), self.repository.scratch() as scratch:
                    contents = driver.inspect_backup(InspectRequest(driver.name, _facts(manifest), source, scratch))
                problems += contents.problems
                if contents.row_counts is not None:
                    problems += row_count_problems(manifest.row_counts, contents.row_counts)
            else:
                for name in source.names():
                    with source.open(name) as reader:
                        while reader.read(CHUNK_SIZE):
                            pass
        except IntegrityError as exc:
            problems.append(str(exc))
        return VerifyReport(manifest.id, deep, source.bytes_read, problems)

    def restore(
        self,
        ref: str,
        target: str | DatabaseURL,
        *,
        force: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> RestoreResult:
        """Restore backup *ref* into *target*, verifying every byte on the way.

        The backup is locked for reading meanwhile: a concurrent ``prune`` or ``delete``
        waits for the restore instead of removing the files it reads.
        """
        with self.repository.reading(ref) as entry:
            return self._restore(self.repository.usable(entry), target, force, options or {})

    def _restore(
        self,
        entry: Entry,
        target: str | DatabaseURL,
        force: bool,
        options: Mapping[str, Any],
        table_loaded: TableLoaded | None = None,
    ) -> RestoreResult:
        manifest = entry.manifest
        assert manifest is not None
        url = target if isinstance(target, DatabaseURL) else DatabaseURL.parse(target)
        driver = self._driver_for_backup(manifest)
        if self.plugins.driver_for(url) is not driver:
            raise ConfigError(
                f"backup {manifest.id} is a {driver.name} backup; restore it into a URL the "
                f"{driver.name} driver serves ({', '.join(s + '://' for s in driver.info.schemes)})"
            )
        from dbkeeper.plugin.restore import RestoreRequest

        typed = driver.options_for("restore", options)
        source = self._source(entry)
        with _scratch_writing(self.repository, manifest), self.repository.scratch() as scratch:
            request = RestoreRequest(
                driver.name, url, _facts(manifest), source, scratch, typed, force, table_loaded=table_loaded
            )
            show = self.repository.command(f"backups show {manifest.id}")
            with interrupts.reported(request.commit_point, url.safe(), manifest.id, show):
                result = driver.restore(request)
                expected = manifest.row_counts
                if result.tables is not None:  # a selective restore: only the tables it brought back
                    expected = {table: count for table, count in expected.items() if table in result.tables}
                if problems := row_count_problems(expected, result.row_counts):
                    raise IntegrityError(f"restored {result.database}, but {problems[0]}")
        return result

    def drill(
        self,
        ref: str,
        *,
        into: str | DatabaseURL | None = None,
        check_sql: Sequence[str] = (),
        keep: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> DrillReport:
        """Restore backup *ref* into a throwaway target, check it, and record the verdict and the restore's time.

        Without *into*, the driver brings its own target (a temporary file or a private
        server); with *into* (a server URL), a scratch database there, dropped afterwards.
        Checks: the row counts against the manifest, the engine's integrity check, and each
        *check_sql* query (its first column must be true or non-zero). *options* are the
        driver's options for the restore (those it declares for ``drill``: ``{"jobs": 4}``);
        the report says which the restore ran with. The report is also kept beside the
        backup, for ``backups list|show`` and ``dbkeeper metrics``; a failed drill is a
        report with ``ok`` false, not an exception. See :mod:`dbkeeper.backups.drill`.
        """
        from dbkeeper.backups.drill import damaged_report
        from dbkeeper.backups.record_types import DrillRecord

        server = DatabaseURL.parse(into) if isinstance(into, str) else into
        with self.repository.reading(ref) as found:
            if found.status is Status.DAMAGED and found.manifest is not None and found.problem:
                report = damaged_report(found.manifest, found.problem)  # a stored file missing or cut short
            else:
                report = self._drill(self.repository.usable(found), server, check_sql, keep, options or {})
            record = DrillRecord(
                report.ok, report.at, report.restore_seconds, report.target, report.problem, report.options
            )
            self.repository.keep_record(found.id, "drill", record.to_data())
            return report

    def _drill(
        self, entry: Entry, server: DatabaseURL | None, check_sql: Sequence[str], keep: bool, options: Mapping[str, Any]
    ) -> DrillReport:
        from dbkeeper.backups.drill import Drill, effective_options

        manifest = entry.manifest
        assert manifest is not None
        driver = self._driver_for_backup(manifest)
        if server is not None and self.plugins.driver_for(server) is not driver:
            raise ConfigError(
                f"backup {manifest.id} is a {driver.name} backup; --into must be a server the "
                f"{driver.name} driver serves ({', '.join(s + '://' for s in driver.info.schemes)})"
            )

        used = effective_options(driver, options)  # checked before any target comes up

        def restore(url: DatabaseURL, table_loaded: TableLoaded | None) -> RestoreResult:
            return self._restore(entry, url, False, options, table_loaded)

        return Drill(manifest, _facts(manifest), driver, restore, server, check_sql, keep, used).run()

    def copy(
        self, refs: Sequence[str], target: BackupStorage, *, recipients: Sequence[str] = ()
    ) -> builtins.list[CopyOutcome]:
        """Copy backups *refs* (ids, prefixes, ``latest``; none: every complete backup) to *target*.

        Each is verified while it streams and sealed on the target with its manifest last;
        one already complete there is skipped. With *recipients*, each is re-encrypted for
        them (decrypting with the manager's identities when it is encrypted). Copying one
        named backup raises on failure; copying all records each failure and goes on.
        """
        from dbkeeper.backups.copying import Copier, CopyOutcome

        encryption = [*self.encryption_plan(recipients), self.stage_plan(INTEGRITY_STAGE, {})] if recipients else []
        copier = Copier(self.repository, target, self.plugins, self.reporter, self.identities, encryption)
        if refs:
            return [copier.copy(self.repository.complete(ref)) for ref in refs]
        outcomes = []
        for entry in self.repository.entries():
            if entry.status is not Status.COMPLETE:
                continue
            try:
                outcomes.append(copier.copy(entry))
            except DbkeeperError as exc:
                outcomes.append(CopyOutcome(entry.id, "failed", problem=str(exc)))
        return outcomes

    def prune(self, policy: Policy, *, dry_run: bool = False) -> PrunePlan:
        """Delete what *policy* does not keep, and incomplete leftovers; *dry_run* only plans."""
        from dbkeeper.backups.reports import PrunePlan
        from dbkeeper.backups.retention import decide

        entries = self.repository.entries()
        manifests = [e.manifest for e in entries if e.status is Status.COMPLETE and e.manifest]
        plan = PrunePlan(
            decisions=decide(manifests, policy),
            incomplete=[e for e in entries if e.status is Status.INCOMPLETE],
            damaged=[e for e in entries if e.status is Status.DAMAGED],
        )
        if not dry_run:
            by_id = {e.id: e for e in entries}
            for backup_id in plan.doomed:
                try:
                    self.repository.delete(by_id[backup_id])
                except BackupError as exc:
                    plan.failed[backup_id] = str(exc)
            plan.failed.update(self.repository.remove_leftovers())
            if plan.failed:
                raise PruneError(plan)
        return plan


def backup_database(url: str, directory: Path | str = "backups", **kwargs: Any) -> Manifest:
    """Back up *url* into *directory* with default settings; see :meth:`BackupManager.backup`."""
    return BackupManager(directory).backup(url, **kwargs)
